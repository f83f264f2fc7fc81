"""webstack.ops.redis_cache against a real Redis 7: exactly the chosen keys go, check mode deletes nothing."""

from __future__ import annotations

from test_redis_stats import run_tasks

MODULE = "webstack.ops.redis_cache"


def keys(db):
    return sorted(key.decode() for key in db.client.scan_iter(count=1000))


def test_a_prefix_clears_exactly_its_keys_check_run_run_again(redis_db):
    site = ["webstack:1:page-%d" % i for i in range(30)]
    others = ["webstack2:1:page", "other:webstack:1:page", "xwebstack:1:page", "celery-task-meta-1"]
    for key in site + others:
        redis_db.client.set(key, "cached page")
    args = redis_db.module_args(prefix="webstack:")

    (check, run, again), playbook = run_tasks(MODULE, [args, args, args], check=[0])

    assert check["changed"] is True and check["matched"] == 30 and check["deleted"] == 0, playbook.output
    assert check["match"] == "webstack:*" and check["keys_after"] == check["keys_before"] == 34
    assert len(check["sample"]) == 10 and all(key.startswith("webstack:1:page-") for key in check["sample"])
    # The real run found everything still there, then removed the site's keys and nothing else.
    assert run["changed"] is True and run["keys_before"] == 34 and run["scanned"] == run["matched"] == run["deleted"] == 30
    assert run["keys_after"] == 4 and run["batches"] == 1
    assert run["memory_before"] > 0 and run["memory_after"] > 0 and run["memory_before_human"]
    assert again["changed"] is False and again["deleted"] == 0 and again["batches"] == 0
    assert keys(redis_db) == sorted(others)


def test_a_prefix_with_glob_characters_is_taken_literally(redis_db):
    literal = ["cache[v2]*?:a", "cache[v2]*?:b", "a\\b:1"]
    # Each of these would match the prefixes below read as globs.
    lookalikes = ["cachev-any-x:a", "cache2XY:a", "ab:1"]
    for key in literal + lookalikes:
        redis_db.client.set(key, "cached page")

    prefixes = [redis_db.module_args(prefix="cache[v2]*?:"), redis_db.module_args(prefix="a\\b:")]
    (brackets, backslash), run = run_tasks(MODULE, prefixes)

    assert brackets["deleted"] == 2 and brackets["match"] == "cache\\[v2]\\*\\?:*", run.output
    assert backslash["deleted"] == 1 and backslash["match"] == "a\\\\b:*"
    assert keys(redis_db) == sorted(lookalikes)


def test_twenty_thousand_keys_go_in_batches_and_check_mode_counts_them_all(redis_db):
    pipe = redis_db.client.pipeline(transaction=False)
    for i in range(20000):
        pipe.set("webstack:1:fragment-%d" % i, "<div>cached fragment %d</div>" % i)
    for i in range(500):
        pipe.set("sessions:%d" % i, "kept")
    pipe.execute()
    args = redis_db.module_args(prefix="webstack:", count=2000)

    (check, run), playbook = run_tasks(MODULE, [args, args], check=[0])

    assert check["matched"] == 20000 and check["deleted"] == 0 and check["batches"] == 0, playbook.output
    assert run["keys_before"] == 20500 and run["deleted"] == 20000 and run["batches"] == 10
    assert run["keys_after"] == 500 == redis_db.client.dbsize()
    assert run["memory_after"] < run["memory_before"]


def test_idle_and_ttl_filters_keep_recent_and_expiring_keys(redis_db):
    client = redis_db.client
    client.set("webstack:1:recent", "stale page")
    stale = client.dump("webstack:1:recent")
    # RESTORE ... IDLETIME makes keys last used a day ago, as a week of traffic would leave them.
    client.restore("webstack:1:old", 0, stale, idletime=86400)
    client.restore("webstack:1:old-expiring", 3600 * 1000, stale, idletime=86400)
    assert client.object("idletime", "webstack:1:old") >= 86400

    [result], run = run_tasks(MODULE, [redis_db.module_args(prefix="webstack:", min_idle_seconds=3600,
                                                            only_without_ttl=True)])

    assert result["scanned"] == 3 and result["deleted"] == 1 and result["sample"] == ["webstack:1:old"], run.output
    assert keys(redis_db) == ["webstack:1:old-expiring", "webstack:1:recent"]


def test_emptying_a_database_is_asked_by_name_and_empty_selections_are_refused(redis_db, other_redis_db, free_port):
    for i in range(25):
        redis_db.client.set("webstack:1:k%d" % i, "cached page")
    other_redis_db.client.set("celery", "broker data")
    args = redis_db.module_args

    results, run = run_tasks(MODULE, [
        args(pattern=""),
        args(prefix=""),
        args(),
        args(flush_db=True, prefix="webstack:"),
        args(login_port=free_port, prefix="webstack:"),
        args(flush_db=True),
        args(flush_db=True),
    ], check=[5])
    empty_pattern, empty_prefix, nothing, flush_and_prefix, unreachable, flush_check, flush = results

    assert empty_pattern["failed"] and "pattern is empty, which would match every key of database %d" % redis_db.number in empty_pattern["msg"]
    assert "flush_db: true" in empty_pattern["msg"] and "Nothing was deleted" in empty_pattern["msg"]
    assert empty_prefix["failed"] and "prefix is empty" in empty_prefix["msg"]
    assert nothing["failed"] and "prefix (literal) or pattern (glob)" in nothing["msg"]
    assert flush_and_prefix["failed"] and "omit prefix" in flush_and_prefix["msg"]
    assert unreachable["failed"] and "Could not connect to Redis at 127.0.0.1:%d" % free_port in unreachable["msg"]
    assert flush_check["changed"] is True and flush_check["matched"] == 25 and flush_check["deleted"] == 0, run.output
    assert flush["changed"] is True and flush["deleted"] == 25 and flush["match"] == ""
    assert redis_db.client.dbsize() == 0 and other_redis_db.client.get("celery") == b"broker data"
