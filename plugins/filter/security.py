# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monthly_security role's reading of apt, pip-audit, pip and container_update results, as reports and alerts.

Pure functions over registered results, so the unit tests can feed them every case:

- `apt_upgrades(stdout)`: the packages an `apt-get upgrade` would upgrade (`Inst` lines of a simulation) or did
  upgrade (`Unpacking ... over ...` lines of a real run).
- `pip_audit_report(result, fixable_level)`: pip-audit's JSON (`--format json`) as vulnerable packages and one alert
  per vulnerable package; a scan that did not produce its JSON is a `dependency_scan_unavailable` warning, never a pass.
- `image_update_report(prepared, updated)`: the images prepared (pulled, built) and the container_update results of a
  loop over the role's images, as a list per image and its alerts.
"""

from __future__ import annotations

import json
import re

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert

INST = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) (.*?)(?: \[(\S+)\])?\)")
UNPACKING = re.compile(r"^Unpacking (\S+) \((\S+)\) over \((\S+)\)")


def apt_upgrades(stdout):
    """[{name, from, to, origin, security}] of apt-get's output, in its order."""
    found = []
    for line in (stdout or "").splitlines():
        match = INST.match(line)
        if match:
            name, old, new, origin, _arch = match.groups()
            found.append(dict(name=name, **{"from": old}, to=new, origin=origin.strip(), security="security" in origin.lower()))
            continue
        match = UNPACKING.match(line)
        if match:
            name, new, old = match.groups()
            found.append(dict(name=name.split(":")[0], **{"from": old}, to=new, origin=None, security=None))
    return found


def _tail(text, limit=400):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(lines[-3:])[-limit:] if lines else ""


def pip_audit_report(result, fixable_level=WARN, source="the requirements"):
    """{available, scanned, vulnerable: [{name, version, vulns: [{id, aliases, fix_versions, description}]}],
    skipped: [{name, reason}], error, alerts} of a registered pip-audit command (`--format json`).

    pip-audit exits 1 when it found vulnerabilities (its JSON is then on stdout) and also when it could not run (no
    JSON): the JSON decides. One alert per vulnerable package: `fixable_level` when a fixed release exists for every
    one of its vulnerabilities (upgrading closes them), `warn` otherwise (no fix released yet: nothing to upgrade to).
    """
    if fixable_level not in (WARN, CRIT):
        raise ValueError("fixable_level must be warn or crit, got %r" % (fixable_level,))
    result = result or {}
    stdout = (result.get("stdout") or "").strip()
    report = None
    if stdout.startswith("{"):
        try:
            report = json.loads(stdout)
        except ValueError:
            report = None
    if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
        reason = _tail(result.get("stderr")) or _tail(stdout) or result.get("msg") or "no output"
        message = "the dependency vulnerability scan of %s could not run (pip-audit exit code %s): %s" % (
            source, result.get("rc"), reason)
        return dict(available=False, scanned=0, vulnerable=[], skipped=[], error=reason,
                    alerts=[alert("dependency_scan_unavailable", WARN, None, None, message)])
    vulnerable, skipped, alerts = [], [], []
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            skipped.append(dict(name=dep.get("name"), reason=dep["skip_reason"]))
            continue
        vulns = [dict(id=v.get("id"), aliases=v.get("aliases") or [], fix_versions=v.get("fix_versions") or [],
                      description=(v.get("description") or "")[:300]) for v in dep.get("vulns") or []]
        if not vulns:
            continue
        vulnerable.append(dict(name=dep["name"], version=dep.get("version"), vulns=vulns))
        fixable = all(v["fix_versions"] for v in vulns)
        fixes = sorted({v["fix_versions"][0] for v in vulns if v["fix_versions"]})
        message = "%s %s has %d known vulnerabilit%s (%s); %s" % (
            dep["name"], dep.get("version"), len(vulns), "y" if len(vulns) == 1 else "ies",
            ", ".join(_names(v) for v in vulns),
            ("fixed in %s" % ", ".join(fixes)) if fixable else
            ("no fixed release yet for some" if fixes else "no fixed release yet"))
        alerts.append(alert("dependency_vulnerable", fixable_level if fixable else WARN, len(vulns), 0, message))
    scanned = len(report["dependencies"]) - len(skipped)
    return dict(available=True, scanned=scanned, vulnerable=vulnerable, skipped=skipped, error=None, alerts=alerts)


def _names(vuln):
    cves = [a for a in vuln["aliases"] if a.startswith("CVE-")]
    return "%s%s" % (vuln["id"], " / " + ", ".join(cves) if cves else "")


def image_update_report(prepared, updated):
    """{images: [{image, source, prepared, changed, containers, error}], alerts} of the role's image loop results.

    `prepared` are the loop results of pulling or building each image (skipped for source local), `updated` those of
    webstack.ops.container_update on each image's containers (skipped when the image could not be prepared).
    """
    images, alerts = [], []
    updates = {_key(r.get("item")): r for r in (updated or {}).get("results", [])}
    for prep in (prepared or {}).get("results", []):
        item = prep.get("item") or {}
        ref = item.get("image")
        entry = dict(image=ref, source=item.get("source", "local"), prepared=None, changed=False, containers=[], error=None)
        if not prep.get("skipped"):
            if prep.get("failed"):
                entry["error"] = prep.get("msg") or "failed"
                alerts.append(alert("image_prepare_failed", WARN, ref, None, "could not %s image %s: %s; its containers "
                                    "were not updated" % ("pull" if entry["source"] == "pull" else "build", ref,
                                                          _tail(entry["error"]))))
                images.append(entry)
                continue
            entry["prepared"] = bool(prep.get("changed"))
        update = updates.get(_key(item)) or {}
        if update and not update.get("skipped"):
            entry["containers"] = update.get("containers") or []
            entry["changed"] = bool(update.get("changed"))
            if update.get("failed"):
                entry["error"] = update.get("msg") or "failed"
                alerts.append(alert("image_update_failed", CRIT, ref, None, entry["error"]))
        images.append(entry)
    return dict(images=images, alerts=alerts)


def _key(item):
    return json.dumps(item or {}, sort_keys=True, default=str)


class FilterModule:
    def filters(self):
        return {"apt_upgrades": apt_upgrades, "pip_audit_report": pip_audit_report,
                "image_update_report": image_update_report}
