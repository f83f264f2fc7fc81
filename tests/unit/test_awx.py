"""AWX as code, read as AWX reads it (no AWX server runs here; awx/setup.yml is the only part that talks to one):
every playbook has a job template and every template a playbook, the schedules parse as AWX parses them and run at
the guide's hours, the survey questions set variables the roles read, the execution environment installs every
collection the content names, and no playbook waits for a person."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import yaml
from dateutil.rrule import rrulestr

ROOT = Path(__file__).resolve().parents[2]
TABLE = yaml.safe_load((ROOT / "awx/job_templates.yml").read_text())
TEMPLATES = TABLE["webstack_awx_job_templates"]
UTC = datetime.timezone.utc


def _yaml_files(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.yml"))


def test_every_playbook_has_a_job_template_and_every_template_a_playbook():
    playbooks = {p.relative_to(ROOT).as_posix() for p in (ROOT / "playbooks").glob("*.yml")}
    templated = [t["playbook"] for t in TEMPLATES]
    assert sorted(playbooks - set(templated)) == []
    assert sorted(set(templated) - playbooks) == []
    assert len({t["name"] for t in TEMPLATES}) == len(TEMPLATES)


def _awx_rrule(rule: str):
    """The schedule as AWX reads it: one DTSTART with a time zone, one RRULE with an INTERVAL, no numbered BYDAY
    (AWX refuses those), parsed by dateutil as AWX's Schedule.rrulestr does."""
    assert len(re.findall(r"DTSTART(;TZID=[^:]+)?:\d{8}T\d{6}Z?", rule)) == 1, rule
    assert re.search(r"DTSTART(;TZID=[^:]+:|:\d{8}T\d{6}Z)", rule), rule + ": a naive DTSTART is refused"
    assert len(re.findall(r"RRULE:", rule)) == 1 and "INTERVAL=" in rule, rule
    assert not re.search(r"BYDAY=[-+]?\d", rule), rule
    return rrulestr(rule, forceset=True)


def test_schedules_parse_as_awx_reads_them_and_run_at_the_guides_hours():
    schedules = {t["playbook"]: _awx_rrule(t["schedule"]) for t in TEMPLATES if "schedule" in t}
    after = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # a Sunday, midday

    def next_runs(playbook):
        """The next three runs after `after`, in UTC."""
        runs = [schedules[playbook].after(after)]
        while len(runs) < 3:
            runs.append(schedules[playbook].after(runs[-1]))
        return [run.astimezone(UTC).replace(tzinfo=None) for run in runs]

    day = datetime.datetime
    assert next_runs("playbooks/daily.yml") == [day(2026, 3, 16, 6), day(2026, 3, 17, 6), day(2026, 3, 18, 6)]
    assert next_runs("playbooks/backup.yml") == [day(2026, 3, 16, 2), day(2026, 3, 17, 2), day(2026, 3, 18, 2)]
    assert next_runs("playbooks/weekly.yml") == [day(2026, 3, 22, 3), day(2026, 3, 29, 3), day(2026, 4, 5, 3)]
    assert next_runs("playbooks/monthly.yml") == [day(2026, 4, 1, 4), day(2026, 5, 1, 4), day(2026, 6, 1, 4)]
    assert next_runs("playbooks/quarterly.yml") == [day(2026, 4, 1, 5), day(2026, 7, 1, 5), day(2026, 10, 1, 5)]
    # The runbooks only run when someone launches them.
    assert sorted(schedules) == ["playbooks/backup.yml", "playbooks/daily.yml", "playbooks/monthly.yml",
                                 "playbooks/quarterly.yml", "playbooks/weekly.yml"]


def _roles_of(playbook: Path) -> list[Path]:
    roles = []
    for play in yaml.safe_load(playbook.read_text()):
        for entry in play.get("roles", []):
            name = entry["role"] if isinstance(entry, dict) else entry
            roles.append(ROOT / "roles" / name.removeprefix("webstack.ops."))
    return roles


def test_survey_questions_set_variables_the_roles_read():
    """A renamed variable or a new choice in a role must show in the survey too."""
    surveys = TABLE["webstack_awx_surveys"]
    with_survey = [t for t in TEMPLATES if "survey" in t]
    assert {t["playbook"] for t in with_survey} >= {"playbooks/restore.yml", "playbooks/troubleshoot.yml",
                                                    "playbooks/security_breach.yml"}
    for template in with_survey:
        roles = _roles_of(ROOT / template["playbook"])
        specs = {}
        for role in roles:
            spec = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]
            specs.update(spec.get("options", {}))
        defaults = "".join((role / "defaults/main.yml").read_text() for role in roles if (role / "defaults/main.yml").is_file())
        for question in surveys[template["survey"]]:
            variable = question["variable"]
            assert variable in specs or re.search(r"\b%s\b" % variable, defaults), (template["name"], variable)
            assert question["type"] in {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
            if question["type"] == "multiplechoice":
                assert not question["default"] or question["default"] in question["choices"], question
                choices = specs.get(variable, {}).get("choices")
                if choices:
                    assert sorted(question["choices"]) == sorted(choices), (variable, choices)
                elif specs.get(variable, {}).get("type") == "bool" or question["choices"] == ["false", "true"]:
                    assert question["choices"] == ["false", "true"] and question["default"] == "false", question


def test_the_execution_environment_installs_every_collection_the_content_names():
    installed = {"%s.%s" % (p.parent.name, p.name)
                 for p in Path(yaml.__file__).parents[1].glob("ansible_collections/*/*") if p.is_dir()}
    named = set()
    for path in _yaml_files("roles", "playbooks", "awx"):
        named |= set(re.findall(r"\b([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+\b", path.read_text())) & installed
    requirements = yaml.safe_load((ROOT / "meta/ee-requirements.yml").read_text())["collections"]
    listed = {c["name"] for c in requirements}
    assert named and sorted(named - listed) == []


def _waits_for_a_person(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        if "vars_prompt" in node:
            found.append("vars_prompt in %s" % node.get("name"))
        for key in ("pause", "ansible.builtin.pause", "ansible.legacy.pause"):
            args = node.get(key)
            if key in node and not (isinstance(args, dict) and ("seconds" in args or "minutes" in args)):
                found.append("pause without a timeout in %s" % node.get("name"))
        for value in node.values():
            found += _waits_for_a_person(value)
    elif isinstance(node, list):
        for item in node:
            found += _waits_for_a_person(item)
    return found


def test_no_playbook_waits_for_a_person():
    """AWX runs jobs without a terminal: no vars_prompt, no pause without a timeout, anywhere a playbook reaches."""
    assert _waits_for_a_person([{"name": "probe", "pause": {"prompt": "go?"}}]) == ["pause without a timeout in probe"]
    found = []
    for path in _yaml_files("playbooks", "roles", "awx"):
        found += ["%s: %s" % (path.relative_to(ROOT), what) for what in _waits_for_a_person(yaml.load(path.read_text(), Loader=yaml.CSafeLoader))]
    assert found == []
