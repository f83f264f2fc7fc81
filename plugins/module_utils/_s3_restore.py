# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore of a backup from S3 into PostgreSQL, behind the s3_restore module (private to the collection).

The object is streamed: S3 body -> SHA-256 -> decompression -> the stdin of pg_restore (custom format) or psql
(plain SQL), both in one transaction, without a temporary file. The last HOLD_BACK bytes of the decompressed
stream are held back until the whole object has been read and its checksum matched the manifest: the client
cannot finish (pg_restore lacks the archive's last block, psql has not reached end of input, which is when it
sends COMMIT), so on a mismatch killing it rolls the transaction back.

Every restore goes into a database this run created (the new target, a recreated scratch database, or a
temporary database swapped in at the end), so a failure is cleaned up by dropping that database.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import traceback
import zlib

try:
    import fcntl
except ImportError:  # not on Linux: the default pipe size works too
    fcntl = None

from ansible_collections.webstack.ops.plugins.module_utils._backup_catalog import (
    list_backups,
    manifest_key,
    parse_key,
)
from ansible_collections.webstack.ops.plugins.module_utils._postgres import connection_kwargs, psycopg2, scrub, sql
from ansible_collections.webstack.ops.plugins.module_utils._s3 import explain

try:
    import zstandard
except ImportError:  # only zstd backups need it: Restore.plan() says so then
    zstandard = None

docker = None  # the Docker SDK, imported by import_docker() only with `container` (it costs 0.2 s and 20 MB)

CHUNK = 1 << 20  # bytes read from S3 at a time, and the most the decoder passes on at once
HOLD_BACK = 1 << 20  # decompressed bytes kept from the client until the checksum matched
PIPE_SIZE = 1 << 20  # the client's stdin pipe, so it has work queued while the next chunk downloads
STDERR_TAIL = 16 << 10  # bytes of the client's stderr kept for the error message
SCRATCH_MARKER = "webstack.ops scratch restore"
TEMPORARY_MARKER = "webstack.ops s3_restore: temporary database, replacing %s"
MAX_IDENTIFIER = 63  # bytes PostgreSQL keeps of a name
TERMINATE_WAIT = 10.0  # seconds to wait for terminated sessions to go away
TOOLS = {"custom": "pg_restore", "plain": "psql"}


class RestoreError(Exception):
    """A stage of the restore failed; the message says what, and what to check (never a secret)."""

    def __init__(self, stage, message):
        super().__init__(message)
        self.stage = stage


class DecodeError(Exception):
    """The compressed stream is corrupt or ends early."""


class ClientGone(Exception):
    """The restore client stopped reading its input (it exited)."""


# ---------------------------------------------------------------------------------------------------------
# Which backup


def key_prefix(key):
    """The folder part of an object key ('postgres/' of 'postgres/webstack_...dump.zst')."""
    return key[: key.rfind("/") + 1]


def read_manifest(client, bucket, key, params):
    """The manifest of the backup at key as a dict, or None when it has none."""
    try:
        body = client.get_object(Bucket=bucket, Key=manifest_key(key))["Body"]
        try:
            text = body.read()
        finally:
            body.close()
    except Exception as exc:  # boto3 raises ClientError, BotoCoreError and urllib3 errors; explain() sorts them
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return None
        raise RestoreError("reading the manifest", str(explain(exc, "reading the manifest of %s" % key, params))) from None
    try:
        manifest = json.loads(text)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise RestoreError("reading the manifest", "the manifest %s is not valid JSON (%s): it is damaged; "
                           "restore another backup" % (manifest_key(key), exc)) from None
    return manifest


def check_manifest(backup, manifest):
    """Raise when the manifest contradicts the object: wrong key, format, compression, size, or no checksum."""
    where = manifest_key(backup["key"])
    if manifest.get("key") not in (None, backup["key"]):
        raise RestoreError("reading the manifest", "%s describes %s, not %s: the objects were renamed or mixed up"
                           % (where, manifest.get("key"), backup["key"]))
    for field in ("format", "compression"):
        if manifest.get(field) != backup[field]:
            raise RestoreError("reading the manifest", "%s says %s %r but the key says %r: restore another backup"
                               % (where, field, manifest.get(field), backup[field]))
    digest = manifest.get("sha256")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise RestoreError("reading the manifest", "%s has no valid sha256 (%r): the backup cannot be verified"
                           % (where, digest))
    if manifest.get("size") is not None and manifest["size"] != backup["size"]:
        raise RestoreError("checksum", "the object %s is %d bytes but its manifest says %s: it was truncated or "
                           "replaced after the backup; restore another backup" % (backup["key"], backup["size"], manifest["size"]))


def resolve_backup(client, params):
    """The backup to restore: `key`, else the newest complete one under prefix (of `name`).

    Returns the dict list_backups returns (key, name, started, format, compression, legacy, size) plus
    `manifest` (a dict, or None for the guide's legacy files) and `skipped` (newer incomplete backups).
    """
    bucket = params["bucket"]
    if params.get("key"):
        key = params["key"]
        parsed = parse_key(key, key_prefix(key))
        if parsed is None:
            raise RestoreError("choosing the backup", "%s is not a backup key this module knows: expected "
                               "<prefix><name>_<YYYYmmddTHHMMSSZ>.<dump|sql>[.zst|.gz] or <prefix>backup_YYYYmmdd_HHMMSS.sql.gz" % key)
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # see read_manifest
            raise RestoreError("choosing the backup", str(explain(exc, "looking up %s" % key, params))) from None
        backup = dict(parsed, key=key, size=head["ContentLength"], skipped=[])
    else:
        prefix, name = params["prefix"], params.get("name") or None  # an empty name (a role's default) means any
        try:
            found = list_backups(client, bucket, prefix, name)
        except Exception as exc:  # see read_manifest
            raise RestoreError("listing backups", str(explain(exc, "listing backups under %s" % prefix, params))) from None
        # A backup without a manifest is incomplete (still running, or failed); the guide's files never have one.
        complete = [b for b in found if b["has_manifest"] or b["legacy"]]
        if not complete:
            what = "of %s " % name if name else ""
            raise RestoreError("choosing the backup", "no complete backup %sunder s3://%s/%s (%d object(s) without "
                               "manifest): check bucket, prefix and name" % (what, bucket, prefix, len(found)))
        backup = dict(complete[0])
        backup["skipped"] = [b["key"] for b in found[: found.index(complete[0])]]
    manifest = read_manifest(client, bucket, backup["key"], params)
    if manifest is None and not backup["legacy"]:
        raise RestoreError("choosing the backup", "%s has no manifest (%s): the backup is incomplete or its upload "
                           "failed; restore another backup" % (backup["key"], manifest_key(backup["key"])))
    if manifest is not None:
        check_manifest(backup, manifest)
    backup["manifest"] = manifest
    return backup


# ---------------------------------------------------------------------------------------------------------
# Streaming


class Decoder:
    """Decompresses a stream piece by piece into sink(bytes), at most CHUNK bytes at a time, whatever the ratio.

    Several zstd frames or gzip members in a row are fine. The libraries check the zstd content checksum and the
    gzip CRC-32 at the end of each frame. finish() raises DecodeError when a gzip stream stopped inside a member;
    python-zstandard cannot tell that of a zstd stream, but every zstd backup has a manifest, whose size and
    SHA-256 catch a truncated object.
    """

    def __init__(self, compression, sink):
        self.compression = compression
        self.sink = sink
        self.size = 0  # decompressed bytes so far
        self.frames = 0  # gzip members ended
        self._obj = None
        self._pending = False  # a gzip member has started and not ended
        if compression == "zstd":
            self._zstd = zstandard.ZstdDecompressor().stream_writer(self, write_size=CHUNK, closefd=False)

    def write(self, data):
        """The zstd stream writer's output."""
        self.size += len(data)
        self.sink(data)
        return len(data)

    def feed(self, data):
        try:
            if self.compression == "zstd":
                self._zstd.write(data)
            elif self.compression == "gzip":
                self._feed_gzip(data)
            elif data:
                self.write(data)
        except (zlib.error, getattr(zstandard, "ZstdError", zlib.error)) as exc:
            raise DecodeError("the %s stream is corrupt: %s" % (self.compression, exc)) from None

    def _feed_gzip(self, data):
        while data:
            if self._obj is None:
                self._obj = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
            self._pending = True
            out = self._obj.decompress(data, CHUNK)
            if self._obj.eof:
                data = self._obj.unused_data
                self.frames += 1
                self._obj = None
                self._pending = False
            else:
                data = self._obj.unconsumed_tail
            if out:
                self.write(out)

    def finish(self):
        if self._obj is not None:
            # zlib may still hold output when the last input was consumed just as max_length was reached.
            try:
                out = self._obj.flush()
            except zlib.error as exc:
                raise DecodeError("the gzip stream is corrupt: %s" % exc) from None
            if out:
                self.write(out)
            if self._obj.eof:
                self._pending = False
        if self.compression == "gzip" and self._pending:
            raise DecodeError("the gzip stream ends inside a member: the object is truncated or corrupt")
        if self.compression != "none" and self.size == 0:
            raise DecodeError("the object holds no %s data" % self.compression)


class HoldBack:
    """Passes a stream on but keeps its last `size` bytes until release()."""

    def __init__(self, size=HOLD_BACK):
        self.size = size
        self.held = b""

    def push(self, data):
        """The bytes that may go on now."""
        buf = self.held + data if self.held else data
        if len(buf) <= self.size:
            self.held = buf
            return b""
        cut = len(buf) - self.size
        self.held = buf[cut:]
        return buf[:cut]

    def release(self):
        data, self.held = self.held, b""
        return data


class StderrTail:
    """The last bytes a client wrote to stderr, as text without the password."""

    def __init__(self):
        self._chunks = collections.deque()
        self._size = 0

    def add(self, data):
        self._chunks.append(data)
        self._size += len(data)
        while self._size > STDERR_TAIL and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())

    def text(self, params):
        data = b"".join(self._chunks)[-STDERR_TAIL:]
        lines = data.decode("utf-8", errors="replace").strip().splitlines()
        return scrub(" | ".join(line.strip() for line in lines[-12:] if line.strip()), params) or "(nothing on stderr)"


def grow_pipe(fd):
    """A bigger pipe to the client (Linux; best effort, the default works too)."""
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)


class LocalClient:
    """pg_restore or psql on this host, fed through its stdin."""

    def __init__(self, argv, env):
        self.tool = os.path.basename(argv[0])
        self.where = "on this host"
        self.stderr = StderrTail()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            raise RestoreError("restore", "could not start %s: %s" % (argv[0], exc)) from None
        grow_pipe(self.proc.stdin.fileno())
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        for data in iter(lambda: self.proc.stderr.read1(65536), b""):
            self.stderr.add(data)

    def write(self, data):
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            raise ClientGone() from None

    def finish(self):
        """Close stdin (the end of the input: psql commits there) and wait; the exit code."""
        with contextlib.suppress(OSError):  # it exited already: its exit code says why
            self.proc.stdin.close()
        return self._wait()

    def _wait(self):
        code = self.proc.wait()
        self._reader.join(10)
        return code

    def exit_code(self, timeout):
        """The exit code once it exited by itself within timeout seconds, else None."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(10)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self._wait()


def import_docker():
    """Import the Docker SDK; (None, the traceback) when it is missing."""
    global docker  # noqa: PLW0603 - a lazy import, shared by the functions below
    if docker is None:
        try:
            import docker as sdk  # noqa: PLC0415 - only restores through a container need it
            import docker.errors  # noqa: PLC0415
            import docker.utils.socket  # noqa: PLC0415
        except ImportError:
            return None, traceback.format_exc()
        docker = sdk
    return docker, None


def docker_client(docker_host):
    return docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()


def engine_name(docker_host):
    return docker_host or "of the environment (DOCKER_HOST, else the local socket)"


def check_container(docker_host, name, tool):
    """Fail unless the container runs and has the tool (and sh) in it."""
    try:
        engine = docker_client(docker_host)
        try:
            container = engine.containers.get(name)
            if container.status != "running":
                raise RestoreError("container", "container %s is %s, not running: start it" % (name, container.status))
            code, output = container.exec_run(["sh", "-c", 'command -v "$1"', "s3_restore", tool])
        finally:
            engine.close()
    except docker.errors.NotFound:
        raise RestoreError("container", "no container named %s on the Docker engine %s: check container and docker_host"
                           % (name, engine_name(docker_host))) from None
    except docker.errors.DockerException as exc:
        raise RestoreError("container", "Docker engine %s: %s; check that it runs and docker_host" % (engine_name(docker_host), exc)) from None
    if code != 0:
        raise RestoreError("container", "%s is not installed in container %s (%s): install the PostgreSQL client tools there, "
                           "or run it on the host (omit container)" % (tool, name, output.decode(errors="replace").strip() or "exit %s" % code))


class ContainerClient:
    """pg_restore or psql inside a running container through the Docker API (like `docker exec -i`).

    The command runs under `sh -c 'echo $$; exec "$@"'` so its PID inside the container is known: Docker
    has no API to signal an exec, and closing its stdin without killing it first would let psql commit.
    """

    WRAPPER = 'echo "$$"; exec "$@" >/dev/null'

    def __init__(self, docker_host, container, argv, env):
        self.tool = argv[0]
        self.where = "in container %s" % container
        self.stderr = StderrTail()
        self.pid = None
        self._stdout = b""
        self._code = None
        try:
            self.docker = docker_client(docker_host)
            self.container = self.docker.containers.get(container)
            api = self.docker.api
            self.exec_id = api.exec_create(self.container.id, ["sh", "-c", self.WRAPPER, "s3_restore", *argv],
                                           stdin=True, stdout=True, stderr=True, environment=env)["Id"]
            self.sock = api.exec_start(self.exec_id, socket=True)
        except docker.errors.DockerException as exc:
            raise RestoreError("container", "starting %s in container %s on the Docker engine %s failed: %s"
                               % (self.tool, container, engine_name(docker_host), exc)) from None
        # The hijacked socket inherits the API timeout: a quiet client (a long index build) must not time it out.
        self.raw = getattr(self.sock, "_sock", self.sock)
        self.raw.settimeout(None)
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    def _read_output(self):
        try:
            for stream, data in docker.utils.socket.frames_iter(self.sock, tty=False):
                if stream == docker.utils.socket.STDOUT and self.pid is None:
                    self._stdout += data
                    if b"\n" in self._stdout:
                        self.pid = self._stdout.split(b"\n", 1)[0].strip().decode()
                elif stream == docker.utils.socket.STDERR:
                    self.stderr.add(data)
        except OSError:
            pass  # the connection went away: the exit code tells the rest

    def write(self, data):
        if not self._reader.is_alive():  # output ended: the command exited
            raise ClientGone()
        try:
            self.raw.sendall(data)
        except OSError:
            raise ClientGone() from None

    def finish(self):
        with contextlib.suppress(OSError):
            self.raw.shutdown(socket.SHUT_WR)  # end of input, as `docker exec -i` does on EOF
        return self._wait()

    def _wait(self):
        if self._code is None:
            self._reader.join()
            code = self._inspect_exit(30)
            self.sock.close()
            self.docker.close()
            self._code = 255 if code is None else code
        return self._code

    def _inspect_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            info = self.docker.api.exec_inspect(self.exec_id)
            if not info.get("Running"):
                return info.get("ExitCode")
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    def exit_code(self, timeout):
        """The exit code once it exited by itself within timeout seconds, else None."""
        self._reader.join(timeout)
        return None if self._reader.is_alive() else self._inspect_exit(timeout)

    def kill(self):
        if self.pid and self.pid.isdigit():
            # If this fails the caller still terminates the client's session on the server.
            with contextlib.suppress(docker.errors.DockerException):
                self.container.exec_run(["sh", "-c", 'kill -KILL "$1"', "s3_restore", self.pid])

    def close(self):
        with contextlib.suppress(OSError):
            self.raw.shutdown(socket.SHUT_RDWR)
        self._wait()


class ObjectReader:
    """The S3 body read in CHUNK pieces, hashed (SHA-256) and counted on the way."""

    def __init__(self, body, backup, params):
        self.body, self.backup, self.params = body, backup, params
        self.hasher = hashlib.sha256()

    def read(self):
        try:
            chunk = self.body.read(CHUNK)
        except Exception as exc:  # botocore and urllib3 read errors; explain() sorts them
            raise RestoreError("download", str(explain(exc, "reading %s" % self.backup["key"], self.params))) from None
        self.hasher.update(chunk)
        return chunk

    def drain(self):
        """Read the rest, for the checksum only."""
        while self.read():
            pass


def pump(reader, decoder):
    """Every chunk from reader through the decoder (whose sink feeds the client)."""
    for chunk in iter(reader.read, b""):
        decoder.feed(chunk)
    decoder.finish()


def stream_restore(body, backup, client, abort, params):
    """Feed the object through decompression into the client; verify the checksum before the client may finish.

    abort() kills the client and its session (the transaction rolls back). Returns the SHA-256 (hex) of the
    object and the decompressed byte count; raises RestoreError naming the stage that failed.
    """
    expected = (backup["manifest"] or {}).get("sha256")
    reader = ObjectReader(body, backup, params)
    hold = HoldBack()

    def sink(data):
        ready = hold.push(data)
        if ready:
            client.write(ready)

    decoder = Decoder(backup["compression"], sink)
    try:
        pump(reader, decoder)
    except RestoreError:
        abort()
        raise
    except (DecodeError, ClientGone) as exc:
        if isinstance(exc, DecodeError):
            failure = ("decompress", "%s in %s" % (exc, backup["key"]))
        else:
            code = client.exit_code(timeout=5)
            failure = ("restore", "%s %s exited with %s before the end of the backup: %s" % (
                client.tool, client.where, "an unknown code" if code is None else code, client.stderr.text(params)))
        abort()
        if expected:
            # The checksum is the verdict on the object: read the rest, and if it differs, say that first.
            reader.drain()
            if reader.hasher.hexdigest() != expected:
                raise RestoreError("checksum", "SHA-256 of %s is %s, its manifest says %s: the object is corrupt; nothing was "
                                   "committed (the %s stage failed as well: %s)" % (
                                       backup["key"], reader.hasher.hexdigest(), expected, failure[0], failure[1])) from None
        raise RestoreError(*failure) from None
    digest = reader.hasher.hexdigest()
    if expected and digest != expected:
        abort()
        raise RestoreError("checksum", "SHA-256 of %s is %s, its manifest says %s: the object is corrupt or was "
                           "replaced; nothing was committed; restore another backup" % (backup["key"], digest, expected))
    with contextlib.suppress(ClientGone):  # its exit code below says why
        client.write(hold.release())
    code = client.finish()
    if code != 0:
        raise RestoreError("restore", "%s %s exited with %s: %s" % (client.tool, client.where, code, client.stderr.text(params)))
    return digest, decoder.size


# ---------------------------------------------------------------------------------------------------------
# The client's command line and connection


def conninfo_dbname(name):
    """A libpq conninfo naming only the database: a bare name with '=' in it would be read as a conninfo."""
    return "dbname='%s'" % name.replace("\\", "\\\\").replace("'", "\\'")


def client_argv(fmt, dbname, no_owner=False, no_privileges=False):
    """The client's argv (tool name first): one transaction, stop at the first error, input from stdin."""
    if fmt == "custom":
        argv = ["pg_restore", "--single-transaction", "--exit-on-error", "--dbname", conninfo_dbname(dbname)]
        if no_owner:
            argv.append("--no-owner")
        if no_privileges:
            argv.append("--no-privileges")
        return argv
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--dbname", conninfo_dbname(dbname), "-f", "-"]


def client_env(params, app_name):
    """libpq environment for the client: the password goes here, never on the command line."""
    env = {
        "PGHOST": params["login_unix_socket"] or params["login_host"],
        "PGPORT": str(params["login_port"]),
        "PGUSER": params["login_user"],
        "PGCONNECT_TIMEOUT": str(params["connect_timeout"]),
        "PGSSLMODE": params["ssl_mode"],
        "PGAPPNAME": app_name,
    }
    if params["login_password"]:
        env["PGPASSWORD"] = params["login_password"]
    if params.get("ca_cert"):
        env["PGSSLROOTCERT"] = params["ca_cert"]
    return env


# ---------------------------------------------------------------------------------------------------------
# Databases


def connect_to(params, dbname, stage):
    """A psycopg2 connection (autocommit) with the login options to another database than login_db."""
    try:
        conn = psycopg2.connect(**connection_kwargs(params, dbname))
    except psycopg2.Error as exc:
        raise RestoreError(stage, "could not connect to database %s: %s" % (dbname, scrub(exc, params))) from None
    conn.autocommit = True
    return conn


def database_info(conn, name):
    """owner, encoding, collate, ctype, comment of a database, or None when it does not exist."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, "
                    "shobj_description(d.oid, 'pg_database') FROM pg_database d WHERE d.datname = %s", (name,))
        row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("owner", "encoding", "collate", "ctype", "comment"), row, strict=True))


def plan_target(info, force):
    """How to restore given the target's state: create, recreate (a scratch database of ours) or swap.

    Raises when the target exists, is not a scratch database, and force is off.
    """
    if info is None:
        return "create"
    if info["comment"] == SCRATCH_MARKER:
        return "recreate"
    if force:
        return "swap"
    return None


def temporary_name(target, kind):
    """A free-looking name beside target, within PostgreSQL's 63 bytes: <target>_<kind>_<8 hex>."""
    suffix = "_%s_%s" % (kind, secrets.token_hex(4))
    base = target
    while len((base + suffix).encode()) > MAX_IDENTIFIER:
        base = base[:-1]
    return base + suffix


def create_database(conn, name, like=None, comment=None):
    """CREATE DATABASE from template0 (a dump expects an empty database); `like`: copy owner, encoding, locale."""
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if like:
        statement += sql.SQL(" ENCODING {} LC_COLLATE {} LC_CTYPE {} OWNER {}").format(
            sql.Literal(like["encoding"]), sql.Literal(like["collate"]), sql.Literal(like["ctype"]), sql.Identifier(like["owner"]))
    with conn.cursor() as cur:
        cur.execute(statement)
        if comment:
            set_comment(cur, name, comment)


def set_comment(cur, name, comment):
    cur.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment)))


def terminate_sessions(conn, column, value, wait=TERMINATE_WAIT):
    """Terminate the other sessions whose pg_stat_activity `column` is value, and wait until they are gone."""
    where = sql.SQL("FROM pg_stat_activity WHERE {} = %s AND pid <> pg_backend_pid()").format(sql.Identifier(column))
    query = sql.SQL("SELECT pg_terminate_backend(pid) ") + where
    count = sql.SQL("SELECT count(*) ") + where
    deadline = time.monotonic() + wait
    with conn.cursor() as cur:
        cur.execute(query, (value,))
        while True:
            cur.execute(count, (value,))
            if cur.fetchone()[0] == 0:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def drop_database(conn, name):
    """DROP DATABASE IF EXISTS, ending its sessions first."""
    with conn.cursor() as cur:
        if conn.server_version >= 130000:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        else:
            terminate_sessions(conn, "datname", name)
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def swap_databases(conn, target, replacement, old_name):
    """Rename target to old_name and replacement to target in one transaction, then drop the old one.

    New connections to the target are refused while its sessions are ended, so none slips in before the rename.
    Returns None, or a warning when the old database could not be dropped.
    """
    target_id = sql.Identifier(target)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(target_id))
        try:
            if not terminate_sessions(conn, "datname", target):
                raise RestoreError("swap", "sessions on %s did not end within %ds after pg_terminate_backend"
                                   % (target, TERMINATE_WAIT))
            conn.autocommit = False
            try:
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(target_id, sql.Identifier(old_name)))
                cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(replacement), target_id))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                conn.autocommit = True
        except BaseException:
            cur.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(target_id))
            raise
    try:
        drop_database(conn, old_name)
    except psycopg2.Error as exc:
        return "the replaced database was kept as %s, dropping it failed: %s" % (old_name, str(exc).strip())
    return None


USER_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2
"""


def count_rows(conn):
    """Exact row count of every user table (partitions counted in their parent): {"schema.table": rows}."""
    counts = {}
    with conn.cursor() as cur:
        cur.execute(USER_TABLES)
        for schema, table in cur.fetchall():
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
            counts["%s.%s" % (schema, table)] = cur.fetchone()[0]
    return counts


def check_expect(counts, expect):
    """What is wrong against `expect` ({table or schema.table: minimum rows}): a list of messages."""
    problems = []
    for name, minimum in expect.items():
        matches = [name] if name in counts else [q for q in counts if q.split(".", 1)[1] == name]
        if not matches:
            problems.append("table %s is missing" % name)
        elif len(matches) > 1:
            problems.append("table %s is ambiguous (%s): name its schema" % (name, ", ".join(matches)))
        elif counts[matches[0]] < minimum:
            problems.append("table %s has %d rows, expected at least %d" % (matches[0], counts[matches[0]], minimum))
    return problems


def compare_counts(restored, source):
    """Tables whose row counts differ: [{table, restored, source}] (None where the table is missing)."""
    return [dict(table=table, restored=restored.get(table), source=source.get(table))
            for table in sorted(set(restored) | set(source)) if restored.get(table) != source.get(table)]


# ---------------------------------------------------------------------------------------------------------
# The whole run


def refusal(target, scratch):
    if scratch:
        return ("target_db %s exists and is not a scratch database of this module (it lacks the comment %r), so it "
                "is not dropped: choose another target_db, or set force: true to replace it" % (target, SCRATCH_MARKER))
    return ("target_db %s exists and is not a scratch database: set force: true to replace it (the backup is restored "
            "into a temporary database first and swapped in only once everything succeeded), or choose another target_db" % target)


class Restore:
    """One restore: plan (all a check run does), then do it. `result` holds what happened so far.

    params: the module's options. s3: a boto3 client. admin: an autocommit psycopg2 connection to login_db.
    find_tool: name -> path or None (module.get_bin_path). warn: for warnings.
    """

    def __init__(self, params, s3, admin, find_tool, warn):
        self.params = params
        self.s3 = s3
        self.admin = admin
        self.find_tool = find_tool
        self.warn = warn
        self.result = dict(changed=False, target_db=params["target_db"], created=False, replaced=False, dropped=False,
                           checksum_verified=False, row_counts={}, differences=[], actions=[])
        self.cleanup_note = ""

    def plan(self):
        """Choose the backup, check the target and the tools; nothing changes. Returns the planned mode."""
        params, result = self.params, self.result
        self.backup = backup = resolve_backup(self.s3, params)
        manifest = backup["manifest"]
        result.update(key=backup["key"], name=backup["name"], started=backup["started"].isoformat(), legacy=backup["legacy"],
                      format=backup["format"], compression=backup["compression"], size=backup["size"],
                      sha256=manifest["sha256"] if manifest else None, skipped_incomplete=backup["skipped"],
                      tool=TOOLS[backup["format"]], container=params.get("container"))
        if manifest is None:
            result["checksum_note"] = ("legacy backup without a manifest: there is no SHA-256 to verify it against "
                                       "(gzip's own CRC-32 is still checked)")
        if backup["format"] == "plain" and (params["no_owner"] or params["no_privileges"]):
            self.warn("no_owner and no_privileges only apply to custom-format backups; %s is plain SQL and runs as it is" % backup["key"])
        if backup["compression"] == "zstd" and zstandard is None:
            raise RestoreError("decompress", "%s is zstd-compressed and the Python library zstandard is missing on this "
                               "host: pip install zstandard (Debian: python3-zstandard)" % backup["key"])

        self.source = params.get("source_db") or (manifest or {}).get("database")
        if params["compare_with_source"]:
            if not self.source:
                raise RestoreError("compare", "compare_with_source needs the source database, and %s has no manifest "
                                   "naming it: set source_db" % backup["key"])
            if database_info(self.admin, self.source) is None:
                raise RestoreError("compare", "the source database %s does not exist on this server: set source_db, or "
                                   "compare on the server the backup came from" % self.source)
        result["source_db"] = self.source

        target = params["target_db"]
        self.info = database_info(self.admin, target)
        self.mode = mode = plan_target(self.info, params["force"])
        if mode is None:
            raise RestoreError("target", refusal(target, params["scratch"]))
        if mode != "create" and target == params["login_db"]:
            raise RestoreError("target", "target_db %s is login_db, the database this module is connected to, so it cannot "
                               "be dropped or renamed: set login_db to another database (postgres)" % target)
        self.restore_db = temporary_name(target, "restore") if mode == "swap" else target
        self.check_tool()

        actions = self.planned_actions(mode, target)
        result.update(actions=actions, restored_into=self.restore_db, created=mode in ("create", "recreate"),
                      replaced=mode in ("recreate", "swap"), dropped=params["drop_after"], changed=True)
        return mode

    def planned_actions(self, mode, target):
        """What run() will do, in words, for the result (and for check mode)."""
        params, backup = self.params, self.backup
        actions = {
            "create": ["create database %s%s" % (target, " (scratch)" if params["scratch"] else "")],
            "recreate": ["drop scratch database %s" % target, "create database %s%s" % (target, " (scratch)" if params["scratch"] else "")],
            "swap": ["create temporary database %s" % self.restore_db],
        }[mode]
        actions.append("restore %s (%s, %s) into %s with %s%s" % (
            backup["key"], backup["format"], backup["compression"], self.restore_db, TOOLS[backup["format"]],
            " in container %s" % params["container"] if params.get("container") else ""))
        actions.append("verify SHA-256 against the manifest" if backup["manifest"] else "no checksum to verify (no manifest)")
        if self.counting():
            actions.append("count rows of every table")
        if params["expect"]:
            actions.append("check minimum rows of %s" % ", ".join(sorted(params["expect"])))
        if params["compare_with_source"]:
            actions.append("compare row counts with %s" % self.source)
        if mode == "swap":
            actions.append("swap %s in as %s and drop the old %s" % (self.restore_db, target, target))
        if params["drop_after"]:
            actions.append("drop %s" % target)
        return actions

    def check_tool(self):
        tool = TOOLS[self.backup["format"]]
        container = self.params.get("container")
        if container:
            if import_docker()[0] is None:
                raise RestoreError("container", "container is set and the Python library docker is missing on this host: "
                                   "pip install docker (Debian: python3-docker)")
            check_container(self.params.get("docker_host"), container, tool)
            self.tool_path = tool
            return
        self.tool_path = self.find_tool(tool)
        if not self.tool_path:
            raise RestoreError("restore", "%s is not installed on this host: install the PostgreSQL client tools "
                               "(Debian: postgresql-client) of a version at least the server's, or set container" % tool)

    def sql_step(self, stage, what, func, *args, **kwargs):
        """func(*args, **kwargs), with a driver error turned into a RestoreError of that stage."""
        try:
            return func(*args, **kwargs)
        except psycopg2.Error as exc:
            raise RestoreError(stage, "%s failed: %s" % (what, scrub(exc, self.params))) from None

    def run(self):
        """Restore as planned (call plan() first); returns the result, raises RestoreError after cleaning up."""
        params, result, target = self.params, self.result, self.params["target_db"]
        if self.mode == "recreate":
            self.sql_step("target", "dropping the old scratch database %s" % target, drop_database, self.admin, target)
        if self.mode == "swap":
            self.sql_step("target", "creating the temporary database %s" % self.restore_db, create_database,
                          self.admin, self.restore_db, like=self.info, comment=TEMPORARY_MARKER % target)
        else:
            self.sql_step("target", "creating database %s" % target, create_database, self.admin, target,
                          comment=SCRATCH_MARKER if params["scratch"] else None)
        try:
            self.restore()
            self.verify()
            if self.mode == "swap":
                self.sql_step("swap", "swapping %s in as %s" % (self.restore_db, target), self.swap)
        except BaseException:
            self.clean_up()
            raise
        if params["drop_after"]:
            self.sql_step("drop_after", "dropping %s" % target, drop_database, self.admin, target)
        return result

    def swap(self):
        """The verified temporary database replaces the target, with the target's comment (or the scratch marker)."""
        target = self.params["target_db"]
        with self.admin.cursor() as cur:
            comment = SCRATCH_MARKER if self.params["scratch"] else self.info["comment"]
            if comment:
                set_comment(cur, self.restore_db, comment)
            else:
                cur.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(self.restore_db)))
        problem = swap_databases(self.admin, target, self.restore_db, temporary_name(target, "old"))
        if problem:
            self.warn(problem)

    def restore(self):
        params, backup, result = self.params, self.backup, self.result
        app_name = "webstack.ops s3_restore %s" % secrets.token_hex(6)
        argv = client_argv(backup["format"], self.restore_db, params["no_owner"], params["no_privileges"])
        argv[0] = self.tool_path
        try:
            body = self.s3.get_object(Bucket=params["bucket"], Key=backup["key"])["Body"]
        except Exception as exc:  # see read_manifest
            raise RestoreError("download", str(explain(exc, "downloading %s" % backup["key"], params))) from None
        began = time.monotonic()
        try:
            env = client_env(params, app_name)
            if params.get("container"):
                client = ContainerClient(params.get("docker_host"), params["container"], argv, env)
            else:
                client = LocalClient(argv, dict(os.environ, **env))

            def abort():
                # Kill the client first: closing its input while it lives would let psql commit.
                client.kill()
                terminate_sessions(self.admin, "application_name", app_name)
                client.close()

            digest, raw_size = stream_restore(body, backup, client, abort, params)
        finally:
            body.close()
        result.update(sha256=digest, raw_size=raw_size, checksum_verified=backup["manifest"] is not None,
                      duration_s=round(time.monotonic() - began, 3))

    def counting(self):
        params = self.params
        return bool(params.get("count_rows") or params["expect"] or params["compare_with_source"])

    def verify(self):
        params, result = self.params, self.result
        if not self.counting():
            return
        conn = connect_to(params, self.restore_db, "row counts")
        try:
            result["row_counts"] = counts = count_rows(conn)
        except psycopg2.Error as exc:
            raise RestoreError("row counts", "counting rows in %s failed: %s" % (self.restore_db, scrub(exc, params))) from None
        finally:
            conn.close()
        problems = check_expect(counts, params["expect"] or {})
        if problems:
            raise RestoreError("expect", "; ".join(problems))
        if params["compare_with_source"]:
            conn = connect_to(params, self.source, "compare")
            try:
                source_counts = count_rows(conn)
            except psycopg2.Error as exc:
                raise RestoreError("compare", "counting rows in %s failed: %s" % (self.source, scrub(exc, params))) from None
            finally:
                conn.close()
            result["differences"] = differences = compare_counts(counts, source_counts)
            if differences:
                raise RestoreError("compare", "row counts differ from the source database %s in %d table(s): %s" % (
                    self.source, len(differences), "; ".join("%s: restored %s, source %s" % (
                        d["table"], "missing" if d["restored"] is None else d["restored"],
                        "missing" if d["source"] is None else d["source"]) for d in differences[:10])))

    def clean_up(self):
        """After a failure: drop the database this run restored into; the target is then as it was (or gone, for scratch)."""
        params, result, target = self.params, self.result, self.params["target_db"]
        result.update(created=False, replaced=False, dropped=False, changed=self.mode == "recreate")
        try:
            drop_database(self.admin, self.restore_db)
        except psycopg2.Error as exc:
            self.cleanup_note = ("Dropping %s, which this run created, failed too (%s): drop it by hand."
                                 % (self.restore_db, scrub(exc, params)))
            result["changed"] = True
            return
        if self.mode == "swap":
            self.cleanup_note = "The temporary database %s was dropped; %s is untouched." % (self.restore_db, target)
        elif self.mode == "recreate":
            self.cleanup_note = "The old scratch database %s had been dropped, and the new one was dropped as well." % target
        else:
            self.cleanup_note = "The database %s created for this restore was dropped." % target
