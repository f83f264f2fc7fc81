"""The monthly_review role against a real PostgreSQL, through ansible-playbook."""

from __future__ import annotations

import datetime as dt
import json

from ansible_run import run_playbook
from test_roles import changed_tasks, inventory

INDEX_TASK = "Create the listed indexes concurrently where missing"
INDEX = {"name": "pages_pagevisit_created_at_idx", "table": "pages_pagevisit", "columns": ["created_at"]}


def site(db):
    """The app's Lighthouse table (the sandbox model's columns) with two URLs measured four times each."""
    db.execute("CREATE EXTENSION pg_stat_statements")
    db.execute("CREATE TABLE utils_lighthouseresult (id bigserial PRIMARY KEY, url text NOT NULL, "
               "performance_score int NOT NULL, accessibility_score int NOT NULL, best_practices_score int NOT NULL, "
               "seo_score int NOT NULL, raw jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL)")
    scores = {"https://example.test/": [90, 91, 89, 80],  # latest 10 below the average of the 3 before
              "https://example.test/about/": [70, 72, 71, 68]}  # 3 below: within the 5 points
    for url, runs in scores.items():
        for days_ago, score in zip((21, 14, 7, 1), runs, strict=True):
            db.execute("INSERT INTO utils_lighthouseresult (url, performance_score, accessibility_score, "
                       "best_practices_score, seo_score, created_at) VALUES (%s, %s, 95, 90, 92, now() - %s * interval '1 day')",
                       (url, score, days_ago))
    db.execute("CREATE TABLE pages_pagevisit (id bigserial PRIMARY KEY, path text, created_at timestamptz DEFAULT now())")
    db.execute("INSERT INTO pages_pagevisit (path) SELECT '/p/' || i FROM generate_series(1, 2000) i")


def playbook(tmp_path):
    path = tmp_path / "review.yml"
    path.write_text(json.dumps([{"name": "Monthly review", "hosts": "db", "gather_facts": False,
                                 "roles": [{"role": "webstack.ops.monthly_review"}]}]))
    return str(path)


def index_exists(db):
    rows = db.execute("SELECT i.indisvalid FROM pg_indexes x JOIN pg_class c ON c.relname = x.indexname "
                      "JOIN pg_index i ON i.indexrelid = c.oid WHERE x.indexname = %s", (INDEX["name"],))
    return bool(rows) and rows[0][0]


def review(run):
    return run.report["global_custom_stats"]["monthly_review"]["dbhost"]


def test_monthly_review_alerts_on_a_score_drop_and_creates_the_index_once(tmp_path, pg_db):
    site(pg_db)
    log = tmp_path / "django.log"  # the app's format: two slow requests this week, one a year ago (outside the window)
    log.write_text("2025-11-20 10:00:00,000 WARNING webstack.requests slow request GET /old/ 200 1800 ms\n"
                   + "".join("%s WARNING webstack.requests slow request GET /blog/ 200 %d ms\n" % (
                       (dt.datetime.now() - dt.timedelta(days=d)).strftime("%Y-%m-%d %H:%M:%S,000"), 1200 + d) for d in (2, 3))
                   + "%s INFO webstack.requests GET / 200 12 ms\n" % dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S,000"))
    inv = inventory(tmp_path, pg_db, monthly_review_indexes=[INDEX], monthly_review_log_paths=[str(log)],
                    monthly_review_slow_requests_warn=2)
    play = playbook(tmp_path)

    check = run_playbook(play, "-i", inv, "--check")
    assert check.rc == 0, check.output
    assert changed_tasks(check) == [INDEX_TASK] and not index_exists(pg_db)
    assert review(check)["indexes"] == [{"name": INDEX["name"], "created": True, "valid": True}]

    run = run_playbook(play, "-i", inv)
    assert run.rc == 0, run.output
    assert index_exists(pg_db)  # really built, and valid
    summary = review(run)
    [drop] = [a for a in summary["alerts"] if a["check"] == "lighthouse_score"]
    assert drop["level"] == "warn" and drop["value"] == 10.0 and drop["threshold"] == 5.0
    assert "https://example.test/ dropped 10.0 points: 80 on " in drop["message"]
    trend = {u["url"]: u for u in summary["lighthouse_trend"]}
    assert trend["https://example.test/about/"]["drop"] == 3.0 and trend["https://example.test/about/"]["previous_runs"] == 3
    assert summary["statements"]["available"] is True and 0 < len(summary["statements"]["by_total"]) <= 10
    assert summary["slow_requests"]["count"] == 2 and summary["slow_requests"]["top"][0]["count"] == 2
    [slow] = [a for a in summary["alerts"] if a["check"] == "log_slow_request"]
    assert slow["level"] == "warn" and slow["value"] == 2
    lines = run.task_result("Print the review", "dbhost")["msg"]
    assert "index %s: created" % INDEX["name"] in lines
    assert any(line.startswith("slow requests in the web logs since ") and line.endswith(": 2") for line in lines)
    assert any(line.startswith("WARN: Lighthouse performance_score of https://example.test/ dropped 10.0") for line in lines)
    assert pg_db.server.password not in run.output

    again = run_playbook(play, "-i", inv)
    assert again.rc == 0 and changed_tasks(again) == [], again.output
    assert review(again)["indexes"] == [{"name": INDEX["name"], "created": False, "valid": True}]


def test_monthly_review_notes_what_it_cannot_read(tmp_path, pg_db):
    """No Lighthouse table and no pg_stat_statements: said in the summary, not a failure."""
    run = run_playbook(playbook(tmp_path), "-i", inventory(tmp_path, pg_db))
    assert run.rc == 0, run.output
    summary = review(run)
    assert summary["alerts"] == [] and summary["level"] == "ok" and summary["lighthouse_trend"] == []
    assert summary["slow_requests"] is None  # no log to read on this host
    assert any("no table utils_lighthouseresult in database %s" % pg_db.name in n for n in summary["notes"])
    assert any("pg_stat_statements is not installed" in n for n in summary["notes"])
