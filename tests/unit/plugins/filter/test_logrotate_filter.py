"""The weekly_logs role's filters: logrotate's own account parsed, find results split into logs and archives, alerts."""

from __future__ import annotations

from ansible_collections.webstack.ops.plugins.filter.logrotate import log_files, log_size_alerts, logrotate_output

# logrotate 3.21 -d -f on /srv/logs/*.log and a missing directory (missingok): access.log due, error.log empty.
DEBUG_OUTPUT = """\
warning: logrotate in debug mode does nothing except printing debug messages!  Consider using verbose mode (-v) instead.

reading config file webstack-nginx.conf
Reading state from file: /var/lib/logrotate/webstack-nginx.status
state file /var/lib/logrotate/webstack-nginx.status does not exist
Allocating hash table for state file, size 64 entries

Handling 1 logs

rotating pattern: /srv/logs/*.log /srv/none/*.log  forced from command line (2 rotations)
empty log files are not rotated, old logs are removed
considering log /srv/logs/access.log
Creating new state
  Now: 2026-11-29 12:27
  Last rotated at 2026-11-29 12:00
  log needs rotating
considering log /srv/logs/error.log
Creating new state
  Now: 2026-11-29 12:27
  Last rotated at 2026-11-29 12:00
  log does not need rotating (log is empty)
considering log /srv/none/*.log
Creating new state
rotating log /srv/logs/access.log, log->rotateCount is 2
dateext suffix '-20261129'
glob pattern '-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'
previous log /srv/logs/access.log.1 does not exist
renaming /srv/logs/access.log.2.gz to /srv/logs/access.log.3.gz (rotatecount 2, logstart 1, i 2),
renaming /srv/logs/access.log to /srv/logs/access.log.1
running postrotate script
"""

# logrotate -v: the lock message lacks its newline, and an unknown directive is only an error line (exit status 0).
VERBOSE_OUTPUT = """\
reading config file webstack-nginx.conf
error: webstack-nginx.conf:9 unknown option 'compresss' -- ignoring line
Creating stub state file: /srv/state
acquired lock on state file /srv/stateReading state from file: /srv/state
considering log /srv/logs/access.log
  log needs rotating
considering log /srv/logs/error.log
  log needs rotating
rotating log /srv/logs/access.log, log->rotateCount is 52
renaming /srv/logs/access.log to /srv/logs/access.log.1
rotating log /srv/logs/error.log, log->rotateCount is 52
renaming /srv/logs/error.log to /srv/logs/error.log.1
running postrotate script
"""


def test_debug_output_names_what_would_rotate_and_why_the_rest_would_not():
    assert logrotate_output(DEBUG_OUTPUT) == {
        "rotated": ["/srv/logs/access.log"],
        "not_rotated": [{"path": "/srv/logs/error.log", "reason": "log is empty"}],
        "errors": [],
    }


def test_verbose_output_lists_every_rotated_log_once_and_the_error_lines():
    parsed = logrotate_output(VERBOSE_OUTPUT)
    assert parsed["rotated"] == ["/srv/logs/access.log", "/srv/logs/error.log"]
    assert parsed["errors"] == ["webstack-nginx.conf:9 unknown option 'compresss' -- ignoring line"]


def test_a_failed_postrotate_script_says_what_it_printed():
    text = VERBOSE_OUTPUT.replace("running postrotate script\n", "running postrotate script\n"
                                  "no nginx pid file at /run/nginx.pid: nginx was not told to reopen its logs\n"
                                  "error: error running shared postrotate script for '/srv/logs/*.log '\n")
    assert logrotate_output(text)["errors"][1] == (
        "error running shared postrotate script for '/srv/logs/*.log ': "
        "no nginx pid file at /run/nginx.pid: nginx was not told to reopen its logs")


def test_nothing_due_and_no_output():
    text = "considering log /srv/logs/access.log\n  log does not need rotating (log has been rotated at 2026-11-29 12:00)\n"
    assert logrotate_output(text)["not_rotated"] == [
        {"path": "/srv/logs/access.log", "reason": "log has been rotated at 2026-11-29 12:00"}]
    assert logrotate_output(None) == {"rotated": [], "not_rotated": [], "errors": []}


def found(path, size):
    """One file as ansible.builtin.find returns it (the keys the filter reads, plus some it ignores)."""
    return {"path": path, "size": size, "inode": 1, "mode": "0644"}


def test_find_results_split_into_live_logs_and_their_rotated_copies():
    files = [found("/var/log/nginx/access.log.2.gz", 300), found("/var/log/nginx/access.log", 1000),
             found("/var/log/nginx/access.log.1", 700), found("/var/log/nginx/error.log-20261122.gz", 50),
             found("/var/log/nginx/error.log", 10), found("/var/log/nginx/access.log.bak", 9),
             found("/var/log/nginx/notes.txt.1", 5)]
    split = log_files(files, ["/var/log/nginx/*.log"])
    assert [f["path"] for f in split["live"]] == ["/var/log/nginx/access.log", "/var/log/nginx/error.log"]
    assert [f["path"] for f in split["archives"]] == [
        "/var/log/nginx/access.log.1", "/var/log/nginx/access.log.2.gz", "/var/log/nginx/error.log-20261122.gz"]
    assert (split["live_bytes"], split["archive_bytes"]) == (1010, 1050)
    assert split["live"][0] == {"path": "/var/log/nginx/access.log", "size": 1000}


def test_size_alerts_only_above_the_threshold_and_none_when_off():
    live = [{"path": "/var/log/nginx/access.log", "size": 600 * 1024 * 1024}, {"path": "/var/log/nginx/error.log", "size": 10}]
    [warning] = log_size_alerts(live, 500)
    assert warning == {"check": "log_size", "level": "warn", "value": 600.0, "threshold": 500.0,
                       "message": warning["message"]}
    assert warning["message"].startswith("/var/log/nginx/access.log is 600.0 MiB (warn above 500 MiB)")
    assert log_size_alerts(live, 0) == [] and log_size_alerts(live, 600) == []
