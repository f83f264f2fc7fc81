#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: disk_usage
short_description: Space and inodes used per filesystem, with thresholds
version_added: 0.1.0
description:
  - The guide's C(df -h), with alerts. For every filesystem holding data (or the ones holding O(paths)), the size,
    space used and available, and inodes used, counted as C(df -P) and C(df -i) count them (the space reserved for
    root is not available to others, so 100% is full for the application).
  - RV(alerts) has a warning at O(warn_percent) and a critical alert at O(crit_percent), for space and for inodes.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  paths:
    description:
      - Paths whose filesystems to check (a path anywhere on a filesystem stands for it; each filesystem is listed once).
        A path that does not exist fails the task.
      - Omitted, every mounted filesystem except kernel, container-layer and memory-backed ones (C(proc), C(overlay),
        C(tmpfs) and the like), as C(df -x tmpfs -x overlay ...) would show them.
    type: list
    elements: path
  warn_percent:
    description: Percentage of space or inodes used from which a warning is raised.
    type: float
    default: 80
  crit_percent:
    description: Percentage of space or inodes used from which a critical alert is raised.
    type: float
    default: 90
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Disk space of the root filesystem and of Docker's data
  webstack.ops.disk_usage:
    paths:
      - /
      - /var/lib/docker
  register: disk
"""

RETURN = r"""
filesystems:
  description: One entry per filesystem checked.
  returned: success
  type: list
  elements: dict
  contains:
    mount:
      description: Mount point.
      type: str
      sample: /
    device:
      description: What is mounted there.
      type: str
      sample: /dev/vda1
    fstype:
      description: Filesystem type.
      type: str
      sample: ext4
    paths:
      description: The O(paths) that live on it.
      type: list
      elements: str
      sample: [/var/lib/docker]
    size_bytes:
      description: Size.
      type: int
      sample: 107374182400
    used_bytes:
      description: Space used.
      type: int
      sample: 53687091200
    available_bytes:
      description: Space available to non-root users.
      type: int
      sample: 48318382080
    used_percent:
      description: Used in percent of used plus available (C(df)'s C(Use%)), rounded up to a tenth.
      type: float
      sample: 52.7
    inodes_used_percent:
      description: Inodes used in percent (null on filesystems without an inode count).
      type: float
      sample: 4.2
alerts:
  description: Problems found, each with check (V(disk_space) or V(disk_inodes)), level, value, threshold and message.
  returned: success
  type: list
  elements: dict
  sample: [{"check": "disk_space", "level": "crit", "value": 95.1, "threshold": 90, "message": "space on / is 95.1% used (crit at 90%)"}]
level:
  description: The worst alert level, V(ok) without alerts.
  returned: success
  type: str
  sample: ok
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils import _disk_usage as disk
from ansible_collections.webstack.ops.plugins.module_utils._alerts import worst_level


def chosen(table, paths):
    """{mount point: (entry, [paths on it])}."""
    found = {}
    if paths is None:
        for entry in table:
            if entry[2] not in disk.PSEUDO and os.path.isdir(entry[1]):
                found[entry[1]] = (entry, [])
        return found
    for path in paths:
        entry = disk.mount_of(path, table)
        found.setdefault(entry[1], (entry, []))[1].append(path)
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path"),
            warn_percent=dict(type="float", default=80),
            crit_percent=dict(type="float", default=90),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 0 < params["warn_percent"] <= params["crit_percent"] <= 100:
        module.fail_json(msg="warn_percent and crit_percent must satisfy 0 < warn_percent <= crit_percent <= 100, got %s and %s"
                         % (params["warn_percent"], params["crit_percent"]))
    missing = [p for p in params["paths"] or [] if not os.path.exists(p)]
    if missing:
        module.fail_json(msg="no such path: %s; check paths" % ", ".join(missing))
    filesystems = []
    for point, (entry, paths) in chosen(disk.mounts(), params["paths"]).items():
        try:
            figures = disk.usage(paths[0] if paths else point)
        except OSError as exc:
            module.fail_json(msg="statvfs of %s failed: %s" % (paths[0] if paths else point, exc.strerror or exc))
        filesystems.append(dict(mount=point, device=entry[0], fstype=entry[2], paths=paths, **figures))
    alerts = disk.check(filesystems, params["warn_percent"], params["crit_percent"])
    module.exit_json(changed=False, filesystems=filesystems, alerts=alerts, level=worst_level(alerts))


if __name__ == "__main__":
    main()
