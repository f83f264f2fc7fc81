#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_backup
short_description: Back up a PostgreSQL database with pg_dump streamed through compression straight into S3
version_added: 0.1.0
description:
  - Runs C(pg_dump) on this host, or inside the database container as C(docker exec) would, and streams its output
    through compression (zstd, gzip or none) into an S3 multipart upload. No temporary file is written and memory
    stays bounded by O(part_size_mb) times (O(concurrency) + 1), whatever the size of the database.
  - The SHA-256 and size of the stored bytes are computed in the stream and written to a JSON manifest next to the
    object, named C(<key>.manifest.json), with the database, server and pg_dump versions, format, compression, sizes,
    checksum, start, end and duration. The object's metadata carries what is known when the upload starts (database,
    format, compression, start time); S3 fixes metadata at that moment, so the checksum lives in the manifest.
  - Every stage is checked (pg_dump's exit status, the compressor, each part, the completion, the manifest).
    If any fails, the multipart upload is aborted and neither object nor manifest is left.
  - Keys are C(<prefix><name>_<YYYYmmddTHHMMSSZ>.<dump|sql>[.zst|.gz]), so they sort by age.
  - With O(prune=true), after a successful backup, backups of O(name) older than O(keep_days) are deleted, but
    never the O(keep_min) newest good ones (with a manifest), whatever their age.
notes:
  - Keep O(login_password) and O(secret_key) in a vault. The password reaches pg_dump through C(PGPASSWORD) in its
    environment, never on its command line.
  - With O(container), O(login_host) and O(login_port) are not used; pg_dump connects as the container's own
    environment says (its socket, C(PGHOST), C(PGPORT)), as C(docker exec postgres_db pg_dump) does.
  - S3 allows 10,000 parts per upload; with the default 8 MiB parts, dumps up to about 80 GB after compression.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.postgres
  - webstack.ops.s3
attributes:
  check_mode:
    support: full
    details:
      - In check mode the database and the bucket are reached (read-only) and the module returns the key it would
        upload and, with O(prune=true), the backups it would delete. Nothing is dumped, uploaded or deleted.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the backup series, the start of every key. Letters, digits, C(.), C(_) and C(-).
      - Defaults to O(login_db).
    type: str
  prefix:
    description:
      - Key prefix the backups are stored under, usually ending in C(/).
    type: str
    default: postgres/
  format:
    description:
      - C(pg_dump) output format. V(plain) is SQL restored with C(psql), as the guide's backups are;
        V(custom) is restored with C(pg_restore) (and allows picking objects).
      - V(plain) is the default because it compresses better and faster. PostgreSQL 15's custom format without
        its own compression frames every row, which costs zstd about 4% more output (see bench/RESULTS.md).
      - With V(custom) and a compression other than V(none), pg_dump's own compression is switched off.
    type: str
    choices: [custom, plain]
    default: plain
  compression:
    description:
      - How the dump is compressed on its way to S3.
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description:
      - Compression level; zstd 1 to 19 (default 2), gzip 1 to 9 (default 6). Ignored with V(none).
      - zstd 2 makes files a little smaller than gzip's default level at a small part of its CPU time; higher levels
        trade CPU on the database host for a few percent of size.
    type: int
  compression_threads:
    description:
      - Worker threads of the zstd compressor; V(0) compresses in the reading thread, V(-1) one per CPU.
    type: int
    default: -1
  container:
    description:
      - Name or ID of a Docker container to run C(pg_dump) in (through the Docker API, like C(docker exec)).
      - Omitted, C(pg_dump) runs on the managed host.
    type: str
  docker_host:
    description:
      - Docker API URL for O(container), such as V(unix:///var/run/docker.sock). Omitted, C(DOCKER_HOST) or the local socket.
    type: str
  pg_dump_path:
    description:
      - C(pg_dump) on the managed host. Omitted, found on the C(PATH). Not used with O(container).
    type: path
  dump_args:
    description:
      - Extra C(pg_dump) arguments, such as V(--exclude-table-data=pages_pagevisit).
    type: list
    elements: str
    default: []
  part_size_mb:
    description:
      - Size of each uploaded part in MiB (5 to 5120).
    type: int
    default: 8
  concurrency:
    description:
      - Parts uploaded at the same time (1 to 32).
    type: int
    default: 4
  server_side_encryption:
    description:
      - Server-side encryption of the object.
    type: str
    choices: [AES256, aws:kms]
  sse_kms_key_id:
    description:
      - KMS key for O(server_side_encryption=aws:kms).
    type: str
  storage_class:
    description:
      - Storage class of the object, such as V(STANDARD_IA).
    type: str
  prune:
    description:
      - After a successful backup, delete this series' backups older than O(keep_days), keeping at least the
        O(keep_min) newest good ones. A failed backup never prunes.
    type: bool
    default: false
  keep_days:
    description:
      - Age in days after which a backup may be pruned (1 or more).
    type: int
    default: 30
  keep_min:
    description:
      - Good backups (with a manifest) kept whatever their age (1 or more).
    type: int
    default: 7
  abort_stale_uploads_hours:
    description:
      - Before the backup, abort this series' incomplete multipart uploads started more than this many hours ago
        (left by a run that died before it could abort; S3 keeps their parts until then).
      - V(-1) leaves them alone.
    type: int
    default: 24
requirements:
  - C(pg_dump) of a version at least the server's (on the host, or in O(container)).
  - zstandard (for O(compression=zstd)) and, for O(container), the Docker SDK for Python, on the managed host.
seealso:
  - module: webstack.ops.s3_backup_info
  - module: webstack.ops.s3_restore
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Back up the site's database into S3 and keep 30 days (at least 7 backups)
  webstack.ops.s3_backup:
    login_db: webstack
    login_password: "{{ vault_postgres_password }}"
    bucket: example-backups
    prune: true

- name: Dump inside the database container, as the guide's docker exec does
  webstack.ops.s3_backup:
    container: postgres_db
    login_db: webstack
    bucket: example-backups
    endpoint_url: https://s3.example.internal
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
    compression: zstd
    compression_level: 1
"""

RETURN = r"""
key:
  description: Key of the backup (in check mode, the key it would have).
  returned: always
  type: str
  sample: postgres/webstack_20261129T020000Z.sql.zst
manifest_key:
  description: Key of the manifest beside it.
  returned: always
  type: str
size:
  description: Bytes stored (compressed).
  returned: success, not in check mode
  type: int
raw_size:
  description: Bytes pg_dump wrote (before compression).
  returned: success, not in check mode
  type: int
sha256:
  description: SHA-256 of the stored bytes, as in the manifest.
  returned: success, not in check mode
  type: str
duration_s:
  description: Seconds the dump and upload took.
  returned: success, not in check mode
  type: float
started_at:
  description: Start of the backup (UTC, ISO 8601).
  returned: always
  type: str
finished_at:
  description: End of the backup (UTC, ISO 8601).
  returned: success, not in check mode
  type: str
server_version:
  description: Version of the PostgreSQL server dumped.
  returned: always
  type: str
pruned:
  description: Keys of the backups deleted by O(prune) (in check mode, that would be deleted).
  returned: always
  type: list
  elements: str
kept:
  description: Number of backups of this series left after pruning (in check mode, that would be left).
  returned: when O(prune=true)
  type: int
aborted_uploads:
  description: Keys of stale incomplete uploads aborted (in check mode, that would be aborted).
  returned: always
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.webstack.ops.plugins.module_utils._postgres import describe_target, postgres_argument_spec
from ansible_collections.webstack.ops.plugins.module_utils._s3 import S3Error, ensure_boto3, explain, s3_argument_spec, s3_client
from ansible_collections.webstack.ops.plugins.module_utils._s3_backup import (
    BackupError,
    Runner,
    compressor,
    run_backup,
    write_manifest,
    zstandard,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
# zstd 2 rather than zstd's own 3: on the guide's text-heavy tables it spends ~28% less CPU on the database host
# for ~2% more output, still smaller than the guide's gzip -6 file (bench/RESULTS.md).
DEFAULT_LEVELS = {"zstd": 2, "gzip": 6, "none": None}
LEVEL_RANGES = {"zstd": (1, 19), "gzip": (1, 9)}
CONTENT_TYPES = {"zstd": "application/zstd", "gzip": "application/gzip", "none": "application/octet-stream"}


def validate(module):
    """Refuse bad options before anything is reached; returns the series name and the compression level."""
    params = module.params
    name = params["name"] or params["login_db"]
    if not NAME_PATTERN.match(name):
        module.fail_json(msg="name %r may only contain letters, digits, '.', '_' and '-' (it starts every backup key)" % name)
    if not 5 <= params["part_size_mb"] <= 5120:
        module.fail_json(msg="part_size_mb must be between 5 and 5120 (S3's part size limits), got %d" % params["part_size_mb"])
    if not 1 <= params["concurrency"] <= 32:
        module.fail_json(msg="concurrency must be between 1 and 32, got %d" % params["concurrency"])
    if params["keep_days"] < 1:
        module.fail_json(msg="keep_days must be 1 or more, got %d: a backup of age 0 would be pruned as soon as it is made" % params["keep_days"])
    if params["keep_min"] < 1:
        module.fail_json(msg="keep_min must be 1 or more, got %d: pruning must always leave a good backup" % params["keep_min"])
    compression = params["compression"]
    level = params["compression_level"] if params["compression_level"] is not None else DEFAULT_LEVELS[compression]
    if compression in LEVEL_RANGES:
        low, high = LEVEL_RANGES[compression]
        if not low <= level <= high:
            module.fail_json(msg="compression_level %d is out of range for %s (%d to %d)" % (level, compression, low, high))
    if compression == "zstd" and zstandard is None:
        module.fail_json(msg="compression zstd needs the zstandard Python library on the managed host (pip install zstandard)")
    return name, level


def runner_for(module):
    """Where pg_dump runs, with the connection in its environment (the password never on a command line)."""
    params = module.params
    env = {"PGAPPNAME": "webstack.ops s3_backup", "PGCONNECT_TIMEOUT": str(params["connect_timeout"])}
    if params["login_password"]:
        env["PGPASSWORD"] = params["login_password"]
    if not params["container"]:
        env["PGSSLMODE"] = params["ssl_mode"]
        if params["ca_cert"]:
            env["PGSSLROOTCERT"] = params["ca_cert"]
    return Runner(env, container=params["container"], docker_host=params["docker_host"], secret=params["login_password"] or None)


def connection_args(params):
    args = ["--no-password", "--username", params["login_user"], "--dbname", params["login_db"]]
    if not params["container"]:
        if params["login_unix_socket"]:
            args += ["--host", params["login_unix_socket"], "--port", str(params["login_port"])]
        else:
            args += ["--host", params["login_host"], "--port", str(params["login_port"])]
    return args


def versions(module, runner, pg_dump):
    """(server version, pg_dump version); fails naming the database and the cause when it cannot be reached."""
    params = module.params
    psql = "psql"
    if not params["container"]:  # the psql beside pg_dump (same major version), else the PATH's
        sibling = os.path.join(os.path.dirname(pg_dump), "psql")
        psql = sibling if os.path.isfile(sibling) else module.get_bin_path("psql", required=True)
    status, out, err = runner.output([psql, "-X", "-A", "-t", *connection_args(params), "-c", "SHOW server_version"])
    if status != 0:
        target = "database %s %s" % (params["login_db"], runner.where()) if params["container"] else describe_target(params)
        module.fail_json(msg="Could not reach %s with psql (exit status %s): %s. Check that the server runs and the login "
                             "options (user, password, database)." % (target, status, err or "no message"))
    status, dump_version, err = runner.output([pg_dump, "--version"])
    if status != 0:
        module.fail_json(msg="pg_dump --version failed %s (exit status %s): %s" % (runner.where(), status, err))
    return out.splitlines()[0] if out else "", dump_version


def prune(module, client, name, keep_key, started):
    """Apply the retention of this series; (deleted keys, count kept). In check mode only plans, counting the
    backup a real run would have made."""
    params = module.params
    backups = catalog.list_backups(client, params["bucket"], params["prefix"], name)
    if module.check_mode:
        backups.append(dict(key=keep_key, started=started, has_manifest=True))
    keep, delete = catalog.retention_plan(backups, params["keep_days"], params["keep_min"])
    if any(b["key"] == keep_key for b in delete):  # cannot happen with keep_min >= 1; belt and braces
        module.fail_json(msg="retention would delete the backup just made (%s); nothing was deleted" % keep_key)
    if not module.check_mode:
        catalog.delete_backups(client, params["bucket"], delete)
    return [b["key"] for b in delete], len(keep)


def argument_spec():
    spec = postgres_argument_spec()
    spec.update(s3_argument_spec())
    spec.update(
        name=dict(type="str"),
        prefix=dict(type="str", default="postgres/"),
        format=dict(type="str", default="plain", choices=["custom", "plain"]),
        compression=dict(type="str", default="zstd", choices=["zstd", "gzip", "none"]),
        compression_level=dict(type="int"),
        compression_threads=dict(type="int", default=-1),
        container=dict(type="str"),
        docker_host=dict(type="str"),
        pg_dump_path=dict(type="path"),
        dump_args=dict(type="list", elements="str", default=[]),
        part_size_mb=dict(type="int", default=8),
        concurrency=dict(type="int", default=4),
        server_side_encryption=dict(type="str", choices=["AES256", "aws:kms"]),
        sse_kms_key_id=dict(type="str"),
        storage_class=dict(type="str"),
        prune=dict(type="bool", default=False),
        keep_days=dict(type="int", default=30),
        keep_min=dict(type="int", default=7),
        abort_stale_uploads_hours=dict(type="int", default=24),
    )
    return spec


def abort_stale_uploads(module, client, name):
    """Abort this series' incomplete uploads older than abort_stale_uploads_hours; their keys (check mode: only listed)."""
    params = module.params
    if params["abort_stale_uploads_hours"] < 0:
        return []
    aborted = []
    try:
        for key, upload_id in catalog.stale_uploads(client, params["bucket"], params["prefix"] + name + "_", params["abort_stale_uploads_hours"]):
            if not module.check_mode:
                client.abort_multipart_upload(Bucket=params["bucket"], Key=key, UploadId=upload_id)
            aborted.append(key)
    except Exception as exc:  # noqa: BLE001 - explain() names every botocore failure
        module.fail_json(msg=str(explain(exc, "aborting stale incomplete uploads", params)))
    return aborted


def upload_args(params, started):
    """create_multipart_upload's extra arguments: type, metadata known at the start, encryption, storage class."""
    compression = params["compression"]
    args = {"ContentType": CONTENT_TYPES[compression],
            "Metadata": {"database": params["login_db"], "format": params["format"], "compression": compression,
                         "started-at": started.isoformat(), "tool": "webstack.ops.s3_backup"}}
    for option, arg in (("server_side_encryption", "ServerSideEncryption"), ("sse_kms_key_id", "SSEKMSKeyId"),
                        ("storage_class", "StorageClass")):
        if params[option]:
            args[arg] = params[option]
    return args


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("server_side_encryption", "aws:kms", ["sse_kms_key_id"], True)])
    ensure_boto3(module)
    params = module.params
    name, level = validate(module)
    compression, fmt, bucket = params["compression"], params["format"], params["bucket"]

    pg_dump = "pg_dump" if params["container"] else (params["pg_dump_path"] or module.get_bin_path("pg_dump", required=True))
    try:
        runner = runner_for(module)
        server_version, dump_version = versions(module, runner, pg_dump)
    except BackupError as exc:
        module.fail_json(msg=str(exc))

    client = s3_client(params, max_pool_connections=params["concurrency"] + 2)
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 - explain() names every botocore failure
        module.fail_json(msg=str(explain(exc, "checking the bucket before the backup", params)))

    started = catalog.utcnow()
    key = catalog.backup_key(params["prefix"], name, fmt, compression, started)
    result = dict(changed=True, key=key, manifest_key=catalog.manifest_key(key), started_at=started.isoformat(),
                  server_version=server_version, pruned=[], aborted_uploads=[])
    result["aborted_uploads"] = abort_stale_uploads(module, client, name)
    if module.check_mode:
        if params["prune"]:
            try:
                result["pruned"], result["kept"] = prune(module, client, name, key, started)
            except Exception as exc:  # noqa: BLE001
                module.fail_json(msg=str(explain(exc, "listing backups for retention", params)), **result)
        module.exit_json(**result)

    argv = [pg_dump, "--format=%s" % fmt, *connection_args(params)]
    if fmt == "custom" and compression != "none":
        argv.append("--compress=0")  # compressed once, by us
    argv += params["dump_args"]
    try:
        source = runner.start(argv)
        stats = run_backup(client, params, bucket=bucket, key=key, source=source,
                           compress=compressor(compression, level, params["compression_threads"]),
                           part_size=params["part_size_mb"] << 20, concurrency=params["concurrency"],
                           extra_args=upload_args(params, started))
        finished = catalog.utcnow()
        duration = round((finished - started).total_seconds(), 3)
        write_manifest(client, params, bucket, key, dict(
            database=params["login_db"], name=name, key=key, server_version=server_version, pg_dump_version=dump_version,
            format=fmt, compression=compression, compression_level=level, size=stats["size"], raw_size=stats["raw_size"],
            sha256=stats["sha256"], duration_s=duration, started_at=started.isoformat(), finished_at=finished.isoformat(),
            tool="webstack.ops.s3_backup"))
    except (BackupError, S3Error) as exc:
        result["changed"] = False
        module.fail_json(msg="Backup of %s failed, nothing was left in S3: %s" % (params["login_db"], exc), **result)
    result.update(stats, duration_s=duration, finished_at=finished.isoformat())

    if params["prune"]:
        try:
            result["pruned"], result["kept"] = prune(module, client, name, key, started)
        except Exception as exc:  # noqa: BLE001
            module.fail_json(msg="The backup %s is complete, but pruning failed: %s" % (key, explain(exc, "pruning", params)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
