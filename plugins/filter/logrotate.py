# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the weekly_logs role: what logrotate says it rotated, the logs and archives a find found, size alerts."""

from __future__ import annotations

import fnmatch
import re

from ansible_collections.webstack.ops.plugins.module_utils._alerts import WARN, alert

MIB = 1024 * 1024

# `logrotate -d` (debug: what it would do) and `logrotate -v` (what it does) print the same account on stderr.
ROTATING = re.compile(r"^rotating log (?P<path>.+), log->rotateCount is -?\d+$")
CONSIDERING = re.compile(r"^considering log (?P<path>.+)$")
NOT_NEEDED = re.compile(r"^\s*log does not need rotating(?: \((?P<reason>.*)\))?\s*$")
ERROR = re.compile(r"^error: (?P<message>.+)$")
# -v runs the scripts: what a failing one prints comes between this line and logrotate's error line about it.
SCRIPT = re.compile(r"^running (?:shared |non-shared )?(?:pre|post)rotate script$|^running (?:first|last)action script$")
# What logrotate appends to a rotated copy: .1, .2.gz, or a dateext date (-20261129, -2026112913), as log_scan reads them.
ROTATED_SUFFIX = re.compile(r"(?:\.\d+|-\d{8,10})(?:\.gz)?$")


def logrotate_output(text):
    """The logs logrotate rotated (or, with -d, would rotate), the ones it left with its reason, and its error lines.

    Returns {"rotated": [path], "not_rotated": [{"path", "reason"}], "errors": [message]}. logrotate reports some
    configuration errors (an unknown directive) only as `error:` lines and still exits 0, so callers look at errors too.
    A failed script's error carries what the script printed (e.g. why nginx could not be told to reopen its logs).
    """
    rotated, not_rotated, errors = [], [], []
    considering = script_output = None
    for line in (text or "").splitlines():
        if SCRIPT.match(line):
            script_output = []
            continue
        found = ROTATING.match(line)
        if found:
            if found["path"] not in rotated:
                rotated.append(found["path"])
            continue
        found = CONSIDERING.match(line)
        if found:
            considering = found["path"]
            continue
        found = NOT_NEEDED.match(line)
        if found and considering is not None:
            not_rotated.append({"path": considering, "reason": found["reason"] or "not due"})
            considering = None
            continue
        found = ERROR.match(line)
        if found:
            message = found["message"].strip()
            if script_output and "script" in message:
                message += ": " + " / ".join(script_output)
            errors.append(message)
            script_output = None
        elif script_output is not None and line.strip():
            script_output.append(line.strip())
    return {"rotated": rotated, "not_rotated": not_rotated, "errors": errors}


def _entry(found):
    return {"path": found["path"], "size": int(found.get("size") or 0)}


def log_files(files, globs):
    """Split ansible.builtin.find's `files` into the live logs the globs name and their rotated copies.

    Returns {"live": [...], "archives": [...], "live_bytes", "archive_bytes"}, each file as {"path", "size"},
    sorted by path. A file that is neither (another name in the same directory) is left out.
    """
    globs = list(globs or [])
    live, archives = [], []
    for found in sorted(files or [], key=lambda f: f["path"]):
        path = found["path"]
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in globs):
            live.append(_entry(found))
            continue
        suffix = ROTATED_SUFFIX.search(path)
        if suffix and any(fnmatch.fnmatchcase(path[:suffix.start()], pattern) for pattern in globs):
            archives.append(_entry(found))
    return {"live": live, "archives": archives,
            "live_bytes": sum(f["size"] for f in live), "archive_bytes": sum(f["size"] for f in archives)}


def log_size_alerts(live, warn_mb):
    """A `log_size` warning per live log larger than warn_mb MiB (0 or less: no check)."""
    limit = float(warn_mb or 0)
    if limit <= 0:
        return []
    return [alert("log_size", WARN, round(f["size"] / MIB, 1), limit,
                  "%s is %.1f MiB (warn above %g MiB): more traffic or errors than usual this week"
                  % (f["path"], f["size"] / MIB, limit))
            for f in live or [] if f["size"] > limit * MIB]


class FilterModule:
    def filters(self):
        return {"logrotate_output": logrotate_output, "log_files": log_files, "log_size_alerts": log_size_alerts}
