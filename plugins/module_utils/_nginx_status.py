# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nginx as an outage is diagnosed: does its configuration test pass, does its master process run (private to the
collection). Only reads: `nginx -t` and the pid file with the process it names."""

from __future__ import annotations

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, alert


def output_lines(*texts):
    """The non-empty lines of a command's outputs (nginx -t writes to stderr)."""
    return [line for text in texts for line in (text or "").splitlines() if line.strip()]


def master(pid_file, proc="/proc"):
    """{pid, running, reason}: the pid file's process, running when it is an nginx process."""
    try:
        with open(pid_file) as handle:
            text = handle.read().strip()
    except OSError as exc:
        return dict(pid=None, running=False, reason="pid file %s: %s" % (pid_file, exc.strerror or exc))
    if not text.isdigit():
        return dict(pid=None, running=False, reason="pid file %s holds no process ID (%r)" % (pid_file, text[:40]))
    pid = int(text)
    try:
        with open("%s/%d/comm" % (proc, pid)) as handle:
            name = handle.read().strip()
    except OSError:
        return dict(pid=pid, running=False, reason="no process %d, the pid file %s is stale" % (pid, pid_file))
    if not name.startswith("nginx"):
        return dict(pid=pid, running=False, reason="process %d is %s, not nginx: the pid file %s is stale" % (pid, name, pid_file))
    return dict(pid=pid, running=True, reason=None)


def alerts(config_ok, test_output, state):
    found = []
    if not config_ok:
        found.append(alert("nginx_config", CRIT, False, True, "nginx's configuration test failed: %s"
                           % " | ".join(test_output[-3:] or ["no output"])))
    if not state["running"]:
        found.append(alert("nginx_down", CRIT, state["pid"], None, "nginx does not run (%s)" % state["reason"]))
    return found
