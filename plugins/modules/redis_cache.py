#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: redis_cache
short_description: Clear stale cache keys from Redis by prefix or pattern, in batches
version_added: 0.1.0
description:
  - Walks one Redis database with C(SCAN) (never C(KEYS), which blocks the server) and removes the keys that
    match with C(UNLINK) (freed in the background) in batches of O(count) keys.
  - Keys are chosen by a literal O(prefix) (a Django C(KEY_PREFIX) followed by a colon, say) or a glob O(pattern),
    and optionally only those idle for a while (O(min_idle_seconds)) or without an expiry (O(only_without_ttl)).
  - Emptying the whole database (C(FLUSHDB ASYNC)) is only done when asked by name with O(flush_db=true);
    C(FLUSHALL) is never run.
  - Returns how many keys were scanned, matched and deleted, and the server's memory before and after.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.redis
attributes:
  check_mode:
    support: full
    details:
      - In check mode the keys are scanned and counted (RV(matched), RV(sample)) and nothing is deleted;
        C(changed) says whether a real run would delete something.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  prefix:
    description:
      - Delete the keys that start with this text, taken literally (C(*), C(?), C([) and C(\) in it match only
        themselves).
      - Django's cache keys are C(<KEY_PREFIX>:<version>:<key>), so V(webstack:) clears the cache of a site with
        C(KEY_PREFIX = "webstack") and leaves C(webstack2:...) alone.
      - An empty prefix is refused, since it would match every key; see O(flush_db).
      - Mutually exclusive with O(pattern) and O(flush_db).
    type: str
  pattern:
    description:
      - Delete the keys matching this Redis glob (C(*), C(?), C([abc]), C(\) escapes), as C(SCAN MATCH) reads it.
      - An empty pattern is refused, since it would mean every key; see O(flush_db).
      - Mutually exclusive with O(prefix) and O(flush_db).
    type: str
  flush_db:
    description:
      - Remove every key of database O(db) with C(FLUSHDB ASYNC), other databases untouched.
      - Only this explicit option empties a database; O(prefix) and O(pattern) must then be omitted, and the
        filters do not apply.
    type: bool
    default: false
  count:
    description:
      - Keys C(SCAN) looks at per call (its C(COUNT) hint), and the most keys one C(UNLINK) removes (1 to 100000).
    type: int
    default: 1000
  min_idle_seconds:
    description:
      - Only delete keys not read nor written for at least this many seconds (C(OBJECT IDLETIME)).
      - Not available under an LFU C(maxmemory-policy), where Redis does not track idle time; the task then fails
        before deleting anything.
    type: int
  only_without_ttl:
    description:
      - Only delete keys that have no expiry (C(TTL) -1), which Redis would otherwise keep until evicted.
    type: bool
    default: false
notes:
  - SCAN walks the database while it changes; keys written during the run may or may not be seen, and a key is
    never deleted twice (RV(deleted) is what C(UNLINK) reports).
  - C(UNLINK) frees large values in a background thread, so RV(memory_after) may still include some of them.
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Clear the Django cache (KEY_PREFIX webstack) in database 1
  webstack.ops.redis_cache:
    login_password: "{{ vault_redis_password }}"
    db: 1
    prefix: "webstack:"

- name: Remove session-like keys nobody used for a week and that never expire
  webstack.ops.redis_cache:
    login_password: "{{ vault_redis_password }}"
    pattern: "webstack:1:views.decorators.cache.*"
    min_idle_seconds: 604800
    only_without_ttl: true

- name: Empty the cache's database, asked by name
  webstack.ops.redis_cache:
    login_password: "{{ vault_redis_password }}"
    db: 1
    flush_db: true
"""

RETURN = r"""
match:
  description: The C(SCAN MATCH) pattern used (a prefix escaped, then C(*)); empty with O(flush_db).
  returned: success
  type: str
  sample: "webstack:*"
db:
  description: The database worked on.
  returned: success
  type: int
  sample: 1
scanned:
  description: Keys C(SCAN) returned for the pattern (or the database's size with O(flush_db)).
  returned: success
  type: int
  sample: 20000
matched:
  description: Of those, the keys the filters chose, deleted (or to delete in check mode).
  returned: success
  type: int
  sample: 18000
deleted:
  description: Keys removed (0 in check mode).
  returned: success
  type: int
  sample: 18000
batches:
  description: C(UNLINK) calls made.
  returned: success
  type: int
  sample: 18
sample:
  description: Up to 10 of the matched keys, to see what goes (or would go).
  returned: success
  type: list
  elements: str
  sample: ["webstack:1:views.decorators.cache.cache_page..", "webstack:1:home"]
keys_before:
  description: Keys in the database before (C(DBSIZE)).
  returned: success
  type: int
  sample: 20400
keys_after:
  description: Keys in the database after (equal to RV(keys_before) in check mode).
  returned: success
  type: int
  sample: 2400
memory_before:
  description: The server's C(used_memory) in bytes before.
  returned: success
  type: int
  sample: 25165824
memory_after:
  description: The server's C(used_memory) in bytes after (equal to RV(memory_before) in check mode).
  returned: success
  type: int
  sample: 4194304
memory_before_human:
  description: RV(memory_before) in binary units.
  returned: success
  type: str
  sample: 24.00M
memory_after_human:
  description: RV(memory_after) in binary units.
  returned: success
  type: str
  sample: 4.00M
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._redis import (
    connect,
    describe_target,
    explain,
    info_int,
    redis,
    redis_argument_spec,
)
from ansible_collections.webstack.ops.plugins.module_utils._redis_cache import Filters, Outcome, clear, prefix_pattern, used_memory
from ansible_collections.webstack.ops.plugins.module_utils._redis_stats import human

MAX_COUNT = 100000


def bad_option(params):
    """What is wrong with the selection options, or None."""
    chosen = [name for name in ("prefix", "pattern") if params[name] is not None]
    if params["flush_db"]:
        if chosen:
            return "flush_db empties the whole database: omit %s with it" % " and ".join(chosen)
        if params["min_idle_seconds"] is not None or params["only_without_ttl"]:
            return "flush_db removes every key: min_idle_seconds and only_without_ttl do not apply, omit them"
        return None
    return selection_problem(params, chosen)


def selection_problem(params, chosen):
    """What is wrong with prefix or pattern and the options that go with them, or None."""
    if len(chosen) != 1:
        return ("prefix and pattern are mutually exclusive: give one" if chosen else
                "say which keys to clear: prefix (literal) or pattern (glob); flush_db: true empties the database")
    if params[chosen[0]] == "":
        return ("%s is empty, which would match every key of database %s: to empty the database set flush_db: true "
                "instead" % (chosen[0], params["db"]))
    if not 1 <= params["count"] <= MAX_COUNT:
        return "count must be between 1 and %d, got %s" % (MAX_COUNT, params["count"])
    if params["min_idle_seconds"] is not None and params["min_idle_seconds"] < 0:
        return "min_idle_seconds must be 0 or more, got %s" % params["min_idle_seconds"]
    return None


def flush_database(client, outcome, dry_run):
    """FLUSHDB ASYNC of the selected database (the only way this module empties one)."""
    size = client.dbsize()
    outcome.scanned = outcome.matched = size
    if size and not dry_run:
        client.flushdb(asynchronous=True)
        outcome.deleted = size


def main():
    argument_spec = redis_argument_spec()
    argument_spec.update(
        prefix=dict(type="str"),
        pattern=dict(type="str"),
        flush_db=dict(type="bool", default=False),
        count=dict(type="int", default=1000),
        min_idle_seconds=dict(type="int"),
        only_without_ttl=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = bad_option(params)
    if problem:
        module.fail_json(msg="%s. Nothing was deleted." % problem)

    prefix = params["prefix"]
    match = prefix_pattern(prefix) if prefix is not None else (params["pattern"] or "")
    filters = Filters(params["min_idle_seconds"], params["only_without_ttl"])
    outcome = Outcome()
    client = connect(module)
    try:
        info = client.info("memory")
        memory_before = info_int(info, "used_memory")
        policy = str(info.get("maxmemory_policy", ""))
        if filters.min_idle_seconds is not None and "lfu" in policy:
            module.fail_json(msg="min_idle_seconds needs OBJECT IDLETIME, which %s does not track under "
                                 "maxmemory-policy %s. Nothing was deleted." % (describe_target(params), policy))
        keys_before = client.dbsize()
        if params["flush_db"]:
            flush_database(client, outcome, module.check_mode)
        else:
            clear(client, match, params["count"], filters=filters, outcome=outcome,
                  literal_prefix=prefix.encode("utf-8") if prefix is not None else None, dry_run=module.check_mode)
        memory_after = memory_before if module.check_mode else used_memory(client)
        keys_after = keys_before if module.check_mode else client.dbsize()
    except redis.exceptions.RedisError as exc:
        module.fail_json(msg="%s %d key(s) were deleted before the error." % (
            explain(exc, params, "clearing keys on"), outcome.deleted), changed=bool(outcome.deleted),
            deleted=outcome.deleted)
    finally:
        client.close()

    module.exit_json(
        changed=bool(outcome.matched) if module.check_mode else bool(outcome.deleted),
        match=match,
        db=params["db"],
        scanned=outcome.scanned,
        matched=outcome.matched,
        deleted=outcome.deleted,
        batches=outcome.batches,
        sample=outcome.sample,
        keys_before=keys_before,
        keys_after=keys_after,
        memory_before=memory_before,
        memory_after=memory_after,
        memory_before_human=human(memory_before),
        memory_after_human=human(memory_after),
    )


if __name__ == "__main__":
    main()
