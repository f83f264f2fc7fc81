# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Space and inodes used per filesystem, as `df -P` and `df -i` count them (private to the collection)."""

from __future__ import annotations

import os

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert

# Filesystems that hold no data of ours: kernel views, container layers, memory-backed scratch.
PSEUDO = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs", "efivarfs",
    "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs",
    "squashfs", "sysfs", "tmpfs", "tracefs",
})


def unescape(field):
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts(proc_mounts="/proc/mounts"):
    """[(device, mount point, fstype)] in mount order; a later mount on the same point hides the earlier one."""
    table = {}
    with open(proc_mounts) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 3:
                point = unescape(fields[1])
                table.pop(point, None)
                table[point] = (unescape(fields[0]), point, fields[2])
    return list(table.values())


def mount_of(path, table):
    """The mount entry a path lives on: the longest mount point that contains it."""
    real = os.path.realpath(path)
    best = None
    for entry in table:
        point = entry[1]
        if (real == point or real.startswith(point.rstrip("/") + "/")) and (best is None or len(point) > len(best[1])):
            best = entry
    return best


def usage(path):
    """df's figures for the filesystem holding path: used percent is used / (used + available to users), rounded up."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    available = st.f_bavail * st.f_frsize
    inodes_used = st.f_files - st.f_ffree
    return dict(size_bytes=st.f_blocks * st.f_frsize, used_bytes=used, available_bytes=available,
                used_percent=percent(used, used + available),
                inodes_total=st.f_files, inodes_used=inodes_used,
                inodes_used_percent=percent(inodes_used, st.f_files) if st.f_files else None)


def percent(part, whole):
    """Rounded up to one decimal, as df rounds up its Use%, so 89.01% is not reported as fine at 89.0."""
    if not whole:
        return 0.0
    tenths = -(-part * 1000 // whole)
    return tenths / 10


def check(entries, warn, crit):
    alerts = []
    for entry in entries:
        for what, key in (("space", "used_percent"), ("inodes", "inodes_used_percent")):
            value = entry.get(key)
            if value is None:
                continue
            level = CRIT if value >= crit else WARN if value >= warn else None
            if level:
                alerts.append(alert("disk_%s" % what, level, value, crit if level == CRIT else warn,
                                    "%s on %s is %.1f%% used (%s at %s%%)" % (
                                        what, entry["mount"], value, level, crit if level == CRIT else warn)))
    return alerts
