# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""INFO digested into figures and alerts, behind the redis_stats module (pure logic, no connection)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert, worst_level
from ansible_collections.webstack.ops.plugins.module_utils._redis import info_int

MB = 1024 * 1024
KEYSPACE_FIELD = re.compile(r"^db(\d+)$")


@dataclass(frozen=True)
class Thresholds:
    max_memory_percent: float = 90
    max_clients_percent: float = 90
    min_hit_rate: float = 0.9
    min_lookups: int = 1000
    max_fragmentation: float = 1.5
    fragmentation_min_used_mb: float = 64
    max_evictions: int = 0


def human(size):
    """Bytes as people read them (binary units, as Redis's *_human fields)."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            return ("%d%s" % (value, unit)) if unit == "B" else ("%.2f%s" % (value, unit))
        value /= 1024
    return "%dB" % size  # not reached


def duration(seconds):
    """Seconds as a short human duration (for messages)."""
    seconds = int(seconds)
    if seconds >= 86400:
        return "%.1f days" % (seconds / 86400.0)
    if seconds >= 3600:
        return "%.1f h" % (seconds / 3600.0)
    if seconds >= 60:
        return "%d min" % (seconds // 60)
    return "%d s" % seconds


def percent(part, whole):
    return round(100.0 * part / whole, 1) if whole else None


def reaches(part, whole, limit_percent):
    """Whether part is at least limit_percent of whole (before rounding: 89.99% is not 90%)."""
    return bool(whole) and 100.0 * part >= limit_percent * whole


def memory_figures(info, maxmemory):
    used = info_int(info, "used_memory")
    system = info_int(info, "total_system_memory")
    # No maxmemory: Redis grows until the host runs out, so the host's memory is the limit that matters.
    limit, source = (maxmemory, "maxmemory") if maxmemory else ((system, "system") if system else (None, None))
    return dict(
        used=used,
        used_human=human(used),
        peak=info_int(info, "used_memory_peak"),
        peak_human=human(info_int(info, "used_memory_peak")),
        rss=info_int(info, "used_memory_rss"),
        maxmemory=maxmemory,
        maxmemory_human=human(maxmemory),
        maxmemory_policy=info.get("maxmemory_policy"),
        system_total=system,
        system_total_human=human(system),
        limit=limit,
        limit_source=source,
        used_percent=percent(used, limit),
        peak_percent=percent(info_int(info, "used_memory_peak"), limit),
        fragmentation_ratio=float(info.get("mem_fragmentation_ratio", 0) or 0),
    )


def client_figures(info, maxclients):
    connected = info_int(info, "connected_clients")
    return dict(
        connected=connected,
        blocked=info_int(info, "blocked_clients"),
        max=maxclients,
        used_percent=percent(connected, maxclients),
        rejected_connections=info_int(info, "rejected_connections"),
    )


def stats_figures(info):
    hits, misses = info_int(info, "keyspace_hits"), info_int(info, "keyspace_misses")
    lookups = hits + misses
    return dict(
        keyspace_hits=hits,
        keyspace_misses=misses,
        lookups=lookups,
        hit_rate=round(float(hits) / lookups, 4) if lookups else None,
        evicted_keys=info_int(info, "evicted_keys"),
        expired_keys=info_int(info, "expired_keys"),
        ops_per_sec=info_int(info, "instantaneous_ops_per_sec"),
        total_commands=info_int(info, "total_commands_processed"),
    )


def keyspace_figures(info):
    """{"db0": {"keys": .., "expires": .., "avg_ttl_ms": ..}} for every database holding keys."""
    keyspace = {}
    for field, value in info.items():
        match = KEYSPACE_FIELD.match(str(field))
        if match and isinstance(value, dict):
            keyspace[field] = dict(keys=info_int(value, "keys"), expires=info_int(value, "expires"),
                                   avg_ttl_ms=info_int(value, "avg_ttl"))
    return dict(sorted(keyspace.items(), key=lambda item: int(item[0][2:])))


def persistence_figures(info, now):
    last_save = info_int(info, "rdb_last_save_time", None)
    return dict(
        rdb_last_save_status=info.get("rdb_last_bgsave_status"),
        rdb_last_save_time=last_save,
        rdb_last_save_age_seconds=max(0, int(now - last_save)) if last_save else None,
        rdb_changes_since_last_save=info_int(info, "rdb_changes_since_last_save"),
        rdb_save_in_progress=bool(info_int(info, "rdb_bgsave_in_progress")),
        aof_enabled=bool(info_int(info, "aof_enabled")),
        aof_last_write_status=info.get("aof_last_write_status"),
    )


def server_now(info):
    """The server's clock when INFO has it (Redis 6.2+), else ours: the save age is measured on the server."""
    usec = info_int(info, "server_time_usec", None)
    return usec / 1e6 if usec else time.time()


def memory_alerts(memory, limits):
    used_percent = memory["used_percent"]
    if not reaches(memory["used"], memory["limit"], limits.max_memory_percent):
        return []
    if memory["limit_source"] == "maxmemory":
        what = "maxmemory %s" % memory["maxmemory_human"]
        if memory["maxmemory_policy"] == "noeviction":
            consequence = "with maxmemory-policy noeviction, writes fail with OOM errors at the limit"
        else:
            consequence = "at the limit Redis evicts keys (maxmemory-policy %s)" % memory["maxmemory_policy"]
    else:
        what = "the host's memory %s (maxmemory is 0, no limit set)" % memory["system_total_human"]
        consequence = "set maxmemory and an eviction policy so a cache cannot take the host's memory"
    level = CRIT if (reaches(memory["used"], memory["limit"], 100) and memory["limit_source"] == "maxmemory"
                     and memory["maxmemory_policy"] == "noeviction") else WARN
    return [alert("redis_memory", level, used_percent, limits.max_memory_percent,
                  "Redis uses %s, %.1f%% of %s (limit %s%%): %s." % (
                      memory["used_human"], used_percent, what, limits.max_memory_percent, consequence))]


def client_alerts(clients, limits):
    if not reaches(clients["connected"], clients["max"], limits.max_clients_percent):
        return []
    return [alert("redis_clients", WARN, clients["used_percent"], limits.max_clients_percent,
                  "%d clients connected, %.1f%% of maxclients %d (limit %s%%); %d connection(s) rejected since the "
                  "server started. Look for a connection leak (CLIENT LIST) or raise maxclients." % (
                      clients["connected"], clients["used_percent"], clients["max"], limits.max_clients_percent,
                      clients["rejected_connections"]))]


def hit_rate_alerts(stats, limits):
    # Few lookups say nothing about the cache: a fresh restart would alert on its first misses.
    if stats["lookups"] < max(1, limits.min_lookups) or stats["hit_rate"] >= limits.min_hit_rate:
        return []
    return [alert("redis_hit_rate", WARN, stats["hit_rate"], limits.min_hit_rate,
                  "cache hit rate %.2f (%d hits, %d misses since the server started or the last CONFIG RESETSTAT) "
                  "is below %s: keys expire or are evicted before they are read again, or the app looks up keys "
                  "it never sets." % (stats["hit_rate"], stats["keyspace_hits"], stats["keyspace_misses"],
                                      limits.min_hit_rate))]


def fragmentation_alerts(memory, limits):
    # Redis's docs: the ratio is only meaningful once the dataset is large; a small Redis shows a high ratio
    # from its fixed overhead alone.
    ratio = memory["fragmentation_ratio"]
    if memory["used"] < limits.fragmentation_min_used_mb * MB or ratio <= limits.max_fragmentation:
        return []
    return [alert("redis_fragmentation", WARN, ratio, limits.max_fragmentation,
                  "memory fragmentation ratio %.2f (RSS %s for %s used) is over %s: consider activedefrag yes, "
                  "or a restart in a quiet hour." % (ratio, human(memory["rss"]), memory["used_human"],
                                                     limits.max_fragmentation))]


def eviction_alerts(stats, memory, uptime, limits):
    if stats["evicted_keys"] <= limits.max_evictions:
        return []
    return [alert("redis_evictions", WARN, stats["evicted_keys"], limits.max_evictions,
                  "%d key(s) evicted since the server started %s ago or the last CONFIG RESETSTAT (the counter only "
                  "resets then): Redis reached maxmemory %s and dropped keys (maxmemory-policy %s). Raise maxmemory "
                  "or shorten the cache's timeouts." % (stats["evicted_keys"], duration(uptime),
                                                        memory["maxmemory_human"], memory["maxmemory_policy"]))]


def persistence_alerts(persistence):
    alerts = []
    if persistence["rdb_last_save_status"] == "err":
        alerts.append(alert("redis_rdb_save", CRIT, "err", "ok",
                            "the last RDB save (BGSAVE) failed: Redis cannot write its snapshot (disk full, or the "
                            "permissions of its dir; see its log), and with stop-writes-on-bgsave-error it refuses "
                            "writes."))
    if persistence["aof_last_write_status"] == "err":
        alerts.append(alert("redis_aof_write", CRIT, "err", "ok",
                            "the last AOF write failed: Redis cannot append to its AOF file (disk full or "
                            "permissions; see its log)."))
    return alerts


def digest(info, limits, maxmemory=None, maxclients=None):
    """Figures and alerts from an INFO reply (a dict, as redis-py parses it).

    maxmemory and maxclients come from INFO (Redis 4+ and 7+ print them); the caller passes them when INFO
    has not got them (from CONFIG GET).
    """
    maxmemory = info_int(info, "maxmemory", maxmemory or 0)
    maxclients = info_int(info, "maxclients", maxclients or 0)
    memory = memory_figures(info, maxmemory)
    clients = client_figures(info, maxclients)
    stats = stats_figures(info)
    persistence = persistence_figures(info, server_now(info))
    uptime = info_int(info, "uptime_in_seconds")
    keyspace = keyspace_figures(info)
    alerts = (memory_alerts(memory, limits) + client_alerts(clients, limits) + hit_rate_alerts(stats, limits)
              + fragmentation_alerts(memory, limits) + eviction_alerts(stats, memory, uptime, limits)
              + persistence_alerts(persistence))
    return dict(
        version=info.get("redis_version"),
        role=info.get("role"),
        uptime_seconds=uptime,
        memory=memory,
        clients=clients,
        stats=stats,
        keyspace=keyspace,
        total_keys=sum(db["keys"] for db in keyspace.values()),
        persistence=persistence,
        alerts=alerts,
        level=worst_level(alerts),
    )
