#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_restore
short_description: Restore a PostgreSQL backup from S3, verified, into a real or a scratch database
version_added: 0.1.0
description:
  - Restores the newest backup under O(prefix) (of O(name)), or the backup O(key), into O(target_db).
  - The object is streamed from S3 through decompression (zstd, gzip or none) into C(pg_restore) (custom format)
    or C(psql -X -v ON_ERROR_STOP=1) (plain SQL), both with C(--single-transaction), without a temporary file.
  - The SHA-256 of the object is computed while it streams and compared with the backup's manifest. The end of
    the stream is held back from the client until the checksum matched, so a corrupt object never gets committed;
    the client is killed and its transaction rolls back.
  - Restores the backups of M(webstack.ops.s3_backup) (C(<prefix><name>_<YYYYmmddTHHMMSSZ>.<dump|sql>[.zst|.gz]) with a
    C(.manifest.json) beside) and the guide's C(backup_YYYYmmdd_HHMMSS.sql.gz) files (plain SQL through gzip, no manifest,
    so no checksum to verify; RV(checksum_note) says so). A backup with neither a manifest nor the guide's name is
    incomplete and never chosen.
  - O(target_db) is created when absent. An existing database is only replaced when it is a scratch database this module
    created (marked with the comment C(webstack.ops scratch restore)), or with O(force=true). A forced restore goes into a
    temporary database; only when the restore and every check succeeded are the target's sessions ended and the two
    databases swapped by renaming, and the old one dropped. A failure before that leaves the target untouched.
  - After the restore, with O(count_rows), O(expect) or O(compare_with_source), the rows of every user table are counted
    (RV(row_counts)) and checked.
  - Any failure drops the database this run restored into, so a failed run restores nothing. The message names the
    stage that failed (choosing the backup, reading the manifest, target, download, decompress, checksum, restore,
    row counts, expect, compare, swap, drop_after, container).
notes:
  - The restore client connects with the login options, given to it in its environment (the password as C(PGPASSWORD),
    never on its command line). With O(container), they are used from inside the container.
  - The client must be at least as new as the C(pg_dump) that made a custom-format backup (RV(key)'s manifest has its version).
  - A replaced database keeps its owner, encoding, locale and comment; its database-level settings (C(ALTER DATABASE ... SET))
    and privileges (C(GRANT ... ON DATABASE)) are not part of a dump and are not carried over.
  - Keep O(login_password) and O(secret_key) in a vault.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.postgres
  - webstack.ops.s3
attributes:
  check_mode:
    support: full
    details:
      - In check mode the backup is chosen and its manifest read, the database server, the target and the restore tool
        (or container) are checked, and RV(actions) lists what would happen; nothing is downloaded nor changed.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  prefix:
    description:
      - Where the backups are in the bucket (a folder, with its trailing slash). Ignored with O(key).
    type: str
    default: postgres/
  name:
    description:
      - Restore the newest backup of this name (the database name the backup was made under); V(backup) for the guide's files.
      - Omitted, the newest backup under O(prefix), whatever its name.
    type: str
  key:
    description:
      - The object key of the backup to restore, instead of the newest one.
    type: str
  target_db:
    description:
      - The database to restore into. Created when absent.
      - May not be O(login_db) when it exists, since it is dropped or renamed.
    type: str
    required: true
  scratch:
    description:
      - O(target_db) is a scratch database (for verifying a backup). It is created with the comment
        C(webstack.ops scratch restore); if it exists with that comment it is dropped and recreated; if it exists without,
        the task fails unless O(force=true).
    type: bool
    default: false
  force:
    description:
      - Replace an existing O(target_db) that is not a scratch database, safely (see the description).
    type: bool
    default: false
  drop_after:
    description:
      - Drop O(target_db) at the end, after the checks. Only with O(scratch=true).
    type: bool
    default: false
  count_rows:
    description:
      - Count the rows of every user table of the restored database (RV(row_counts)).
      - Counting reads every table once more, which adds a sizeable part of the restore's own time on a large database,
        so it is off unless asked, or implied by O(expect) or O(compare_with_source).
    type: bool
    default: false
  expect:
    description:
      - Implies O(count_rows).
      - Minimum row counts, as C(table) or C(schema.table) to a number. A table with fewer rows, or missing, fails the task
        and is named in the message.
    type: dict
  compare_with_source:
    description:
      - Implies O(count_rows).
      - Compare the exact row count of every user table with the source database (O(source_db), else the C(database) of the
        backup's manifest) on the same server and login; RV(differences) lists the tables that differ and the task fails if any.
      - Meaningful right after a backup, or when the source is quiet.
    type: bool
    default: false
  source_db:
    description:
      - The source database for O(compare_with_source), instead of the one named in the manifest (the guide's files have none).
    type: str
  no_owner:
    description:
      - Pass C(--no-owner) to C(pg_restore), so objects belong to O(login_user) (for a server without the dump's roles).
      - Only for custom-format backups; plain SQL runs as it is.
    type: bool
    default: false
  no_privileges:
    description:
      - Pass C(--no-privileges) to C(pg_restore), skipping GRANT and REVOKE. Only for custom-format backups.
    type: bool
    default: false
  container:
    description:
      - Run C(pg_restore) or C(psql) inside this running container through the Docker API (like C(docker exec -i)), for a
        host without the PostgreSQL client. The container needs C(sh) and the client.
      - Omitted, the client of this host runs.
    type: str
  docker_host:
    description:
      - The Docker engine for O(container), as C(unix:///var/run/docker.sock) or C(tcp://host:2376).
      - Omitted, the environment's C(DOCKER_HOST), else the local socket.
    type: str
requirements:
  - zstandard (Debian C(python3-zstandard)) for zstd-compressed backups.
  - docker (Debian C(python3-docker)) with O(container).
  - C(pg_restore) and C(psql) (Debian C(postgresql-client)) on the managed host, or in O(container).
seealso:
  - module: webstack.ops.s3_backup
  - module: webstack.ops.s3_backup_info
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Verify last night's backup in a scratch database, then drop it
  webstack.ops.s3_restore:
    bucket: webstack-backups
    endpoint_url: https://s3.example.com
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
    login_password: "{{ vault_postgres_password }}"
    name: webstack
    target_db: webstack_verify
    scratch: true
    drop_after: true
    compare_with_source: true
    expect:
      blog_blogcomment: 1
      pages_pagevisit: 1

- name: Emergency restore of a chosen backup over the production database
  webstack.ops.s3_restore:
    bucket: webstack-backups
    key: postgres/webstack_20250301T020000Z.dump.zst
    target_db: webstack
    force: true
    login_password: "{{ vault_postgres_password }}"

- name: Restore the guide's newest pg_dump | gzip file with the container's psql
  webstack.ops.s3_restore:
    bucket: webstack-backups
    prefix: backups/
    name: backup
    target_db: webstack_legacy
    container: postgres_db
"""

RETURN = r"""
key:
  description: The backup restored (or that would be, in check mode).
  returned: once the backup was chosen
  type: str
  sample: postgres/webstack_20250301T020000Z.dump.zst
name:
  description: The backup's name, from its key.
  returned: once the backup was chosen
  type: str
  sample: webstack
started:
  description: When the backup started (UTC, from its key).
  returned: once the backup was chosen
  type: str
  sample: "2025-03-01T02:00:00+00:00"
legacy:
  description: Whether it is one of the guide's C(backup_YYYYmmdd_HHMMSS.sql.gz) files.
  returned: once the backup was chosen
  type: bool
  sample: false
skipped_incomplete:
  description: Newer backups passed over because they have no manifest (still running, or failed).
  returned: once the backup was chosen
  type: list
  elements: str
  sample: []
format:
  description: C(custom) (pg_restore) or C(plain) (psql).
  returned: once the backup was chosen
  type: str
  sample: custom
compression:
  description: C(zstd), C(gzip) or C(none).
  returned: once the backup was chosen
  type: str
  sample: zstd
size:
  description: Size of the object in bytes.
  returned: once the backup was chosen
  type: int
  sample: 73400320
raw_size:
  description: Bytes fed to the restore client (decompressed).
  returned: after the restore
  type: int
  sample: 412090368
sha256:
  description: SHA-256 of the object as computed while restoring; in check mode, the manifest's. Null for a legacy file in check mode.
  returned: once the backup was chosen
  type: str
  sample: 9f2c...e1
checksum_verified:
  description: Whether the SHA-256 was checked against the manifest and matched.
  returned: always
  type: bool
  sample: true
checksum_note:
  description: Why there was no checksum to verify.
  returned: for a backup without manifest
  type: str
  sample: "legacy backup without a manifest: there is no SHA-256 to verify it against (gzip's own CRC-32 is still checked)"
tool:
  description: The restore client, C(pg_restore) or C(psql).
  returned: once the backup was chosen
  type: str
  sample: pg_restore
container:
  description: The container the client ran in, or null.
  returned: once the backup was chosen
  type: str
  sample: postgres_db
target_db:
  description: The database restored into.
  returned: always
  type: str
  sample: webstack_verify
restored_into:
  description: The database the client restored into; with O(force) over an existing database, the temporary one swapped in after.
  returned: once the target was checked
  type: str
  sample: webstack_restore_1a2b3c4d
created:
  description: Whether O(target_db) was created (or recreated as a scratch database).
  returned: always
  type: bool
  sample: true
replaced:
  description: Whether an existing O(target_db) was replaced (a scratch database recreated, or a forced swap).
  returned: always
  type: bool
  sample: false
dropped:
  description: Whether O(target_db) was dropped at the end (O(drop_after)).
  returned: always
  type: bool
  sample: true
duration_s:
  description: Seconds the streaming restore took (download, decompression and client), without the checks.
  returned: after the restore
  type: float
  sample: 42.7
row_counts:
  description:
    - Exact row count of every user table of the restored database, by C(schema.table) (partitions in their parent).
    - Empty unless O(count_rows), O(expect) or O(compare_with_source) asked for the counts.
  returned: always (empty before the restore and in check mode)
  type: dict
  sample: {"public.blog_blogcomment": 1200, "public.pages_pagevisit": 480000}
source_db:
  description: The source database named by the manifest (or O(source_db)), null when unknown.
  returned: once the backup was chosen
  type: str
  sample: webstack
differences:
  description: With O(compare_with_source), the tables whose counts differ (null where a table is missing on one side).
  returned: always
  type: list
  elements: dict
  contains:
    table:
      description: C(schema.table).
      type: str
    restored:
      description: Rows in the restored database.
      type: int
    source:
      description: Rows in the source database.
      type: int
  sample: [{"table": "public.pages_pagevisit", "restored": 480000, "source": 480112}]
actions:
  description: The steps planned for this run, in order (what check mode would do).
  returned: once the target was checked
  type: list
  elements: str
  sample:
    - create database webstack_verify (scratch)
    - restore postgres/webstack_20250301T020000Z.dump.zst (custom, zstd) into webstack_verify with pg_restore
stage:
  description: The stage that failed.
  returned: failure
  type: str
  sample: checksum
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.webstack.ops.plugins.module_utils._postgres import (
    connect,
    describe_target,
    postgres_argument_spec,
    scrub,
)
from ansible_collections.webstack.ops.plugins.module_utils._s3 import ensure_boto3, s3_argument_spec, s3_client
from ansible_collections.webstack.ops.plugins.module_utils._s3_restore import (
    Restore,
    RestoreError,
    import_docker,
)


def bad_option(params):
    """What is wrong with the options, or None."""
    if not params["target_db"]:
        return "target_db is empty"
    if params["drop_after"] and not params["scratch"]:
        return "drop_after: true only goes with scratch: true (a database that is not a scratch database is never dropped)"
    if params["key"] is not None and not params["key"]:
        return "key is empty: omit it to restore the newest backup"
    for table, minimum in (params["expect"] or {}).items():
        try:
            value = int(minimum)
        except (TypeError, ValueError):
            value = -1
        if value < 0 or str(value) != str(minimum).strip():
            return "expect: the minimum rows of %s must be a whole number of 0 or more, got %r" % (table, minimum)
        params["expect"][table] = value
    return None


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(s3_argument_spec())
    argument_spec.update(
        prefix=dict(type="str", default="postgres/"),
        name=dict(type="str"),
        key=dict(type="str", no_log=False),
        target_db=dict(type="str", required=True),
        scratch=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        drop_after=dict(type="bool", default=False),
        count_rows=dict(type="bool", default=False),
        expect=dict(type="dict"),
        compare_with_source=dict(type="bool", default=False),
        source_db=dict(type="str"),
        no_owner=dict(type="bool", default=False),
        no_privileges=dict(type="bool", default=False),
        container=dict(type="str"),
        docker_host=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, mutually_exclusive=[("key", "name")])
    params = module.params
    problem = bad_option(params)
    if problem:
        module.fail_json(msg="%s. Nothing was done." % problem)
    ensure_boto3(module)
    if params["container"]:
        sdk, error = import_docker()
        if sdk is None:
            module.fail_json(msg=missing_required_lib("docker", reason="for container (Debian: python3-docker)"), exception=error)

    admin = connect(module)  # fails with a clear message on a wrong password or an unreachable server
    job = Restore(params, s3_client(params), admin, module.get_bin_path, module.warn)
    try:
        job.plan()
        if not module.check_mode:
            job.run()
    except RestoreError as exc:
        what = "restoring %s into %s" % (job.result.get("key") or "a backup", params["target_db"])
        module.fail_json(msg=("%s failed at the %s stage: %s. %s" % (what, exc.stage, exc, job.cleanup_note)).strip(),
                         stage=exc.stage, **job.result)
    except Exception as exc:  # a driver or OS error the stages did not expect: still a message, not a traceback
        module.fail_json(msg=("restoring into %s failed on %s: %s: %s. %s" % (
            params["target_db"], describe_target(params), type(exc).__name__, scrub(exc, params), job.cleanup_note)).strip(),
            exception=traceback.format_exc(), **job.result)
    finally:
        admin.close()
    module.exit_json(**job.result)


if __name__ == "__main__":
    main()
