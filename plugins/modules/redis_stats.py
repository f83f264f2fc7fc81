#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_stats
short_description: Redis health figures from INFO, with threshold alerts
version_added: 0.1.0
description:
  - Reads C(INFO) over one connection and digests it into figures, memory (used and peak against C(maxmemory)
    and the host's memory, fragmentation), clients (connected and blocked against C(maxclients), rejected
    connections), cache statistics (hit rate, evicted and expired keys, operations per second), keys per
    database, the last RDB save (status and age), uptime, version and role.
  - Compares them with thresholds and returns RV(alerts) and their worst RV(level).
  - C(maxmemory) and C(maxclients) come from C(INFO), which Redis 7 prints; C(CONFIG GET) is only tried when
    C(INFO) lacks them, and a refused C(CONFIG) (managed Redis) is not an error.
  - Counters (hits, misses, evicted and expired keys, rejected connections) count since the server started or
    the last C(CONFIG RESETSTAT), so an alert on them lasts until one of those.
  - Read-only, never changes anything.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.redis
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so check mode runs it the same.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  max_memory_percent:
    description:
      - Alert when used memory reaches this percentage of C(maxmemory), or of the host's memory
        (C(total_system_memory)) when C(maxmemory) is 0; RV(memory.limit_source) says which.
      - The alert is C(crit) when C(maxmemory) is reached under C(maxmemory-policy noeviction) (writes fail), else C(warn).
      - C(total_system_memory) is the host's memory, not a container's memory limit.
    type: float
    default: 90
  max_clients_percent:
    description: Alert when connected clients reach this percentage of C(maxclients).
    type: float
    default: 90
  min_hit_rate:
    description: Alert when the hit rate, C(keyspace_hits / (keyspace_hits + keyspace_misses)), is below this (0 to 1).
    type: float
    default: 0.9
  min_lookups:
    description:
      - Judge the hit rate only once there were this many lookups (hits plus misses), so that a freshly started
        server does not alert on its first misses.
    type: int
    default: 1000
  max_fragmentation:
    description: Alert when C(mem_fragmentation_ratio) (RSS over used memory) is over this.
    type: float
    default: 1.5
  fragmentation_min_used_mb:
    description:
      - Judge fragmentation only when used memory is at least this many MiB; on a small dataset Redis's fixed
        overhead alone makes the ratio high, as Redis's documentation warns.
    type: float
    default: 64
  max_evictions:
    description:
      - Alert when more keys than this were evicted (C(evicted_keys), counted since the server started or the
        last C(CONFIG RESETSTAT)). V(0) alerts on any eviction.
    type: int
    default: 0
notes:
  - The last RDB save failing (C(rdb_last_bgsave_status:err)) or the last AOF write failing raises a C(crit) alert.
  - With persistence off (C(save "")), RV(persistence.rdb_last_save_time) is the server's start and its age grows
    without meaning; only the status is judged.
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Check the cache's Redis
  webstack.ops.redis_stats:
    login_host: 127.0.0.1
    login_password: "{{ vault_redis_password }}"
  register: redis_health

- name: Stricter on memory, only judge the hit rate after 10000 lookups
  webstack.ops.redis_stats:
    login_password: "{{ vault_redis_password }}"
    max_memory_percent: 80
    min_lookups: 10000

- name: Fail on a critical Redis alert
  ansible.builtin.assert:
    that: redis_health.level != 'crit'
    fail_msg: "{{ redis_health.alerts | map(attribute='message') | list }}"
"""

RETURN = r"""
version:
  description: C(redis_version).
  returned: success
  type: str
  sample: 7.0.15
role:
  description: C(master) or C(slave) (a replica).
  returned: success
  type: str
  sample: master
uptime_seconds:
  description: Seconds since the server started.
  returned: success
  type: int
  sample: 86400
memory:
  description: Memory figures, in bytes unless said otherwise.
  returned: success
  type: dict
  contains:
    used:
      description: C(used_memory), what Redis allocated.
      type: int
    used_human:
      description: RV(memory.used) in binary units.
      type: str
    peak:
      description: C(used_memory_peak) since the start.
      type: int
    peak_human:
      description: RV(memory.peak) in binary units.
      type: str
    rss:
      description: C(used_memory_rss), what the process holds.
      type: int
    maxmemory:
      description: C(maxmemory); 0 is no limit.
      type: int
    maxmemory_human:
      description: RV(memory.maxmemory) in binary units.
      type: str
    maxmemory_policy:
      description: C(maxmemory-policy).
      type: str
    system_total:
      description: C(total_system_memory), the host's memory (not a container's limit).
      type: int
    system_total_human:
      description: RV(memory.system_total) in binary units.
      type: str
    limit:
      description: The limit RV(memory.used_percent) is measured against.
      type: int
    limit_source:
      description: V(maxmemory), or V(system) when C(maxmemory) is 0.
      type: str
    used_percent:
      description: RV(memory.used) as a percentage of RV(memory.limit).
      type: float
    peak_percent:
      description: RV(memory.peak) as a percentage of RV(memory.limit).
      type: float
    fragmentation_ratio:
      description: C(mem_fragmentation_ratio).
      type: float
  sample: {"used": 1048576, "used_human": "1.00M", "maxmemory": 134217728, "limit_source": "maxmemory",
           "used_percent": 0.8, "fragmentation_ratio": 1.2}
clients:
  description: Client figures.
  returned: success
  type: dict
  contains:
    connected:
      description: C(connected_clients), this module's connection included.
      type: int
    blocked:
      description: C(blocked_clients) (waiting in BLPOP and the like; Celery workers do).
      type: int
    max:
      description: C(maxclients).
      type: int
    used_percent:
      description: RV(clients.connected) as a percentage of RV(clients.max).
      type: float
    rejected_connections:
      description: Connections refused at C(maxclients) since the start.
      type: int
  sample: {"connected": 12, "blocked": 2, "max": 10000, "used_percent": 0.1, "rejected_connections": 0}
stats:
  description: Cache statistics since the start or the last C(CONFIG RESETSTAT).
  returned: success
  type: dict
  contains:
    keyspace_hits:
      description: Successful key lookups.
      type: int
    keyspace_misses:
      description: Lookups of missing keys.
      type: int
    lookups:
      description: Hits plus misses.
      type: int
    hit_rate:
      description: Hits over lookups, 0 to 1; null before any lookup.
      type: float
    evicted_keys:
      description: Keys dropped at C(maxmemory).
      type: int
    expired_keys:
      description: Keys removed by their TTL.
      type: int
    ops_per_sec:
      description: C(instantaneous_ops_per_sec).
      type: int
    total_commands:
      description: C(total_commands_processed).
      type: int
  sample: {"keyspace_hits": 9500, "keyspace_misses": 500, "lookups": 10000, "hit_rate": 0.95, "evicted_keys": 0,
           "expired_keys": 120, "ops_per_sec": 35, "total_commands": 250000}
keyspace:
  description: Keys per database that holds any, from C(INFO keyspace).
  returned: success
  type: dict
  sample: {"db0": {"keys": 12, "expires": 0, "avg_ttl_ms": 0}, "db1": {"keys": 340, "expires": 340, "avg_ttl_ms": 250000}}
total_keys:
  description: Keys in every database.
  returned: success
  type: int
  sample: 352
persistence:
  description: The last RDB save and the AOF state.
  returned: success
  type: dict
  contains:
    rdb_last_save_status:
      description: C(ok) or C(err).
      type: str
    rdb_last_save_time:
      description: Unix time of the last successful save (the start, when none happened).
      type: int
    rdb_last_save_age_seconds:
      description: Seconds since then, on the server's clock.
      type: int
    rdb_changes_since_last_save:
      description: Writes not yet in a snapshot.
      type: int
    rdb_save_in_progress:
      description: Whether a BGSAVE runs now.
      type: bool
    aof_enabled:
      description: Whether the append-only file is on.
      type: bool
    aof_last_write_status:
      description: C(ok) or C(err).
      type: str
  sample: {"rdb_last_save_status": "ok", "rdb_last_save_time": 1767225600, "rdb_last_save_age_seconds": 3600,
           "rdb_changes_since_last_save": 42, "rdb_save_in_progress": false, "aof_enabled": false,
           "aof_last_write_status": "ok"}
alerts:
  description:
    - Thresholds crossed, each with C(check) (V(redis_memory), V(redis_clients), V(redis_hit_rate),
      V(redis_fragmentation), V(redis_evictions), V(redis_rdb_save), V(redis_aof_write)), C(level) (V(warn) or V(crit)),
      C(value), C(threshold) and C(message).
  returned: success
  type: list
  elements: dict
  sample: [{"check": "redis_evictions", "level": "warn", "value": 1520, "threshold": 0,
            "message": "1520 key(s) evicted since the server started 2.0 days ago ..."}]
level:
  description: The worst alert level, V(ok), V(warn) or V(crit).
  returned: success
  type: str
  sample: ok
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._redis import (
    config_value,
    connect,
    explain,
    redis,
    redis_argument_spec,
)
from ansible_collections.webstack.ops.plugins.module_utils._redis_stats import Thresholds, digest


def bad_option(params):
    """What is wrong with the thresholds, or None."""
    for name in ("max_memory_percent", "max_clients_percent"):
        if not 0 < params[name] <= 100:
            return "%s must be more than 0 and at most 100, got %s" % (name, params[name])
    if not 0 <= params["min_hit_rate"] <= 1:
        return "min_hit_rate must be between 0 and 1, got %s" % params["min_hit_rate"]
    for name in ("min_lookups", "max_evictions", "fragmentation_min_used_mb"):
        if params[name] < 0:
            return "%s must be 0 or more, got %s" % (name, params[name])
    if params["max_fragmentation"] <= 0:
        return "max_fragmentation must be more than 0, got %s" % params["max_fragmentation"]
    return None


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def main():
    argument_spec = redis_argument_spec()
    argument_spec.update(
        max_memory_percent=dict(type="float", default=90),
        max_clients_percent=dict(type="float", default=90),
        min_hit_rate=dict(type="float", default=0.9),
        min_lookups=dict(type="int", default=1000),
        max_fragmentation=dict(type="float", default=1.5),
        fragmentation_min_used_mb=dict(type="float", default=64),
        max_evictions=dict(type="int", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = bad_option(params)
    if problem:
        module.fail_json(msg="%s. Nothing was read." % problem)

    limits = Thresholds(**{name: params[name] for name in Thresholds.__dataclass_fields__})
    client = connect(module)
    try:
        info = client.info()
        maxmemory = None if "maxmemory" in info else as_int(config_value(client, "maxmemory"))
        maxclients = None if "maxclients" in info else as_int(config_value(client, "maxclients"))
    except redis.exceptions.RedisError as exc:
        module.fail_json(msg=explain(exc, params, "reading INFO from"))
    finally:
        client.close()

    module.exit_json(changed=False, **digest(info, limits, maxmemory, maxclients))


if __name__ == "__main__":
    main()
