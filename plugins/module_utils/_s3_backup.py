# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_dump streamed through compression straight into an S3 multipart upload (private to the collection).

    pg_dump (local process, or `docker exec` in the database container)
      -> compressor (zstandard or zlib, in this process)
      -> SHA-256 and size of the compressed bytes
      -> parts of part_size uploaded by a bounded thread pool

No temporary file; memory is bounded by part_size * (concurrency + 1) whatever the database's size. Every
stage is checked: pg_dump's exit status, the compressor, every part, the completion. Any failure aborts the
multipart upload, so S3 keeps nothing; the manifest is written only after the object is complete, and if
writing it fails the object is deleted again.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import threading
import time
import zlib

from ansible_collections.webstack.ops.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.webstack.ops.plugins.module_utils._s3 import S3Error, explain

try:
    import zstandard
except ImportError:
    zstandard = None

try:
    import docker
except ImportError:
    docker = None

CHUNK = 1 << 20  # bytes read from pg_dump at a time
STDERR_TAIL = 4000  # characters of a failed command's stderr kept for the message
MAX_PARTS = 10000  # S3's limit on parts per upload
F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MiB pipe means fewer, larger reads


class BackupError(Exception):
    """A stage of the backup failed; the message names the stage, the cause and what to check."""


def _tail(text, secret=None):
    text = text[-STDERR_TAIL:].strip()
    return text.replace(secret, "********") if secret else text


# Where pg_dump runs.


class LocalCommand:
    """A command on this host, its stdout read in chunks, its stderr kept (tail) by a thread."""

    def __init__(self, argv, env, secret=None):
        self.name = os.path.basename(argv[0])
        self.secret = secret
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603 - argv list
                                     env=env, start_new_session=True)
        with contextlib.suppress(OSError):  # a smaller pipe is only slower
            fcntl.fcntl(self.proc.stdout.fileno(), F_SETPIPE_SZ, CHUNK)
        self._stderr = collections.deque(maxlen=64)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        for line in iter(self.proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace"))

    def chunks(self):
        while True:
            data = self.proc.stdout.read(CHUNK)
            if not data:
                return
            yield data

    def finish(self):
        """Wait for the exit; (exit status, stderr tail)."""
        status = self.proc.wait()
        self._reader.join(timeout=10)
        return status, _tail("".join(self._stderr), self.secret)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class ContainerCommand:
    """A command run inside a container through the Docker API, like `docker exec`."""

    def __init__(self, api, container, argv, env, secret=None):
        self.name = argv[0]
        self.api = api
        self.secret = secret
        self._stderr = collections.deque(maxlen=64)
        self.exec_id = api.exec_create(container, argv, environment=env, stdout=True, stderr=True)["Id"]
        self.stream = api.exec_start(self.exec_id, stream=True, demux=True)

    def chunks(self):
        for out, err in self.stream:
            if err:
                self._stderr.append(err.decode("utf-8", "replace"))
            if out:
                yield out

    def finish(self):
        deadline = time.monotonic() + 30
        info = self.api.exec_inspect(self.exec_id)
        while info["Running"] and time.monotonic() < deadline:  # the stream can end just before the exit is recorded
            time.sleep(0.05)
            info = self.api.exec_inspect(self.exec_id)
        status = info["ExitCode"] if not info["Running"] else -1
        return status, _tail("".join(self._stderr), self.secret)

    def kill(self):
        info = self.api.exec_inspect(self.exec_id)
        if info["Running"] and info.get("Pid"):
            # the engine runs on this host (it is the one pg_dump's container runs on), so its PID is ours to signal
            with contextlib.suppress(OSError):
                os.kill(info["Pid"], signal.SIGKILL)


class Runner:
    """Runs PostgreSQL's client programs on this host, or in a container (`docker exec`) when one is named."""

    def __init__(self, env, container=None, docker_host=None, secret=None):
        self.env, self.container, self.secret = env, container, secret
        self.api = docker_api(docker_host) if container else None

    def start(self, argv):
        if not self.container:
            return LocalCommand(argv, dict(os.environ, **self.env), self.secret)
        try:
            return ContainerCommand(self.api, self.container, argv, self.env, self.secret)
        except docker.errors.DockerException as exc:
            raise BackupError("could not run %s in container %s: %s; check that the container exists and runs, and docker_host"
                              % (argv[0], self.container, exc)) from exc

    def output(self, argv):
        """Run a short command to its end: (exit status, stdout text, stderr tail)."""
        command = self.start(argv)
        out = b"".join(command.chunks())
        status, stderr = command.finish()
        return status, out.decode("utf-8", "replace").strip(), stderr

    def where(self):
        return "in container %s" % self.container if self.container else "on this host"


# Compression.


class _NoCompression:
    def compress(self, data):
        return data

    def flush(self):
        return b""


def compressor(kind, level, threads):
    """An object with compress(bytes) and flush() for kind zstd, gzip or none."""
    if kind == "zstd":
        # write_checksum: the frame carries its own checksum, so a damaged object fails to decompress on restore.
        # job_size 2 MiB: each worker thread holds a few jobs' buffers; zstd's default (4x the window, 8 MiB at
        # level 3) cost ~55 MB more peak memory for the same output and speed (bench/RESULTS.md).
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, job_size=2 << 20, write_checksum=True)
        return zstandard.ZstdCompressor(compression_params=params).compressobj()
    if kind == "gzip":
        return zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: a gzip stream, as `gzip` writes it
    return _NoCompression()


# Upload.


class MultipartUpload:
    """Parts uploaded by up to `concurrency` threads; at most `concurrency` parts wait in memory."""

    def __init__(self, client, params, *, bucket, key, extra_args, concurrency):
        self.client, self.params, self.bucket, self.key = client, params, bucket, key
        self.concurrency = concurrency
        try:
            self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **extra_args)["UploadId"]
        except Exception as exc:
            raise explain(exc, "starting the upload of %s" % key, params) from exc
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="s3-part")
        self.pending = collections.deque()
        self.parts = []

    def _upload(self, number, data):
        try:
            response = self.client.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data)
        except Exception as exc:
            raise explain(exc, "uploading part %d of %s" % (number, self.key), self.params) from exc
        return {"PartNumber": number, "ETag": response["ETag"]}

    def add(self, data):
        number = len(self.parts) + len(self.pending) + 1
        if number > MAX_PARTS:
            raise BackupError("the dump needs more than %d parts of this size (S3's limit): raise part_size_mb" % MAX_PARTS)
        while len(self.pending) >= self.concurrency:
            self.parts.append(self.pending.popleft().result())
        self.pending.append(self.pool.submit(self._upload, number, data))

    def complete(self):
        while self.pending:
            self.parts.append(self.pending.popleft().result())
        self.pool.shutdown()
        try:
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                                  MultipartUpload={"Parts": self.parts})
        except Exception as exc:
            raise explain(exc, "completing the upload of %s" % self.key, self.params) from exc

    def abort(self):
        """Drop every part: nothing of this upload stays in S3. Errors here are secondary and swallowed."""
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception:  # noqa: BLE001 - the first failure is what the user needs to see
            # No object exists under the key (a backup is only there once completed), but the parts stay until
            # aborted: say how, since S3 bills them (a lifecycle rule AbortIncompleteMultipartUpload also does it).
            return "the incomplete upload %s of %s could not be aborted; abort it (aws s3api abort-multipart-upload) or let a " \
                   "lifecycle rule do it" % (self.upload_id, self.key)
        return None


def stream(source, compress, upload, part_size):
    """Move source's bytes through compress into upload in parts; dict(raw_size, size, sha256). Raises BackupError.

    A part is the compressor's outputs joined once they reach part_size (so a part is a little over part_size,
    which S3 allows): one copy per part, no slicing of a growing buffer.
    """
    digest = hashlib.sha256()
    raw_size = size = pending_size = 0
    pending = []

    def emit(data, last=False):
        nonlocal size, pending_size
        if data:
            digest.update(data)
            size += len(data)
            pending.append(data)
            pending_size += len(data)
        if pending_size >= part_size or last:  # the last part may be short (or empty, for an empty dump)
            part = b"".join(pending)
            pending.clear()
            pending_size = 0
            upload.add(part)

    for chunk in source.chunks():
        raw_size += len(chunk)
        try:
            data = compress.compress(chunk)
        except Exception as exc:
            raise BackupError("compression failed after %d bytes of dump: %s" % (raw_size, exc)) from exc
        emit(data)
    try:
        data = compress.flush()
    except Exception as exc:
        raise BackupError("compression failed while finishing: %s" % exc) from exc
    emit(data, last=True)
    return {"raw_size": raw_size, "size": size, "sha256": digest.hexdigest()}


def run_backup(client, params, *, bucket, key, source, compress, part_size, concurrency, extra_args):
    """Upload source's dump to bucket/key; dict(raw_size, size, sha256). On any failure nothing is left in S3."""
    upload = MultipartUpload(client, params, bucket=bucket, key=key, extra_args=extra_args, concurrency=concurrency)
    try:
        result = stream(source, compress, upload, part_size)
        status, stderr = source.finish()
        if status != 0:
            raise BackupError("%s failed (exit status %s): %s" % (source.name, status, stderr or "no message"))
        upload.complete()
    except BackupError as exc:
        source.kill()
        leftover = upload.abort()
        raise BackupError("%s; %s" % (exc, leftover) if leftover else str(exc)) from exc
    except S3Error as exc:
        source.kill()
        leftover = upload.abort()
        raise S3Error("%s; %s" % (exc, leftover) if leftover else str(exc)) from exc
    except BaseException:
        source.kill()
        upload.abort()
        raise
    return result


def write_manifest(client, params, bucket, key, manifest):
    """Put the manifest beside the object; if that fails, delete the object so no backup without one is left."""
    try:
        client.put_object(Bucket=bucket, Key=catalog.manifest_key(key), Body=catalog.manifest_body(**manifest),
                          ContentType="application/json")
    except Exception as exc:
        error = explain(exc, "writing the manifest of %s" % key, params)
        with contextlib.suppress(Exception):  # report the manifest failure, which came first
            client.delete_object(Bucket=bucket, Key=key)
        raise error from exc


def docker_api(docker_host):
    """A low-level Docker client: docker_host, else DOCKER_HOST, else the local socket."""
    if docker is None:
        raise BackupError("running pg_dump in a container needs the Docker SDK for Python (pip install docker) on the managed host")
    if docker_host:
        return docker.APIClient(base_url=docker_host)
    return docker.APIClient(**docker.utils.kwargs_from_env())


__all__ = ["BackupError", "ContainerCommand", "LocalCommand", "MultipartUpload", "Runner", "S3Error", "compressor", "docker_api",
           "run_backup", "stream", "write_manifest"]
