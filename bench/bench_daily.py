"""The daily checks: playbooks/daily.yml on the whole sandbox against the guide's hand-run command list.

The sandbox (sandbox/stackctl up sandbox: the guide's six containers on the test Docker engine, nginx with a
Pebble certificate, SeaweedFS) is started in a state directory of its own and stopped at the end. In one run,
interleaved, wall-clock of each:

  guide     the guide's daily commands, one after the other, as a person pastes them: curl of /health/ through
            nginx, docker ps, docker stats --no-stream, docker logs --since 24h | grep -c ERROR of the three app
            containers, greps of the Django and nginx logs (ERROR, slow request, 401/403, POST /admin), Flower's
            workers, redis-cli INFO and the queue's LLEN, df -h, and psql's monitoring one-liners (connections,
            queries over 5 minutes, database size, deadlocks and conflicts)
  daily     ansible-playbook playbooks/daily.yml -i inventories/sandbox (-e daily_checks_fail_on_crit=false)
  check     the same under --check

The target (the issue): daily.yml under 30 s on these machines.

    python bench/bench_daily.py [--repeat 3] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BENCH, ROOT, log, machine, median, publish

NAME = "daily"
TARGET_SECONDS = 30
VENV_BIN = Path(sys.executable).parent


def stackctl(*args, state_dir):
    proc = subprocess.run([sys.executable, str(ROOT / "sandbox/stackctl"), *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=1200, check=False)
    if proc.returncode:
        raise SystemExit("stackctl %s failed:\n%s\n%s" % (" ".join(args), proc.stdout[-3000:], proc.stderr[-3000:]))


# The guide's monitoring one-liners: connections by state, queries over 5 minutes, size, deadlocks and conflicts.
GUIDE_QUERIES = (
    "SELECT state, count(*) FROM pg_stat_activity GROUP BY state",
    "SELECT pid, now() - query_start, query FROM pg_stat_activity WHERE state = 'active' "
    "AND now() - query_start > interval '5 minutes'",
    "SELECT pg_size_pretty(pg_database_size(current_database()))",
    "SELECT datname, deadlocks, conflicts FROM pg_stat_database WHERE datname = current_database()",
)


def guide_script(state):
    """The guide's daily commands for this sandbox, as one bash script."""
    site, nginx = state["sandbox"], state["nginx"]
    pg, redis = site["postgres"], site["redis"]
    port, domain = site["ports"]["https"], site["domain"]
    logs = Path(site["settings"]["dirs"]["logs"]) / "django.log"
    psql = "PGPASSWORD=%s psql -h %s -p %d -U %s -d %s -X -q -c" % (
        shlex.quote(pg["password"]), pg["host"], pg["port"], shlex.quote(pg["user"]), shlex.quote(pg["db"]))
    redis_cli = "redis-cli -h %s -p %d -a %s --no-auth-warning" % (redis["host"], redis["port"], shlex.quote(redis["password"]))
    lines = [
        "set -u",
        "export DOCKER_HOST=%s" % shlex.quote(state["dockerd"]["base_url"]),
        "curl -sS --fail --resolve %s:%d:127.0.0.1 --cacert %s https://%s:%d/health/" % (domain, port, site["ca_root"], domain, port),
        "docker ps",
        "docker stats --no-stream",
        *["docker logs --since 24h %s 2>&1 | grep -c ERROR || true" % name for name in ("website", "celery_worker", "celery_beat")],
        "grep -c ERROR %s || true" % logs,
        "grep -c 'slow request' %s || true" % logs,
        "grep -cE '\" (401|403) ' %s || true" % nginx["access_log"],
        "grep -c '\"POST /admin' %s || true" % nginx["access_log"],
        "curl -sS '%sapi/workers?refresh=1'" % site["flower_url"],
        "%s INFO" % redis_cli,
        "%s -n 0 LLEN celery" % redis_cli,
        "df -h",
        *["%s %s" % (psql, shlex.quote(query)) for query in GUIDE_QUERIES],
    ]
    return "\n".join(lines) + "\n"


def timed(argv, env=None):
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    return time.perf_counter() - began, proc


def run_guide(script_path, _state_dir):
    seconds, proc = timed(["bash", str(script_path)])
    if proc.returncode:
        raise SystemExit("the guide's commands failed:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    return {"seconds": seconds}


def run_daily(*extra):
    def run(_script_path, state_dir):
        env = dict(os.environ, WEBSTACK_SANDBOX_STATE=str(state_dir), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                   ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_SHOW_CUSTOM_STATS="1",
                   PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")))
        seconds, proc = timed([str(VENV_BIN / "ansible-playbook"), str(ROOT / "playbooks/daily.yml"),
                               "-e", "daily_checks_fail_on_crit=false", *extra], env)
        if proc.returncode:
            raise SystemExit("daily.yml failed:\n%s\n%s" % (proc.stdout[-4000:], proc.stderr[-2000:]))
        summary = json.loads(proc.stdout)["global_custom_stats"]["daily_checks"]["sandbox"]
        return {"seconds": seconds, "level": summary["level"], "alerts": len(summary["alerts"])}

    return run


VARIANTS = {
    "guide": ("the guide's daily commands, by hand (bash, one after the other)", run_guide),
    "daily": ("`ansible-playbook playbooks/daily.yml`", run_daily()),
    "check": ("`ansible-playbook playbooks/daily.yml --check`", run_daily("--check")),
}


def render(data):
    med = {name: median([r["seconds"] for r in runs]) for name, runs in data["runs"].items()}
    m = data["machine"]
    lines = [
        "<!-- bench:%s:start -->" % NAME,
        "## daily: `playbooks/daily.yml` on the whole sandbox vs the guide's hand-run checks",
        "",
        "- Date: %s" % data["date"],
        "- Machine: %d cores (%s), %s, %s; Python %s, ansible-core %s" % (
            m["cpus"], m["cpu"].split()[0] if m["cpu"] else "?", m["memory"], m["os"], m["python"], m["ansible_core"]),
        "- The sandbox: the guide's six containers on the test Docker engine, nginx with a Pebble certificate, one host in "
        "the groups web, db and cache. Load average when the runs started: %s. %d interleaved runs per variant; medians."
        % (data["loadavg"], data["repeat"]),
        "",
        "| variant | what | median s | runs s |",
        "|---|---|---:|---|",
    ]
    for name, (what, _run) in VARIANTS.items():
        runs = data["runs"][name]
        lines.append("| %s | %s | %.2f | %s |" % (name, what, med[name], ", ".join("%.2f" % r["seconds"] for r in runs)))
    daily = med["daily"]
    lines += [
        "",
        "**daily.yml: %.1f s** (target < %d s: %s); the guide's commands %.1f s (daily.yml / guide = %.2f). daily.yml "
        "checks more than the command list shows a person (thresholds, restarts and OOM kills since the last run, "
        "log counts since the last run, every alert in one summary); its level on the healthy sandbox: %s, %d alert(s)." % (
            daily, TARGET_SECONDS, "met" if daily < TARGET_SECONDS else "**NOT MET**", med["guide"], daily / med["guide"],
            data["runs"]["daily"][-1]["level"], data["runs"]["daily"][-1]["alerts"]),
        "",
        "The guide's command list (secrets shown as `…`):",
        "",
        "```sh",
        *data["script_shown"].splitlines(),
        "```",
        "",
        "Command: `%s`" % data["command"],
        "<!-- bench:%s:end -->" % NAME,
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", "-n", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / ("%s.json" % NAME))
    args = parser.parse_args(argv)

    state_dir = Path(tempfile.mkdtemp(prefix="webstack-bench-daily-", dir="/var/tmp"))
    state_dir.chmod(0o711)  # postgres (in its container) must enter it
    data = {"runs": {name: [] for name in VARIANTS}, "repeat": args.repeat}
    try:
        log("starting the sandbox in %s" % state_dir)
        stackctl("up", "sandbox", state_dir=state_dir)
        state = json.loads((state_dir / "state.json").read_text())
        script = state_dir / "guide.sh"
        script.write_text(guide_script(state))
        shown = guide_script(state)
        for secret in (state["sandbox"]["postgres"]["password"], state["sandbox"]["redis"]["password"]):
            shown = shown.replace(secret, "…")
        data["script_shown"] = shown
        run_daily()(script, state_dir)  # untimed: the checks' first marks, warm caches
        data["loadavg"] = ", ".join("%.2f" % x for x in os.getloadavg())
        names = list(VARIANTS)
        for rep in range(args.repeat):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                result = VARIANTS[name][1](script, state_dir)
                data["runs"][name].append(result)
                log("round %d/%d %-6s %6.2f s" % (rep + 1, args.repeat, name, result["seconds"]))
    finally:
        log("stopping the sandbox")
        stackctl("down", state_dir=state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
    data.update(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(),
                command="python bench/bench_daily.py " + shlex.join(argv if argv is not None else sys.argv[1:]))
    return publish(args, data, render(data), NAME)


if __name__ == "__main__":
    sys.exit(main())
