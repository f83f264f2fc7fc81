#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: s3_backup_info
short_description: List the PostgreSQL backups in S3 with their age, size and checksum, and alert on them
version_added: 0.1.0
description:
  - Lists the backups that M(webstack.ops.s3_backup) stores under O(prefix) (and the guide's older
    C(backup_YYYYmmdd_HHMMSS.sql.gz) files), newest first, with age, size, and the SHA-256 from each manifest.
  - Pages through the bucket listing, so any number of backups is seen (S3 returns at most 1,000 keys a page).
  - A backup is complete when its manifest exists (the backup module writes it last) or when it is a legacy
    C(.sql.gz) file, which never had one. Freshness and size trend look at complete backups only.
  - Returns RV(alerts) for the checks C(backup_missing) (no backup, or none complete), C(backup_age) (the newest
    complete backup is older than O(max_age_hours)), C(backup_size_drop) (the newest complete backup is smaller
    than the one before by more than O(max_size_drop_percent)), C(backup_manifest_missing) and
    C(backup_manifest_unreadable). Each database name under O(prefix) is checked on its own.
  - Returns what the retention rule O(keep_days) and O(keep_min) would delete (RV(retention)), without deleting.
  - Read-only. Never fails because of an alert; it fails only when the listing itself fails.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.s3
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  prefix:
    description:
      - Key prefix the backups are under, usually ending with C(/). V("") is the bucket's top level.
    type: str
    default: postgres/
  name:
    description:
      - Only the backups of this name (the database name, or the O(webstack.ops.s3_backup#module:name) given to the backup).
      - Omitted, every backup under O(prefix), each name checked on its own.
    type: str
  with_checksums:
    description:
      - Read the manifests of the newest O(manifest_limit) complete backups for their SHA-256 and raw size.
      - V(false) lists the keys only (one request per 1,000 objects).
    type: bool
    default: true
  manifest_limit:
    description:
      - How many manifests, newest first, to read when O(with_checksums=true) (0 or more). Older backups are
        listed with RV(backups[].sha256) V(null). Manifests are read in parallel.
    type: int
    default: 50
  max_age_hours:
    description:
      - The newest complete backup of each name may be this old, in hours (more than 0), before a C(crit) alert.
      - The default leaves two hours of slack to a nightly backup.
    type: float
    default: 26
  max_size_drop_percent:
    description:
      - The newest complete backup may be this much smaller, in percent of the previous complete one (0 to 100),
        before a C(warn) alert. Raw sizes from the manifests are compared when both are known, else the stored sizes.
    type: float
    default: 50
  keep_days:
    description:
      - Retention rule to evaluate (at least 1), as M(webstack.ops.s3_backup) applies it with O(webstack.ops.s3_backup#module:prune=true).
    type: int
    default: 30
  keep_min:
    description:
      - The newest this many backups with a manifest are kept whatever their age (at least 1).
    type: int
    default: 7
seealso:
  - module: webstack.ops.s3_backup
  - module: webstack.ops.s3_restore
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: List the backups and check their freshness
  webstack.ops.s3_backup_info:
    endpoint_url: https://s3.example.com
    bucket: webstack-backups
    access_key: "{{ vault_s3_access_key }}"
    secret_key: "{{ vault_s3_secret_key }}"
    name: webstack
  register: backups

- name: Fail when a critical backup alert is raised
  ansible.builtin.assert:
    that: backups.alerts | selectattr('level', 'equalto', 'crit') | list | length == 0
    fail_msg: "{{ backups.alerts | map(attribute='message') | list }}"

- name: Many backups, keys only
  webstack.ops.s3_backup_info:
    bucket: webstack-backups
    prefix: archive/postgres/
    with_checksums: false
"""

RETURN = r"""
backups:
  description: Every backup found, newest first.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: Object key.
      type: str
      sample: postgres/webstack_20240601T020000Z.dump.zst
    name:
      description: Name the backup was made under (the database name by default).
      type: str
      sample: webstack
    started:
      description: When the backup started (UTC, from the key).
      type: str
      sample: "2024-06-01T02:00:00Z"
    last_modified:
      description: When the object was stored (UTC).
      type: str
      sample: "2024-06-01T02:00:41Z"
    age_hours:
      description: Hours since RV(backups[].started).
      type: float
      sample: 7.25
    age_days:
      description: Days since RV(backups[].started).
      type: float
      sample: 0.3
    size:
      description: Stored size in bytes.
      type: int
      sample: 73400320
    size_pretty:
      description: RV(backups[].size) for people.
      type: str
      sample: 70.0 MiB
    format:
      description: C(custom) (pg_dump -Fc) or C(plain) (SQL).
      type: str
      sample: custom
    compression:
      description: C(zstd), C(gzip) or C(none).
      type: str
      sample: zstd
    legacy:
      description: One of the guide's C(backup_YYYYmmdd_HHMMSS.sql.gz) files.
      type: bool
      sample: false
    has_manifest:
      description: Its manifest exists.
      type: bool
      sample: true
    complete:
      description: Counts as a good backup (manifest present, or legacy).
      type: bool
      sample: true
    sha256:
      description: SHA-256 of the stored object from its manifest; V(null) when not read (see O(manifest_limit)).
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    raw_size:
      description: Uncompressed dump size from the manifest, when it gives it.
      type: int
      sample: 262144000
    manifest_error:
      description: Why the manifest could not be read, else V(null).
      type: str
      sample: null
count:
  description: Number of backups found.
  returned: success
  type: int
  sample: 42
complete_count:
  description: Number of complete backups among them.
  returned: success
  type: int
  sample: 41
total_size:
  description: Bytes stored by all backups found.
  returned: success
  type: int
  sample: 3082813440
total_size_pretty:
  description: RV(total_size) for people.
  returned: success
  type: str
  sample: 2.9 GiB
newest:
  description: The newest backup (as in RV(backups)), V(null) when there is none.
  returned: success
  type: dict
  sample: {"key": "postgres/webstack_20240601T020000Z.dump.zst", "age_hours": 7.25}
oldest:
  description: The oldest backup (as in RV(backups)), V(null) when there is none.
  returned: success
  type: dict
  sample: {"key": "postgres/webstack_20240502T020000Z.dump.zst", "age_days": 30.3}
names:
  description: The backup names found.
  returned: success
  type: list
  elements: str
  sample: [webstack]
trend:
  description: Size trend per name, from the complete backups.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Backup name.
      type: str
    count:
      description: Backups of that name.
      type: int
    complete:
      description: Complete backups of that name.
      type: int
    newest_size:
      description: Stored size of the newest complete backup.
      type: int
    previous_size:
      description: Stored size of the complete backup before it.
      type: int
    oldest_size:
      description: Stored size of the oldest complete backup.
      type: int
    change_percent:
      description: Newest against previous, in percent (negative is smaller), on RV(trend[].measure).
      type: float
    growth_percent:
      description: Newest against oldest stored size, in percent.
      type: float
    measure:
      description: C(raw_size) when both manifests gave it, else C(size).
      type: str
  sample: [{"name": "webstack", "count": 30, "complete": 30, "newest_size": 73400320, "previous_size": 73200000,
            "oldest_size": 70000000, "change_percent": 0.3, "growth_percent": 4.9, "measure": "raw_size"}]
retention:
  description: What the retention rule would do now (nothing is deleted).
  returned: success
  type: dict
  contains:
    keep_days:
      description: O(keep_days).
      type: int
    keep_min:
      description: O(keep_min).
      type: int
    would_keep:
      description: Backups it keeps.
      type: int
    would_delete:
      description: Backups it would delete.
      type: int
    would_delete_keys:
      description: Their keys, newest first.
      type: list
      elements: str
    holds:
      description: Nothing is stored past the rule (RV(retention.would_delete) is 0), so pruning keeps up.
      type: bool
  sample: {"keep_days": 30, "keep_min": 7, "would_keep": 30, "would_delete": 0, "would_delete_keys": [], "holds": true}
alerts:
  description: Alerts raised, empty when all is well. Never fails the task.
  returned: success
  type: list
  elements: dict
  contains:
    check:
      description: C(backup_missing), C(backup_age), C(backup_size_drop), C(backup_manifest_missing) or C(backup_manifest_unreadable).
      type: str
    level:
      description: C(warn) or C(crit).
      type: str
    value:
      description: What was measured (hours, percent, count).
      type: raw
    threshold:
      description: The limit it crossed.
      type: raw
    message:
      description: The alert for people.
      type: str
  sample: [{"check": "backup_age", "level": "crit", "value": 30.5, "threshold": 26,
            "message": "newest complete backup of webstack is 30.5 h old (limit 26 h): postgres/webstack_20240601T020000Z.dump.zst"}]
checked_at:
  description: When the ages were computed (UTC).
  returned: success
  type: str
  sample: "2024-06-01T09:15:00Z"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._backup_catalog import list_backups
from ansible_collections.webstack.ops.plugins.module_utils._backup_info import read_manifests, summarize
from ansible_collections.webstack.ops.plugins.module_utils._s3 import ensure_boto3, explain, s3_argument_spec, s3_client


def bad_option(params):
    """What is wrong with the numeric options, or None."""
    problems = [
        (params["max_age_hours"] <= 0, "max_age_hours must be more than 0"),
        (not 0 <= params["max_size_drop_percent"] <= 100, "max_size_drop_percent must be between 0 and 100"),
        (params["manifest_limit"] < 0, "manifest_limit must be 0 or more"),
        (params["keep_days"] < 1, "keep_days must be at least 1"),
        (params["keep_min"] < 1, "keep_min must be at least 1"),
    ]
    for wrong, message in problems:
        if wrong:
            return "%s, got %s" % (message, params[message.split()[0]])
    if params["name"] == "":
        return "name is empty: omit it to list every backup under the prefix"
    return None


def main():
    argument_spec = s3_argument_spec()
    argument_spec.update(
        prefix=dict(type="str", default="postgres/"),
        name=dict(type="str"),
        with_checksums=dict(type="bool", default=True),
        manifest_limit=dict(type="int", default=50),
        max_age_hours=dict(type="float", default=26),
        max_size_drop_percent=dict(type="float", default=50),
        keep_days=dict(type="int", default=30),
        keep_min=dict(type="int", default=7),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = bad_option(params)
    if problem:
        module.fail_json(msg=problem)
    ensure_boto3(module)

    client = s3_client(params, max_pool_connections=8)
    try:
        backups = list_backups(client, params["bucket"], params["prefix"], params["name"])
    except Exception as exc:  # pylint: disable=broad-except  # explain() turns any boto error into a clear message
        module.fail_json(msg=str(explain(exc, "listing the backups under %r" % params["prefix"], params)))
    manifests = {}
    if params["with_checksums"]:
        manifests = read_manifests(client, params["bucket"], backups, params["manifest_limit"])

    result = summarize(
        backups, manifests, where="s3://%s/%s" % (params["bucket"], params["prefix"]),
        max_age_hours=params["max_age_hours"], max_size_drop_percent=params["max_size_drop_percent"],
        keep_days=params["keep_days"], keep_min=params["keep_min"], name=params["name"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
