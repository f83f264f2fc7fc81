"""The weekly playbook's cache play (role weekly_cache) against a real Redis, through ansible-playbook."""

from __future__ import annotations

from ansible_run import local_inventory, run_playbook, task_title

CLEAR_TASK = "Clear the cache keys under the Django prefix (SCAN + UNLINK)"


def inventory(tmp_path, db, **host_vars):
    """A one-host inventory in group cache that reaches the test database the way production vars do."""
    return local_inventory(tmp_path, "cache", "cachehost", webstack_redis_host=db.server.host,
                           webstack_redis_port=db.server.port, webstack_redis_password=db.server.password,
                           webstack_redis_db=db.number, **host_vars)


def report(run):
    """The lines the role printed."""
    return run.task_result("Report the cache's state and what was cleared", "cachehost")["msg"]


def test_weekly_playbook_clears_the_django_cache_under_check_then_for_real(tmp_path, redis_db):
    site = ["webstack:1:views.decorators.cache.cache_page.%d" % i for i in range(40)]
    others = ["webstack2:1:home", "celery-task-meta-1", "other:webstack:1:home"]
    for key in site + others:
        redis_db.client.set(key, "cached page " * 2000)
    inv = inventory(tmp_path, redis_db)

    check = run_playbook("playbooks/weekly.yml", "-i", inv, "--check")
    assert check.rc == 0, check.output
    assert redis_db.client.dbsize() == 43  # nothing deleted
    assert report(check)[1].startswith("would clear 40 key(s) under webstack:")

    run = run_playbook("playbooks/weekly.yml", "-i", inv)
    assert run.rc == 0, run.output
    assert sorted(key.decode() for key in redis_db.client.scan_iter()) == sorted(others)
    lines = report(run)
    assert lines[0].startswith("Redis 7.") and "at 127.0.0.1:%d db %d: memory " % (redis_db.server.port, redis_db.number) in lines[0]
    assert lines[1].startswith("cleared 40 key(s) under webstack: in 1 UNLINK batch(es); memory ")
    summary = run.report["global_custom_stats"]["weekly_cache"]["cachehost"]
    assert summary["keys_deleted"] == 40 and summary["prefix"] == "webstack:" and summary["method"] == "redis"
    assert int(summary["memory_after"]) < int(summary["memory_before"])
    changed = [task_title(t) for play in run.report["plays"] for t in play["tasks"] if t["hosts"].get("cachehost", {}).get("changed")]
    assert changed == [CLEAR_TASK]
    assert all(redis_db.server.password not in r.output for r in (check, run))

    again = run_playbook("playbooks/weekly.yml", "-i", inv)
    assert again.rc == 0 and not again.task_result(CLEAR_TASK, "cachehost")["changed"]


def test_weekly_cache_rejects_an_unknown_method_by_name(tmp_path, redis_db):
    run = run_playbook("playbooks/weekly.yml", "-i", inventory(tmp_path, redis_db, weekly_cache_method="flushall"),
                       json_output=False)
    assert run.rc != 0
    assert "weekly_cache_method" in run.output and "flushall" in run.output


def test_the_command_method_under_check_counts_the_keys_and_runs_nothing(tmp_path, redis_db):
    """The clear_cache command itself needs the sandbox's containers (tests/integration/test_sandbox_*.py)."""
    for i in range(12):
        redis_db.client.set("webstack:1:k%d" % i, "cached page")
    inv = inventory(tmp_path, redis_db, weekly_cache_method="command",
                    weekly_cache_docker_host="unix://%s/no-engine.sock" % tmp_path)

    check = run_playbook("playbooks/weekly.yml", "-i", inv, "--check")

    assert check.rc == 0, check.output
    assert report(check)[1].startswith("would clear 12 key(s) under webstack: (clear_cache in website)")
    assert check.task_result("Run the app's clear_cache command in the web container", "cachehost")["skipped"]
    assert redis_db.client.dbsize() == 12
