# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: maintenance_report
type: aggregate
short_description: Writes a maintenance report (JSON and a self-contained HTML page) of every run, with trends and a webhook
version_added: 0.1.0
description:
  - Gathers, per host, the results of the collection's check modules (their C(alerts) and C(level)), the alerts of
    any other module that returns an C(alerts) list, the failed tasks (as critical alerts; warnings when their
    errors are ignored) and unreachable hosts, plus figures for trend charts (database size, connections used,
    cache hit ratio, backup size and age, Redis hit rate and memory, containers running and restarts, disk used
    per mount, log lines per pattern, Celery workers, failed tasks and queues, HTTP response time, certificate days
    left).
  - At the end of the playbook it writes C(report.json) (machine-readable) and C(report.html) into O(output_dir),
    each atomically. The HTML page is one self-contained file (inline CSS and SVG, no script, nothing fetched)
    with a status board (hosts by checks, coloured ok, warn, crit), the alerts sorted critical first, and small
    trend charts across the earlier runs kept in O(history_dir).
  - Works for every playbook. Under C(--check) it reports too (the check modules only read) and marks the run as
    a check-mode run.
  - Results of tasks with C(no_log) are not read; their check is shown as V(unknown) and a failure as
    "output hidden". Module arguments are never read.
  - When O(webhook_url) is set and an alert at or above O(webhook_min_level) was raised, a summary is posted to it
    as Slack-compatible JSON. A failed post is a warning, never a failed run.
requirements:
  - Enabled in C(ansible.cfg) (C(callbacks_enabled = webstack.ops.maintenance_report) under C([defaults])) or
    with C(ANSIBLE_CALLBACKS_ENABLED=webstack.ops.maintenance_report).
options:
  output_dir:
    description: Directory of C(report.json) and C(report.html) (created when missing; both replaced by each run).
    type: path
    default: ~/.webstack-ops/reports
    env:
      - name: WEBSTACK_REPORT_DIR
    ini:
      - section: callback_maintenance_report
        key: output_dir
  history_dir:
    description: Directory of the earlier runs (one JSON file per run) the trend charts read; by default C(history) under O(output_dir).
    type: path
    env:
      - name: WEBSTACK_REPORT_HISTORY_DIR
    ini:
      - section: callback_maintenance_report
        key: history_dir
  keep:
    description: Runs kept in O(history_dir) (this one included); older ones are deleted, and the charts span them.
    type: int
    default: 90
    env:
      - name: WEBSTACK_REPORT_KEEP
    ini:
      - section: callback_maintenance_report
        key: keep
  webhook_url:
    description:
      - Incoming-webhook URL (Slack or compatible) the alerts are posted to; none by default.
      - It usually holds a token, so it is never printed nor written to the report. Keep it in the environment or a
        vault, not in a committed C(ansible.cfg).
    type: str
    env:
      - name: WEBSTACK_REPORT_WEBHOOK
    ini:
      - section: callback_maintenance_report
        key: webhook_url
  webhook_min_level:
    description: The lowest alert level that is posted to O(webhook_url).
    type: str
    choices: [warn, crit]
    default: crit
    env:
      - name: WEBSTACK_REPORT_WEBHOOK_MIN_LEVEL
    ini:
      - section: callback_maintenance_report
        key: webhook_min_level
  title:
    description: Title of the page and of the webhook message.
    type: str
    default: Maintenance report
    env:
      - name: WEBSTACK_REPORT_TITLE
    ini:
      - section: callback_maintenance_report
        key: title
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
# For one run:
#   ANSIBLE_CALLBACKS_ENABLED=webstack.ops.maintenance_report ansible-playbook playbooks/daily.yml
#   then open ~/.webstack-ops/reports/report.html
#
# In ansible.cfg:
#   [defaults]
#   callbacks_enabled = webstack.ops.maintenance_report
#
#   [callback_maintenance_report]
#   output_dir = /var/lib/webstack-ops/reports
#   keep = 90
#   webhook_min_level = warn
#
# The webhook URL from the environment (an AWX credential or the job template's environment):
#   WEBSTACK_REPORT_WEBHOOK=https://hooks.slack.com/services/T000/B000/XXXX
"""

import os

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible_collections.webstack.ops.plugins.plugin_utils import _report as report


def parts(result):
    """(host name, task, result dict) of a callback's task result, on ansible-core 2.16 to 2.19 and later."""
    host = getattr(result, "host", None) or result._host
    task = getattr(result, "task", None) or result._task
    data = getattr(result, "result", None)
    if not isinstance(data, dict):
        data = result._result
    return host.get_name(), task, data


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "webstack.ops.maintenance_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.run = report.Run()

    def v2_playbook_on_start(self, playbook):
        self.run.playbooks.append(os.path.basename(playbook._file_name))

    def _add(self, result, failed=False, ignored=False):
        host, task, data = parts(result)
        action = getattr(task, "resolved_action", None) or task.action
        self.run.add_result(host, task.get_name(), action, data, failed=failed, ignored=ignored)

    def v2_runner_on_ok(self, result):
        self._add(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._add(result, failed=True, ignored=ignore_errors)

    def v2_runner_on_unreachable(self, result):
        host, task, data = parts(result)
        self.run.add_unreachable(host, task.get_name(), data)

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            self.run.set_stats(host, stats.summarize(host))
        output_dir = self.get_option("output_dir")
        history_dir = self.get_option("history_dir") or os.path.join(output_dir, "history")
        keep = max(int(self.get_option("keep")), 1)
        data = self.run.report(self.get_option("title"), context.CLIARGS.get("check", False))
        html_path = os.path.join(output_dir, "report.html")
        try:
            os.makedirs(output_dir, exist_ok=True)
            runs, notes = report.load_history(history_dir)
            report.write_atomic(os.path.join(output_dir, "report.json"), report.dumps(data))
            report.write_atomic(html_path, report.render_html(data, runs, keep, notes))
            report.save_history(history_dir, data, keep)
        except OSError as exc:
            self._display.warning("maintenance report: could not write the report into %s: %s" % (output_dir, exc))
            return
        counts = data["counts"]
        self._display.display("maintenance report: %s (%d critical, %d warning)" % (html_path, counts["crit"], counts["warn"]),
                              stderr=True)
        self._post(data)

    def _post(self, data):
        url = self.get_option("webhook_url")
        if not url:
            return
        message = report.webhook_message(data, self.get_option("webhook_min_level"))
        if message is None:
            return
        try:
            report.post_webhook(url, message, timeout=10)
        except report.WEBHOOK_ERRORS as exc:
            # The URL carries a token: never print it, even inside an error message.
            reason = str(exc).replace(url, "<webhook URL>")
            self._display.warning("maintenance report: posting the alerts to the webhook failed (%s); the report is written anyway" % reason)
