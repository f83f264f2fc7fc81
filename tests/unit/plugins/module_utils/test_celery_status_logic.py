"""Unit tests of celery_status's pure logic: broker URLs, ages and the alert rules (no servers)."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.ops.plugins.module_utils._celery_status import (
    CeleryError,
    Flower,
    broker_params,
    celery_alerts,
    parse_age,
)

LIMITS = dict(min_workers=1, queue_warn=100, queue_crit=1000, queue_growth=10, failed_warn=1, failed_crit=10,
              beat_max_age={})


def figures(workers=(("w1", True),), queues=None, failed=0, beat=None):
    return dict(workers=[{"name": name, "online": online} for name, online in workers], queues=queues,
                failed_tasks=dict(count=failed, since="2026-11-29T00:00:00Z", recent=[]), beat_tasks=beat)


def checks(alerts):
    return sorted(((a["check"], a["level"], a["value"]) for a in alerts), key=repr)


def test_broker_url_to_connection_options():
    params = broker_params("rediss://app%40x:p%2Fw@cache.internal:6380/3", timeout=5)
    assert (params["login_host"], params["login_port"], params["db"]) == ("cache.internal", 6380, 3)
    assert (params["login_user"], params["login_password"], params["tls"]) == ("app@x", "p/w", True)
    assert broker_params("redis://:inurl@h/0", password="given")["login_password"] == "given"
    assert broker_params("redis://h")["db"] == 0
    with pytest.raises(CeleryError, match="only Redis brokers"):
        broker_params("amqp://guest@rabbit//")


def test_flower_messages_never_carry_credentials_from_the_url():
    assert Flower("https://ops:secret@flower.internal:5555/flower").where == "https://flower.internal:5555/flower"


def test_parse_age():
    assert parse_age("26h", "x") == 26 * 3600
    assert parse_age(90, "x") == 90
    with pytest.raises(CeleryError, match="beat_max_age.t: 'soon' is not an age"):
        parse_age("soon", "beat_max_age.t")
    with pytest.raises(CeleryError, match="more than 0"):
        parse_age("0m", "x")


def test_a_healthy_celery_raises_nothing():
    assert celery_alerts(figures(queues={"celery": 3}), LIMITS, {"celery": 0}) == []


def test_worker_queue_growth_failure_and_beat_alerts():
    beat_limits = dict(LIMITS, beat_max_age={"late": 600, "never": 600, "fine": 600})
    beat = {"late": {"age_seconds": 4000.0, "last_status": "success"}, "fine": {"age_seconds": 60.0, "last_status": "success"}}
    alerts = celery_alerts(figures(workers=[("w1", False)], queues={"celery": 1500, "mail": 40}, failed=12, beat=beat),
                           beat_limits, {"celery": 1400, "mail": 35})
    assert checks(alerts) == [
        ("celery_beat", "warn", 4000.0), ("celery_beat", "warn", None), ("celery_failed_tasks", "crit", 12),
        ("celery_queue", "crit", 1500), ("celery_queue_growth", "warn", 100), ("celery_workers", "crit", 0)]
    assert [a["message"] for a in alerts if a["check"] == "celery_workers"] == [
        "no Celery worker online (Flower knows 1 worker(s), offline: w1)"]


def test_zero_turns_an_alert_off():
    off = dict(LIMITS, min_workers=0, queue_warn=0, queue_crit=0, queue_growth=0, failed_warn=0, failed_crit=0)
    assert celery_alerts(figures(workers=[], queues={"celery": 10**6}, failed=99), off, {"celery": 0}) == []
