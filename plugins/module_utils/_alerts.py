# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one shape of an alert, shared by every check module and the report plugin (private to the collection).

An alert is a plain dict::

    {"check": "backup_age", "level": "crit", "value": 30.5, "threshold": 26,
     "message": "newest backup of webstack is 30.5 h old (limit 26 h)"}

``check`` names what was checked (stable, snake_case, for filters and trend charts), ``level`` is ``warn``
or ``crit``, ``value`` is what was measured and ``threshold`` the limit it crossed (same unit), ``message``
says it in one sentence for people. A check module returns a list of them as ``alerts``; an empty list is
all clear.
"""

from __future__ import annotations

WARN = "warn"
CRIT = "crit"
LEVELS = (WARN, CRIT)


def alert(check, level, value, threshold, message):
    """One alert dict; refuses an unknown level or an empty check name (a bug in the caller)."""
    if level not in LEVELS:
        raise ValueError("alert level must be one of %s, got %r" % (", ".join(LEVELS), level))
    if not check:
        raise ValueError("an alert needs a check name")
    return dict(check=check, level=level, value=value, threshold=threshold, message=message)


def worst_level(alerts):
    """'crit' if any alert is critical, else 'warn' if there is any alert, else 'ok'."""
    levels = {a["level"] for a in alerts}
    if CRIT in levels:
        return CRIT
    return WARN if levels else "ok"
