# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that gather the alerts of several check results, for roles' summaries."""

from __future__ import annotations

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, alert, worst_level


def collect_alerts(results):
    """Every alert of a {check name: registered result} dict, each with its `source`.

    A skipped result adds nothing. A result without `alerts` is a check that could not run (its module failed
    and the task went on): it becomes a critical `<name>_unavailable` alert with the module's message, so a
    broken check is never read as a healthy one.
    """
    collected = []
    for name, registered in (results or {}).items():
        result = registered or {}
        if result.get("skipped"):
            continue
        if isinstance(result.get("alerts"), list):
            collected += [dict(item, source=name) for item in result["alerts"]]
            continue
        message = result.get("msg") or "its task failed without a message"
        collected.append(dict(alert("%s_unavailable" % name, CRIT, None, None, "could not check %s: %s" % (name, message)),
                              source=name))
    return collected


def alerts_level(alerts):
    """'crit', 'warn' or 'ok': the worst level of a list of alerts."""
    return worst_level(alerts or [])


class FilterModule:
    def filters(self):
        return {"collect_alerts": collect_alerts, "alerts_level": alerts_level}
