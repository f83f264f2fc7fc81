# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pattern counts and samples over log files and container logs, behind the log_scan module.

Everything is streamed line by line (gzip too) with a cap on the length of one line, and the
samples keep a bounded number of distinct messages per pattern, so memory does not grow with the
size of the logs. A state file keeps where the last run stopped: per file its inode, offset and a
fingerprint of its first bytes (to find it again after logrotate renamed or truncated it), per
container the Docker timestamp of the last line read.
"""

from __future__ import annotations

import calendar
import glob
import gzip
import hashlib
import json
import os
import re
import time
import zlib

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert
from ansible_collections.webstack.ops.plugins.module_utils._docker import DockerError, connect, docker
from ansible_collections.webstack.ops.plugins.module_utils._state_file import StateFileError, load_state

# The guide's greps. auth_failure and admin_post read nginx's (and gunicorn's) combined access log format, where
# the status and the body size follow the quoted request line (nginx escapes quotes inside it as \x22):
# 127.0.0.1 - - [29/Nov/2026:10:00:00 +0000] "POST /admin/login/ HTTP/1.1" 403 153 "-" "curl/7.88.1"
DEFAULT_PATTERNS = (
    {"name": "error", "regex": r"\bERROR\b"},
    {"name": "slow_request", "regex": r"slow request"},
    {"name": "auth_failure", "regex": r'" (?:401|403) (?:\d+|-) "'},
    {"name": "admin_post", "regex": r'"POST /admin'},
)

# Alert when a pattern's count reaches warn or crit; a pattern without an entry never alerts.
DEFAULT_THRESHOLDS = {
    "error": {"warn": 1, "crit": 50},
    "slow_request": {"warn": 10, "crit": 100},
    "auth_failure": {"warn": 50, "crit": 500},
    "admin_post": {"warn": 100},
}

BLOCK = 1 << 20  # bytes read at a time
MAX_LINE = 64 * 1024  # a line longer than a block is cut to this: the rest is skipped, not kept in memory
MAX_GROUPS = 1000  # distinct normalised messages kept per pattern for the samples
HEAD_BYTES = 256  # first bytes of a file that identify it across renames

ROTATED_SUFFIX = re.compile(r"^(?:\.(\d+)|-(\d{8}(?:\d{2})?))(\.gz)?$")
# ISO 8601 and Python logging (2026-11-29 10:00:00,123), nginx's error log (2026/11/29 10:00:00).
ISO_TIME = re.compile(r"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(Z|[+-]\d\d:?\d\d)?")
NGINX_TIME = re.compile(r"\[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\]")
MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# Normalisation for grouping repeated messages: most specific first.
NORMALISERS = (
    (re.compile(r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"), "[<time>]"),
    (ISO_TIME, "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:0x[0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,})\b"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
)


class ScanError(Exception):
    """Bad input or an unreadable source; the message says what and what to check."""


# --- options ---------------------------------------------------------------------------------------------

def compile_patterns(patterns):
    """A Counter per entry of the patterns option, refusing bad entries by name."""
    counters, seen = [], set()
    for index, item in enumerate(patterns):
        if not isinstance(item, dict) or not item.get("name") or not item.get("regex"):
            raise ScanError("patterns[%d] needs a name and a regex, got %r" % (index, item))
        unknown = set(item) - {"name", "regex"}
        if unknown:
            raise ScanError("pattern %r: unknown key(s) %s (a pattern has name and regex)" % (
                item["name"], ", ".join(sorted(unknown))))
        name = str(item["name"])
        if name in seen:
            raise ScanError("pattern %r is given twice: pattern names must be unique" % name)
        seen.add(name)
        try:
            counters.append(Counter(name, str(item["regex"])))
        except re.error as exc:
            raise ScanError("pattern %r: invalid regex %r: %s. Check the escaping (in YAML prefer single quotes)" % (
                name, item["regex"], exc)) from exc
    if not counters:
        raise ScanError("patterns is empty: give at least one (or omit it for the defaults)")
    return counters


def merge_thresholds(names, given):
    """The defaults for the patterns in use, each replaced by the user's entry for that pattern."""
    given = given or {}
    unknown = set(given) - set(names)
    if unknown:
        raise ScanError("thresholds for unknown pattern(s): %s (patterns in use: %s)" % (
            ", ".join(sorted(unknown)), ", ".join(names)))
    merged = {}
    for name in names:
        limits = given[name] if name in given else DEFAULT_THRESHOLDS.get(name, {})
        limits = limits or {}
        if not isinstance(limits, dict) or set(limits) - {WARN, CRIT}:
            raise ScanError("thresholds.%s must be a dict with warn and/or crit, got %r" % (name, limits))
        clean = {}
        for level, value in limits.items():
            if value is None:
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise ScanError("thresholds.%s.%s must be a whole number, got %r" % (name, level, value)) from None
            if number < 1:
                raise ScanError("thresholds.%s.%s must be 1 or more, got %r" % (name, level, value))
            clean[level] = number
        if WARN in clean and CRIT in clean and clean[CRIT] < clean[WARN]:
            raise ScanError("thresholds.%s: crit (%d) is below warn (%d)" % (name, clean[CRIT], clean[WARN]))
        merged[name] = clean
    return merged


def parse_since(text, now=None):
    """Epoch seconds from an ISO timestamp (no zone: local time) or a relative age like 24h, 7d, 30m."""
    if text is None or str(text).strip() == "":
        return None
    now = time.time() if now is None else now
    relative = RELATIVE.match(str(text))
    if relative:
        return now - int(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
    match = ISO_TIME.match(str(text).strip())
    if not match or match.end() != len(str(text).strip()):
        raise ScanError("since %r is neither an ISO timestamp (2026-11-29T10:00:00Z, 2026-11-29 10:00:00+01:00) "
                        "nor an age like 30m, 24h or 7d" % (text,))
    return iso_epoch(match)


# --- timestamps ---------------------------------------------------------------------------------------------

def iso_epoch(match):
    """Epoch seconds of an ISO_TIME match; without a zone the host's local time, as Python logging writes it."""
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = float("0." + match.group(7)) if match.group(7) else 0.0
    zone = match.group(8)
    if zone is None:
        return time.mktime((year, month, day, hour, minute, second, 0, 0, -1)) + fraction
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) + fraction
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def line_time(line):
    """Epoch seconds of a line's timestamp: Python logging (Django, Celery), ISO 8601 or nginx's error log at the
    start, nginx's [time_local] near the start; None when the line has none (a traceback line, another format)."""
    match = ISO_TIME.match(line, 1 if line.startswith("[") else 0)  # Celery: [2026-11-29 10:00:00,123: INFO/...]
    if match:
        return iso_epoch(match)
    match = NGINX_TIME.search(line, 0, 200)
    if match and match.group(2) in MONTHS:
        day, year, hour, minute, second = (int(match.group(i)) for i in (1, 3, 4, 5, 6))
        offset = (int(match.group(8)) * 3600 + int(match.group(9)) * 60) * (1 if match.group(7) == "+" else -1)
        return calendar.timegm((year, MONTHS[match.group(2)], day, hour, minute, second, 0, 0, 0)) - offset
    return None


def iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def docker_time_key(stamp):
    """(seconds, nanoseconds) of a Docker RFC 3339 timestamp, comparable exactly (floats lose nanoseconds)."""
    seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    fraction = stamp[19:].rstrip("Z")
    nanos = int((fraction[1:] + "000000000")[:9]) if fraction.startswith(".") else 0
    return seconds, nanos


# --- counting -------------------------------------------------------------------------------------------------

def normalise(message):
    """The message with times, ids, addresses and numbers replaced, so repeats of one message group together."""
    for regex, replacement in NORMALISERS:
        message = regex.sub(replacement, message)
    return message


def required_prefix(regex_text):
    """A literal (3 characters or more) every match starts with, after ^ or \\b, or None.

    Searching for it first is much faster than running the regex at every position of a block. Conservative:
    no literal for a regex with an alternation anywhere, or starting with a group or inline flags.
    """
    if "|" in regex_text:
        return None
    text = regex_text
    while text.startswith(("^", "\\b", "\\A")):
        text = text[1:] if text.startswith("^") else text[2:]
    literal = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and not text[index + 1].isalnum():
            literal.append(text[index + 1])
            index += 2
        elif char not in ".^$*+?{}[]\\|()":
            literal.append(char)
            index += 1
        else:
            break
    if literal and index < len(text) and text[index] in "*+?{":
        literal.pop()  # the last character is quantified: it may be absent or repeated
    return "".join(literal) if len(literal) >= 3 else None


class Counter:
    """Matches of one pattern: total, per source, and distinct messages (bounded) with an example each.

    A regex of ASCII characters runs on the raw bytes (no decoding; \\w, \\d and \\b are then ASCII-only),
    others on decoded text.
    """

    def __init__(self, name, regex_text):
        self.name = name
        self.regex_text = regex_text
        self.binary = regex_text.isascii()
        self.regex = re.compile(regex_text.encode("ascii"), re.MULTILINE) if self.binary else \
            re.compile(regex_text, re.MULTILINE)
        prefix = required_prefix(regex_text)
        self.literal = prefix.encode("ascii") if prefix and self.binary else prefix
        self.newline = b"\n" if self.binary else "\n"
        self.count = 0
        self.by_source = {}
        self.groups = {}
        self.ungrouped = 0

    def search_block(self, block, start, source):
        """Count the lines of block (whole lines, from start) that match: each line at most once."""
        newline, size, pos = self.newline, len(block), start
        while pos < size:
            if self.literal is not None:
                hit = block.find(self.literal, pos)
                if hit < 0:
                    return
            else:
                match = self.regex.search(block, pos)
                if match is None:
                    return
                hit = match.start()
            before = block.rfind(newline, pos, hit)
            line_start = before + 1 if before >= 0 else pos
            line_end = block.find(newline, hit)
            if line_end < 0:
                line_end = size
            # A match in the block may run across lines: only a line that matches on its own counts.
            line = block[line_start:line_end].rstrip(b"\r" if self.binary else "\r")
            if self.regex.search(line):
                self.add(source, line)
            pos = line_end + 1

    def add(self, source, line):
        if self.binary:
            line = line[:4000].decode("utf-8", "replace")
        line = line[:2000]
        self.count += 1
        self.by_source[source] = self.by_source.get(source, 0) + 1
        key = normalise(line[:1000])
        group = self.groups.get(key)
        if group is not None:
            group[0] += 1
        elif len(self.groups) < MAX_GROUPS:
            self.groups[key] = [1, line]
        else:
            self.ungrouped += 1

    def result(self, sample_size, example_chars):
        top = sorted(self.groups.items(), key=lambda item: -item[1][0])[:sample_size]
        return {
            "regex": self.regex_text,
            "count": self.count,
            "sources": self.by_source,
            "samples": [{"message": key[:example_chars], "count": count, "example": example[:example_chars]}
                        for key, (count, example) in top],
            "distinct": len(self.groups),
            "ungrouped": self.ungrouped,
        }


class Tally:
    """What one source read: bytes, lines, lines left out as older than since, and the files it read."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind
        self.bytes_read = 0
        self.lines_read = 0
        self.lines_skipped = 0
        self.files = []
        self.notes = []
        self.dated = False  # whether any line read before the since window had a timestamp this module reads

    def result(self):
        return {"name": self.name, "type": self.kind, "bytes_read": self.bytes_read, "lines_read": self.lines_read,
                "lines_skipped": self.lines_skipped, "files": self.files, "notes": self.notes}


class Scanner:
    """Feeds blocks of whole lines to the counters, leaving out what is older than since (None: keep everything).

    With since, lines are left out until the first one with a timestamp at or after since: a log is written in
    time order, so everything after it is newer, and lines without a timestamp before it (a traceback's) belong
    to older entries. Each stream starts outside the window again.
    """

    def __init__(self, counters, since=None):
        self.counters = counters
        self.since = since
        self.in_window = since is None

    def window_start(self, block, tally):
        """Offset of the first line of block at or after since (len(block) when there is none)."""
        pos = 0
        while pos < len(block):
            end = block.find(b"\n", pos)
            stamp = line_time(block[pos:min(end, pos + 300)].decode("utf-8", "replace"))
            tally.dated = tally.dated or stamp is not None
            if stamp is not None and stamp >= self.since:
                self.in_window = True
                return pos
            tally.lines_skipped += 1
            pos = end + 1
        return pos

    def feed(self, block, tally):
        """Count the matches in block: whole lines, each ending with a newline."""
        tally.lines_read += block.count(b"\n")
        start = 0 if self.in_window else self.window_start(block, tally)
        text = None
        for counter in self.counters:
            if counter.binary:
                counter.search_block(block, start, tally.name)
            else:
                if text is None:
                    text = block[start:].decode("utf-8", "replace")
                counter.search_block(text, 0, tally.name)

    def match_line(self, source, text):
        """Count one decoded line (container logs, already cut by their own timestamps)."""
        for counter in self.counters:
            line = text.encode("utf-8", "replace") if counter.binary else text
            if counter.regex.search(line):
                counter.add(source, line)

    def scan_stream(self, stream, tally, keep_partial=True):
        """Read a binary stream in blocks from where it stands; returns the bytes consumed.

        Memory stays within a block and one line of MAX_LINE bytes: the rest of a longer line is skipped.
        keep_partial=False leaves a last line without its newline unread (and out of the counts), to be read
        whole next time.
        """
        self.in_window = self.since is None
        consumed = 0
        carry = b""
        long_head, long_start = None, 0  # an over-long line: its first MAX_LINE bytes, and where it started
        while True:
            data = stream.read(BLOCK)
            if not data:
                break
            if long_head is not None:
                newline = data.find(b"\n")
                if newline < 0:
                    consumed += len(data)
                    continue
                consumed += newline + 1
                self.feed(long_head + b"\n", tally)
                long_head = None
                data = data[newline + 1:]
            buf = carry + data if carry else data
            end = buf.rfind(b"\n") + 1
            if end:
                self.feed(buf[:end], tally)
                consumed += end
            carry = buf[end:]
            if len(carry) > MAX_LINE:
                long_head, long_start = carry[:MAX_LINE], consumed
                consumed += len(carry)
                carry = b""
        if long_head is not None:
            if keep_partial:
                self.feed(long_head + b"\n", tally)
            else:
                consumed = long_start
        elif carry and keep_partial:
            self.feed(carry + b"\n", tally)
            consumed += len(carry)
        tally.bytes_read += consumed
        return consumed


# --- files -----------------------------------------------------------------------------------------------------

def expand_paths(paths, include_rotated, allow_missing):
    """[(live path, [rotated siblings, oldest first])] and the paths that matched nothing.

    A glob that also matches rotated files (access.log.1, access.log.2.gz, access.log-20261129) files them under
    their live file, so nothing is read twice.
    """
    matched, missing = [], []
    for pattern in paths:
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if path_exists(pattern) else [])
        parent = os.path.dirname(pattern)
        if not found and parent and not glob.has_magic(parent) and os.path.isdir(parent) \
                and not os.access(parent, os.R_OK | os.X_OK):
            raise read_error(parent, PermissionError(13, "Permission denied"))
        if not found:
            if not allow_missing:
                raise ScanError("%s: %s. Check the path (or set allow_missing: true for logs that may not exist yet)" % (
                    pattern, "no file matches this pattern" if glob.has_magic(pattern) else "no such file"))
            missing.append(pattern)
        matched.extend(path for path in found if path not in matched)
    live = [path for path in matched if not rotated_base(path, matched)]
    return [(path, rotated_siblings(path) if include_rotated else []) for path in live], missing


def path_exists(path):
    """Whether path exists; a directory on the way that may not be entered is an error, not a missing file."""
    try:
        os.lstat(path)
    except PermissionError as exc:
        raise read_error(path, exc) from exc
    except OSError:
        return False
    return True


def rotated_base(path, candidates):
    """The live file this path is a rotated copy of, when that live file is among candidates."""
    for base in candidates:
        if base != path and path.startswith(base) and ROTATED_SUFFIX.match(path[len(base):]):
            return base
    return None


def rotated_siblings(path):
    """Rotated copies of path, oldest first: access.log.3.gz, access.log.2.gz, access.log.1 (or dated names)."""
    found = []
    for candidate in glob.glob(glob.escape(path) + ".*") + glob.glob(glob.escape(path) + "-*"):
        suffix = ROTATED_SUFFIX.match(candidate[len(path):])
        if suffix and os.path.isfile(candidate):
            number, date = suffix.group(1), suffix.group(2)
            found.append(((0, -int(number)) if number else (1, int(date)), candidate))
    return [candidate for _key, candidate in sorted(found)]


def open_log(path):
    """A binary stream of the file's lines, gunzipped when it is a .gz file."""
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def head_digest(stream, length):
    data = stream.read(length)
    return hashlib.sha256(data).hexdigest(), len(data)


def skip_bytes(stream, count):
    """Move count bytes into a stream that may not seek cheaply (gzip): read and drop them in chunks."""
    if not hasattr(stream, "fileobj"):
        stream.seek(count)
        return
    left = count
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            break
        left -= len(chunk)


def read_error(path, exc):
    reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
    hint = ("run the task with become: true, or give the user read access (e.g. group adm)"
            if isinstance(exc, PermissionError) else "check that it is a readable log file")
    return ScanError("cannot read %s: %s; %s" % (path, reason, hint))


def scan_file(scanner, tally, path, start=0, live=False):
    """Scan one file from byte start; returns the offset after the last byte read, and for a live file its mark
    (taken on the very file read, even if it was rotated meanwhile). A live file's last line without its newline
    is left for the next run."""
    mark = None
    try:
        with open_log(path) as stream:
            skip_bytes(stream, start)
            consumed = scanner.scan_stream(stream, tally, keep_partial=not live)
            if live:
                info = os.fstat(stream.fileno())
                stream.seek(0)
                digest, length = head_digest(stream, min(HEAD_BYTES, start + consumed))
                mark = {"inode": info.st_ino, "dev": info.st_dev, "offset": start + consumed, "head": digest,
                        "head_len": length}
    except (OSError, EOFError, zlib.error) as exc:
        raise read_error(path, exc) from exc
    tally.files.append({"path": path, "from": start, "bytes": consumed})
    return start + consumed, mark


def file_mark(path, offset):
    """The mark of a live file left unread at offset (its end)."""
    try:
        with open(path, "rb") as stream:
            info = os.fstat(stream.fileno())
            digest, length = head_digest(stream, min(HEAD_BYTES, offset))
    except OSError as exc:
        raise read_error(path, exc) from exc
    return {"inode": info.st_ino, "dev": info.st_dev, "offset": offset, "head": digest, "head_len": length}


def same_head(path, mark):
    try:
        with open_log(path) as stream:
            return head_digest(stream, mark["head_len"])[0] == mark["head"]
    except (OSError, EOFError, zlib.error):
        return False


def predecessor(siblings, mark):
    """Index in siblings (oldest first) of the file the mark was taken on, now rotated away; None if gone."""
    for index in range(len(siblings) - 1, -1, -1):
        path = siblings[index]
        if not path.endswith(".gz"):
            info = os.stat(path)
            if (info.st_ino, info.st_dev) == (mark["inode"], mark["dev"]):
                return index
        if same_head(path, mark):
            return index
    return None


def older_than(path, since):
    """Whether the file was last written before since: then none of its lines are newer (gzip only adds to mtime)."""
    try:
        return since is not None and os.stat(path).st_mtime < since
    except OSError:
        return False


def scan_gz_log(scanner, tally, path, info, mark):
    """A compressed file given on its own: read whole, unless it is unchanged since the mark."""
    if mark and (mark.get("inode"), mark.get("size")) == (info.st_ino, info.st_size):
        tally.notes.append("unchanged since the last run")
        return mark
    if not older_than(path, scanner.since):
        scan_file(scanner, tally, path)
    return {"inode": info.st_ino, "size": info.st_size}


def resume_point(scanner, tally, path, siblings, mark):
    """Where to start in the live file (0 or the mark's offset), after reading what its rotated copies hold
    that was not read yet (all of them on a first run)."""
    info = os.stat(path)
    if not isinstance(mark, dict) or not {"inode", "dev", "offset", "head", "head_len"} <= set(mark):
        return 0, siblings
    if (info.st_ino, info.st_dev) == (mark["inode"], mark["dev"]) and info.st_size >= mark["offset"] \
            and same_head(path, mark):
        return mark["offset"], []
    found = predecessor(siblings, mark)
    if found is None:
        tally.notes.append("rotated or truncated since the last run, and the rotated file was not found: "
                           "lines written between the last run and the rotation are not counted")
        return 0, []
    tally.notes.append("rotated since the last run: read %s from byte %d" % (siblings[found], mark["offset"]))
    scan_file(scanner, tally, siblings[found], mark["offset"])
    return 0, siblings[found + 1:]


def scan_log(scanner, tally, path, siblings, mark):
    """Scan a live file (and its rotated copies as needed) from the mark; returns the new mark."""
    if os.path.isdir(path):
        raise ScanError("cannot read %s: it is a directory; give a file or a glob like %s/*.log" % (path, path))
    try:
        info = os.stat(path)
    except OSError as exc:
        raise read_error(path, exc) from exc
    if path.endswith(".gz"):
        return scan_gz_log(scanner, tally, path, info, mark)
    start, todo = resume_point(scanner, tally, path, siblings, mark)
    for sibling in todo:
        if not older_than(sibling, scanner.since):
            scan_file(scanner, tally, sibling)
    if start == 0 and older_than(path, scanner.since):
        return file_mark(path, info.st_size)  # last written before since: nothing new, the mark goes to its end
    return scan_file(scanner, tally, path, start, live=True)[1]


# --- containers -------------------------------------------------------------------------------------------------

def scan_container(scanner, tally, container, since_key):
    """Scan a container's log lines (Docker timestamps) after since_key = (seconds, nanoseconds) or None; returns
    the Docker timestamp of the last line read (None when nothing was read)."""
    kwargs = dict(stream=True, follow=False, timestamps=True, stdout=True, stderr=True)
    if since_key is not None:
        kwargs["since"] = since_key[0]  # whole seconds: the exact cut is made below
    last, buffer = None, b""
    for chunk in container.logs(**kwargs):
        tally.bytes_read += len(chunk)
        buffer += chunk
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        if len(buffer) > MAX_LINE:
            buffer = buffer[:MAX_LINE]
        for raw in lines:
            stamp, _sep, text = raw.decode("utf-8", "replace").rstrip("\r").partition(" ")
            try:
                key = docker_time_key(stamp)
            except ValueError:
                key = None
            tally.lines_read += 1
            if key is not None and since_key is not None and key <= since_key:
                tally.lines_skipped += 1
                continue
            scanner.match_line(tally.name, text)
            if key is not None:
                last = stamp
    return last


def docker_client(docker_host, timeout):
    """A Docker SDK client for docker_host (None: DOCKER_HOST and the default socket), checked with a ping."""
    try:
        return connect(docker_host, timeout)
    except DockerError as exc:
        raise ScanError(str(exc)) from None


def read_container(scanner, tally, client, name, since_key):
    """scan_container with Docker's errors turned into clear ones."""
    try:
        return scan_container(scanner, tally, client.containers.get(name), since_key)
    except docker.errors.NotFound as exc:
        raise ScanError("container %s not found on the Docker engine: check its name (docker ps -a)" % name) from exc
    except (docker.errors.DockerException, OSError) as exc:
        raise ScanError("cannot read the logs of container %s: %s" % (name, exc)) from exc


# --- state ----------------------------------------------------------------------------------------------------

# --- the whole run ----------------------------------------------------------------------------------------------

def run_scan(options, docker_client=None, now=None):
    """Scan everything the options name; returns (result dict without alerts, new state or None)."""
    counters = compile_patterns(options["patterns"])
    thresholds = merge_thresholds([c.name for c in counters], options.get("thresholds"))
    since = parse_since(options.get("since"), now)
    if not options.get("paths") and not options.get("containers"):
        raise ScanError("give paths and/or containers to scan")
    scanner = Scanner(counters, since)
    state_file = options.get("state_file")
    state = None
    if state_file:
        try:
            state = load_state(state_file, "log_scan")
        except StateFileError as exc:
            raise ScanError(str(exc)) from exc
        state.setdefault("files", {})
        state.setdefault("containers", {})
    new_state = json.loads(json.dumps(state)) if state is not None else None

    targets, missing = expand_paths(options.get("paths") or [], options.get("include_rotated", True),
                                    options.get("allow_missing", False))
    tallies = []
    for path, siblings in targets:
        tally = Tally(path, "file")
        mark = state["files"].get(os.path.abspath(path)) if state is not None else None
        new_mark = scan_log(scanner, tally, path, siblings, mark)
        if tally.lines_skipped and not tally.dated:
            tally.notes.append("no line has a timestamp log_scan reads (nginx, Python logging, ISO 8601): since left "
                               "out all %d line(s)" % tally.lines_skipped)
        if new_state is not None:
            new_state["files"][os.path.abspath(path)] = new_mark
        tallies.append(tally)

    for name in options.get("containers") or []:
        tally = Tally(name, "container")
        mark = state["containers"].get(name) if state is not None else None
        try:
            since_key = docker_time_key(mark["timestamp"]) if mark else None
        except (TypeError, KeyError, ValueError):
            since_key = None  # a mark this version cannot read: start over
        if since is not None:
            since_key = max(since_key or (0, 0), (int(since), int((since - int(since)) * 1e9)))
        last = read_container(scanner, tally, docker_client, name, since_key)
        if new_state is not None and last is not None:
            new_state["containers"][name] = {"timestamp": last}
        tallies.append(tally)

    result = {
        "patterns": {c.name: c.result(options["sample_size"], options["example_chars"]) for c in counters},
        "sources": [t.result() for t in tallies],
        "missing": missing,
        "bytes_read": sum(t.bytes_read for t in tallies),
        "lines_read": sum(t.lines_read for t in tallies),
        "lines_skipped": sum(t.lines_skipped for t in tallies),
        "since": iso_utc(since) if since is not None else None,
        "thresholds": thresholds,
    }
    return result, (new_state if new_state != state else None)


def pattern_alerts(patterns, thresholds, since_text):
    """An alert per pattern whose count reached its warn or crit threshold."""
    alerts = []
    window = " since %s" % since_text if since_text else ""
    for name, found in patterns.items():
        limits = thresholds.get(name, {})
        for level in (CRIT, WARN):
            if level in limits and found["count"] >= limits[level]:
                top = found["samples"][0]["example"][:120] if found["samples"] else ""
                alerts.append(alert(
                    "log_%s" % name, level, found["count"], limits[level],
                    "%d log line(s) matched %s%s in %d source(s) (%s threshold %d); most frequent: %s" % (
                        found["count"], name, window, len(found["sources"]), level, limits[level], top)))
                break
    return alerts
