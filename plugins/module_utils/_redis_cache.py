# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clearing cache keys with SCAN and UNLINK in batches, behind the redis_cache module."""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.webstack.ops.plugins.module_utils._redis import info_int, key_text

# Characters special to Redis's glob (stringmatchlen): escaped with a backslash they match themselves.
GLOB_SPECIAL = "\\*?["
SAMPLE_SIZE = 10


def glob_escape(text):
    """text as a Redis glob that matches exactly itself."""
    return "".join("\\" + char if char in GLOB_SPECIAL else char for char in text)


def prefix_pattern(prefix):
    """The SCAN MATCH pattern of every key starting with prefix, taken literally."""
    return glob_escape(prefix) + "*"


@dataclass(frozen=True)
class Filters:
    """Which of the keys the pattern matches are deleted."""

    min_idle_seconds: int | None = None  # OBJECT IDLETIME, seconds since the key was last read or written
    only_without_ttl: bool = False  # keys without an expiry (TTL -1), which Redis would keep forever

    @property
    def active(self):
        return self.min_idle_seconds is not None or self.only_without_ttl


@dataclass
class Outcome:
    scanned: int = 0  # keys SCAN returned for the pattern
    matched: int = 0  # of those, keys the filters keep: deleted, or to delete in check mode
    deleted: int = 0  # keys UNLINK removed
    batches: int = 0  # UNLINK calls
    sample: list = field(default_factory=list)


def used_memory(client):
    return info_int(client.info("memory"), "used_memory")


def select(client, keys, filters):
    """The keys that pass the filters, read for the whole page in one pipeline round trip."""
    if not filters.active:
        return keys
    pipe = client.pipeline(transaction=False)
    for key in keys:
        if filters.min_idle_seconds is not None:
            pipe.object("idletime", key)
        if filters.only_without_ttl:
            pipe.ttl(key)
    replies = iter(pipe.execute())
    kept = []
    for key in keys:
        idle = next(replies) if filters.min_idle_seconds is not None else None
        ttl = next(replies) if filters.only_without_ttl else -1
        if filters.min_idle_seconds is not None and (idle is None or idle < filters.min_idle_seconds):
            continue  # recently used, or gone meanwhile
        if ttl != -1:
            continue  # has an expiry (or is gone: -2)
        kept.append(key)
    return kept


def clear(client, match, count, *, filters, outcome, literal_prefix=None, dry_run=False):
    """SCAN the selected database for match and UNLINK what passes the filters, count keys per UNLINK.

    The figures go into outcome as the run goes, so that they are known when a command fails midway.
    literal_prefix (bytes) double-checks prefix mode client-side. dry_run counts and deletes nothing.
    SCAN may return a key twice while Redis shrinks its hash table; UNLINK's own count keeps `deleted` exact.
    """
    pending = []

    def flush(keys):
        outcome.deleted += client.unlink(*keys)
        outcome.batches += 1

    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=match, count=count)
        outcome.scanned += len(keys)
        if literal_prefix is not None:
            keys = [key for key in keys if key.startswith(literal_prefix)]
        chosen = select(client, keys, filters) if keys else []
        outcome.matched += len(chosen)
        outcome.sample.extend(key_text(key) for key in chosen[:SAMPLE_SIZE - len(outcome.sample)])
        if not dry_run:
            pending.extend(chosen)
            while len(pending) >= count:
                flush(pending[:count])
                del pending[:count]
        if int(cursor) == 0:
            break
    if pending:
        flush(pending)
