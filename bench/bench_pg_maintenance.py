"""Weekly VACUUM ANALYZE: the guide's `vacuumdb --analyze -j2` against webstack.ops.pg_maintenance (only_if_needed).

A database of TABLES tables shaped like pages_pagevisit (bench_t000 ...), ROWS
rows each, DIRTY of them with a third of their rows deleted. Each measured run
starts from the same state (the dirty tables are re-dirtied and the whole
state is checked first) and times, as wall-clock of the whole command:

  (a) vacuumdb    the guide's hand-run command:
                  vacuumdb --analyze -j2 -h 127.0.0.1 -p P -U postgres DB
  (b) module      the collection's module run the way Ansible runs it on a host:
                  python -m ansible_collections.webstack.ops.plugins.modules.pg_maintenance ARGS.json
  (c) playbook    the same module through ansible-playbook on localhost (Ansible's own overhead)

After every run the dirty tables must have been vacuumed (last_vacuum newer than
the run's start, no dead tuples left): the benchmark fails loudly otherwise.
Each variant runs --repeat times, interleaved; medians are reported with the
ratio vacuumdb / module (target >= 10). The benchmark starts its own
PostgreSQL 15 (sandbox/harness) on a free loopback port with autovacuum off
and stops it by PID at the end, failure or not.

    python bench/bench_pg_maintenance.py [--repeat 3] [--tables 500] [--rows 20000] [--dirty 10] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "sandbox"))

import datagen  # noqa: E402
from _common import log, machine, median, publish  # noqa: E402
from harness import PostgresServer  # noqa: E402
from harness.postgres import BIN as PG_BIN  # noqa: E402

NAME = "pg_maintenance"
DB = "bench"
SHAPE = "pages_pagevisit"
COLLECTIONS = ROOT / "collections"
MODULE = "ansible_collections.webstack.ops.plugins.modules.pg_maintenance"
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # fixed: the same data at every run
VARIANTS = ("vacuumdb", "module", "playbook")
STATS_TIMEOUT = 30.0


class BenchError(RuntimeError):
    """The benchmark's preconditions or checks failed: its figures would mean nothing."""


def table_name(i):
    return "bench_t%03d" % i


def dirty_tables(tables, dirty):
    """Dirty tables spread evenly over the database (bench_t000, bench_t050, ... for 10 of 500)."""
    return [table_name(i * tables // dirty) for i in range(dirty)]


# ---------------------------------------------------------------- collection link and environment


def ensure_collection_link():
    """collections/ansible_collections/webstack/ops -> the checkout, as the Makefile creates it."""
    link = COLLECTIONS / "ansible_collections" / "webstack" / "ops"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(Path("..", "..", ".."))
    if not (link / "plugins" / "modules" / "pg_maintenance.py").exists():
        raise BenchError("%s does not lead to plugins/modules/pg_maintenance.py" % link)


def module_env(collections=COLLECTIONS):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(collections)
    return env


def ansible_env():
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_RETRY_FILES_ENABLED="0", PATH="%s:%s" % (Path(sys.executable).parent, env.get("PATH", "")))
    env.pop("PYTHONPATH", None)
    return env


def write_private(path, text):
    """Write a file only we can read (it holds the database password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def tool(name):
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    found = shutil.which(name)
    if not found:
        raise BenchError("%s not found next to %s nor on PATH" % (name, sys.executable))
    return found


# ---------------------------------------------------------------- database helpers


class Cluster:
    """The benchmark's PostgreSQL: sandbox/harness's PostgresServer with autovacuum off."""

    def __init__(self, state_dir):
        self.server = PostgresServer(state_dir)

    def start(self):
        self.server.start()
        with self.connect("postgres") as conn, conn.cursor() as cur:
            # postgresql.auto.conf wins over the harness's settings; autovacuum is reloadable.
            cur.execute("ALTER SYSTEM SET autovacuum = off")
            cur.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while self.scalar("postgres", "SHOW autovacuum") != "off":
            if time.monotonic() > deadline:
                raise BenchError("autovacuum is still on after ALTER SYSTEM + reload")
            time.sleep(0.1)
        return self

    def stop(self):
        self.server.stop()

    @staticmethod
    def server_bin(name):
        return PG_BIN / name

    @property
    def port(self):
        return self.server.port

    @property
    def password(self):
        return self.server.password

    @contextlib.contextmanager
    def connect(self, dbname=DB):
        conn = psycopg2.connect(**self.server.conninfo(dbname))
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def scalar(self, dbname, query, params=None):
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchone()[0]

    def client_env(self):
        env = dict(os.environ)
        env["PGPASSWORD"] = self.password
        return env

    def stats(self):
        """{table: row of pg_stat_user_tables} for the bench tables, with a fresh snapshot."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze, last_vacuum, last_analyze, "
                        "n_tup_ins, n_tup_del, last_autovacuum, last_autoanalyze "
                        "FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname LIKE 'bench\\_t%'")
            keys = [d[0] for d in cur.description]
            return {row[0]: dict(zip(keys, row, strict=True)) for row in cur.fetchall()}

    def wait_stats(self, what, check, timeout=STATS_TIMEOUT):
        """Poll the statistics until check(stats) returns no problem; BenchError with the last problem otherwise.

        Backends send their table statistics at most once a second and when they exit, so
        a change made by a session that just ended may take a moment to show.
        """
        deadline = time.monotonic() + timeout
        while True:
            problem = check(self.stats())
            if not problem:
                return
            if time.monotonic() > deadline:
                raise BenchError("%s: still %s after %.0f s" % (what, problem, timeout))
            time.sleep(0.1)


def build(cluster, tables, rows, seed):
    """Create and fill the bench tables, then VACUUM (FREEZE, ANALYZE) them: every table clean."""
    with cluster.connect("postgres") as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE %s" % DB)
    started = time.perf_counter()
    sent = 0
    with cluster.connect() as conn:
        for i in range(tables):
            datagen.create_table(conn, SHAPE, name=table_name(i))
            sent += datagen.fill(conn, SHAPE, rows, seed=seed + i, now=NOW, name=table_name(i))
            if (i + 1) % 50 == 0 or i + 1 == tables:
                elapsed = time.perf_counter() - started
                log("  loaded %d/%d tables, %d rows, %.0f MB, %.0f rows/s" % (
                    i + 1, tables, (i + 1) * rows, sent / 1e6, (i + 1) * rows / elapsed))
        with conn.cursor() as cur:
            cur.execute("SELECT pg_stat_force_next_flush()")
    load_seconds = time.perf_counter() - started
    cluster.wait_stats("statistics of the load", lambda s: None if len(s) == tables and all(
        t["n_tup_ins"] >= rows for t in s.values()) else "%d tables counted" % sum(t["n_tup_ins"] >= rows for t in s.values()))
    started = time.perf_counter()
    subprocess.run([str(cluster.server_bin("vacuumdb")), "--freeze", "--analyze", "-j2", "-q", "-h", "127.0.0.1",
                    "-p", str(cluster.port), "-U", "postgres", DB], env=cluster.client_env(), check=True)
    with cluster.connect() as conn, conn.cursor() as cur:
        cur.execute("CHECKPOINT")
        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cur.fetchone()[0]
    log("  VACUUM (FREEZE, ANALYZE) of the fresh load: %.1f s; database %s" % (time.perf_counter() - started, size))
    return {"load_seconds": round(load_seconds, 2), "load_rows_per_s": round(tables * rows / load_seconds),
            "load_mb": round(sent / 1e6, 1), "database_size": size}


def redirty(cluster, dirty, tables):
    """Give each dirty table a third of its rows as dead tuples again; check the whole state before a run.

    DELETE the rows whose id is a multiple of 3 and put the same rows back (same ids) in one
    statement: the table keeps its 20,000 live rows and content, and holds ~6,667 dead tuples,
    the same at every run whatever the previous run was. Then every other table must be clean.
    """
    deleted = {}
    with cluster.connect() as conn, conn.cursor() as cur:
        for name in dirty:
            cur.execute(sql.SQL("WITH gone AS (DELETE FROM {table} WHERE id % 3 = 0 RETURNING id, {cols}) "
                                "INSERT INTO {table} (id, {cols}) SELECT id, {cols} FROM gone").format(
                table=sql.Identifier(name), cols=sql.SQL(", ").join(map(sql.Identifier, datagen.columns(SHAPE)))))
            deleted[name] = cur.rowcount
        cur.execute("SELECT pg_stat_force_next_flush()")
    dirty_set = set(dirty)

    def check(stats):
        if len(stats) != tables:
            return "%d bench tables instead of %d" % (len(stats), tables)
        for name, row in stats.items():
            if name in dirty_set:
                if row["n_dead_tup"] < deleted[name]:
                    return "%s: %s dead tuples, expected %d" % (name, row["n_dead_tup"], deleted[name])
            elif row["n_dead_tup"] or row["n_mod_since_analyze"] or row["last_analyze"] is None:
                return "%s should be clean: %s" % (name, row)
            if row["last_autovacuum"] or row["last_autoanalyze"]:
                return "%s: autovacuum ran on it (%s)" % (name, row)
        return None

    cluster.wait_stats("state before the run", check)
    with cluster.connect() as conn, conn.cursor() as cur:
        cur.execute("CHECKPOINT")  # the re-dirtying's writes are not paid by the timed run
        cur.execute("SELECT clock_timestamp()")
        return cur.fetchone()[0], deleted


def verify_vacuumed(cluster, dirty, since, variant):
    """Every dirty table vacuumed by this run: last_vacuum after `since`, no dead tuple left."""

    def check(stats):
        bad = ["%s (last_vacuum %s, %s dead)" % (name, stats[name]["last_vacuum"], stats[name]["n_dead_tup"])
               for name in dirty
               if not stats[name]["last_vacuum"] or stats[name]["last_vacuum"] <= since or stats[name]["n_dead_tup"]]
        return ("not vacuumed: " + ", ".join(bad)) if bad else None

    try:
        cluster.wait_stats("after %s" % variant, check, timeout=10)
    except BenchError as exc:
        raise BenchError("%s did NOT vacuum every dirty table: %s" % (variant, exc)) from None


# ---------------------------------------------------------------- the three variants


def run_vacuumdb(cluster, workdir):
    argv = [str(cluster.server_bin("vacuumdb")), "--analyze", "-j2", "-h", "127.0.0.1", "-p", str(cluster.port),
            "-U", "postgres", DB]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=cluster.client_env(), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise BenchError("vacuumdb failed (%d): %s" % (proc.returncode, proc.stderr))
    return seconds, {}


def module_args(cluster):
    return {"login_host": "127.0.0.1", "login_port": cluster.port, "login_user": "postgres",
            "login_password": cluster.password, "login_db": DB, "action": "vacuum_analyze", "only_if_needed": True}


def summarize_module_result(result, dirty):
    """Check and digest the module's JSON result."""
    if result.get("failed"):
        raise BenchError("the module failed: %s" % result.get("msg"))
    done = [t["name"].split(".")[-1] for t in result.get("tables", [])]
    if sorted(done) != sorted(dirty):
        raise BenchError("the module worked on %s, expected exactly the dirty tables %s" % (done, dirty))
    if not result.get("changed"):
        raise BenchError("the module reported changed=false after vacuuming %d tables" % len(done))
    for entry in result["tables"]:
        if entry.get("dead_tuples_after") not in (0, None) or entry.get("action") != "vacuum_analyze":
            raise BenchError("unexpected table entry: %s" % entry)
    skipped = result.get("skipped_tables", result.get("skipped", []))
    return {"tables": len(done), "skipped": len(skipped), "queries": len(result.get("queries", [])),
            "statement_seconds": round(sum(t.get("seconds", 0) for t in result["tables"]), 4)}


def run_module(cluster, workdir, dirty, collections=COLLECTIONS):
    args_file = workdir / "args.json"
    write_private(args_file, json.dumps({"ANSIBLE_MODULE_ARGS": module_args(cluster)}))
    argv = [sys.executable, "-m", MODULE, str(args_file)]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=module_env(collections), cwd=workdir, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise BenchError("the module printed no JSON (exit %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)) from None
    if proc.returncode:
        raise BenchError("the module exited %d: %s" % (proc.returncode, result.get("msg")))
    return seconds, summarize_module_result(result, dirty)


def run_playbook(cluster, workdir, dirty):
    playbook = workdir / "vacuum.yml"
    write_private(playbook, json.dumps([{
        "name": "Weekly VACUUM ANALYZE (benchmark)",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [{"name": "VACUUM ANALYZE where needed", "webstack.ops.pg_maintenance": module_args(cluster)}],
    }], indent=2))
    argv = [tool("ansible-playbook"), "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable,
            str(playbook)]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=ansible_env(), cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise BenchError("ansible-playbook exited %d:\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    try:
        report = json.loads(proc.stdout)
        result = report["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise BenchError("unexpected ansible-playbook output:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:])) from None
    return seconds, summarize_module_result(result, dirty)


# ---------------------------------------------------------------- report


def digest(infos):
    """The module's own figures over the runs: counts of the last run, median of its statement time."""
    summary = dict(infos[-1])
    summary["statement_seconds"] = round(median([i["statement_seconds"] for i in infos]), 3)
    return summary


def render_section(data):
    m = data["machine"]
    med = data["medians"]
    p = data["params"]
    lines = [
        "<!-- bench:%s:start -->" % NAME,
        "## pg_maintenance: weekly VACUUM ANALYZE, guide's vacuumdb vs the module",
        "",
        "- Date: %s" % data["date"],
        "- Machine: %d cores (%s), %s, %s; Python %s, ansible-core %s; %s" % (
            m["cpus"], m["cpu"], m["memory"], m["os"], m["python"], m["ansible_core"], data["server_version"]),
        "- Data: %d tables shaped like `pages_pagevisit` x %s rows (%s on disk, loaded at %s rows/s by bench/datagen.py); "
        "%d of them dirty (a third of their rows deleted and put back: ~%s dead tuples each); autovacuum off"
        % (p["tables"], format(p["rows"], ","), data["build"].get("database_size", "?"),
           format(data["build"].get("load_rows_per_s", 0), ","), p["dirty"], format(data["dead_tuples_per_dirty_table"], ",")),
        "- Load average when the runs started: %s (the machine is shared: figures are noisy, ratios of "
        "interleaved runs less so)." % data["loadavg_at_start"],
        "- Each run from the same state (dirty tables re-dirtied, state checked, CHECKPOINT), wall-clock of the whole "
        "command; %d runs per variant, interleaved; medians. After every run all %d dirty tables were checked "
        "vacuumed (last_vacuum newer than the run, 0 dead tuples)." % (p["repeat"], p["dirty"]),
        "",
        "| variant | command | median s | runs s |",
        "|---|---|---:|---|",
        "| (a) vacuumdb | `vacuumdb --analyze -j2 -h 127.0.0.1 -p P -U postgres bench` | %.2f | %s |" % (
            med["vacuumdb"], ", ".join("%.2f" % s for s in data["runs"]["vacuumdb"])),
        "| (b) module | `python -m ansible_collections.webstack.ops.plugins.modules.pg_maintenance args.json` "
        "(`only_if_needed: true`) | %.2f | %s |" % (med["module"], ", ".join("%.2f" % s for s in data["runs"]["module"])),
    ]
    if data["runs"].get("playbook"):
        lines.append("| (c) playbook | `ansible-playbook` on localhost, one task: the same module | %.2f | %s |" % (
            med["playbook"], ", ".join("%.2f" % s for s in data["runs"]["playbook"])))
    lines += [
        "",
        "**vacuumdb / module = %.1fx** (target >= %g: %s); per round: %s." % (
            data["ratio_module"], data["target"], "met" if data["target_met"] else "NOT MET",
            ", ".join("%.1fx" % r for r in data["ratio_module_per_round"])),
    ]
    if data.get("ratio_playbook"):
        lines.append("Through ansible-playbook: vacuumdb / playbook = %.1fx; Ansible's own overhead (c - b) = %.2f s."
                     % (data["ratio_playbook"], med["playbook"] - med["module"]))
    module = data["module_result"]
    lines += [
        "The module vacuumed %d tables and skipped %d (its VACUUM statements took %.2f s of the %.2f s, medians); "
        "vacuumdb processed every table of the database, catalogs included." % (
            module["tables"], module["skipped"], module["statement_seconds"], med["module"]),
        "",
        "Command: `%s`" % data["command"],
        "<!-- bench:%s:end -->" % NAME,
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", "-n", type=int, default=3, help="runs per variant (median reported)")
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per table")
    parser.add_argument("--dirty", type=int, default=10, help="tables with a third of their rows deleted")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-playbook", action="store_true", help="skip (c), the ansible-playbook run")
    parser.add_argument("--min-ratio", type=float, default=10.0, help="target for vacuumdb / module")
    parser.add_argument("--enforce", action="store_true", help="exit 3 when the ratio misses --min-ratio")
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / ("%s.json" % NAME), help="raw figures")
    parser.add_argument("--base-dir", type=Path, help="parent of the private temporary directory (default: $TMPDIR)")
    parser.add_argument("--collections", type=Path, default=COLLECTIONS,
                        help="PYTHONPATH for (b), holding ansible_collections/webstack/ops (default: the checkout's link)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.tables < 1 or args.rows < 3 or not 0 < args.dirty <= args.tables:
        parser.error("need --repeat >= 1, --rows >= 3 and 0 < --dirty <= --tables")
    return args


_SIGNALLED = []


def _terminate(signum, _frame):
    _SIGNALLED.append(signum)
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the server


def handle_signals():
    """SIGTERM and SIGINT stop the benchmark through its finally blocks (servers stopped, temp dir removed)."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)


def run_main(main_function):
    """sys.exit(main()), with a one-line message instead of a traceback for a failed check or a signal.

    A signal that lands inside COPY's read() reaches us as a psycopg2 error, not SystemExit.
    """
    try:
        code = main_function()
    except BenchError as exc:
        print("BENCHMARK FAILED: %s" % exc, file=sys.stderr)
        sys.exit(1)
    except BaseException:
        if _SIGNALLED:
            print("benchmark interrupted by signal %d; servers stopped" % _SIGNALLED[0], file=sys.stderr)
            sys.exit(128 + _SIGNALLED[0])
        raise
    sys.exit(code)


def main(argv=None):  # noqa: PLR0915 - one linear story: build, runs, checks, report
    args = parse_args(argv)
    handle_signals()
    if args.collections == COLLECTIONS:
        ensure_collection_link()
    variants = [v for v in VARIANTS if not (v == "playbook" and args.no_playbook)]
    dirty = dirty_tables(args.tables, args.dirty)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pgm-", dir=args.base_dir))
    workdir.chmod(0o711)  # the postgres user must be able to enter its state dir
    cluster = Cluster(workdir / "postgres")
    runs = {v: [] for v in variants}
    results = {}
    try:
        log("starting PostgreSQL 15 in %s" % workdir)
        cluster.start()
        server_version = cluster.scalar("postgres", "SHOW server_version")
        log("PostgreSQL %s on 127.0.0.1:%d (pid %d), autovacuum off" % (server_version, cluster.port, cluster.server.pid))
        log("building %d tables x %d rows (%d dirty: %s ...)" % (args.tables, args.rows, args.dirty, ", ".join(dirty[:3])))
        build_info = build(cluster, args.tables, args.rows, args.seed)
        runners = {
            "vacuumdb": lambda: run_vacuumdb(cluster, workdir),
            "module": lambda: run_module(cluster, workdir, dirty, args.collections),
            "playbook": lambda: run_playbook(cluster, workdir, dirty),
        }
        # One untimed round first: the re-dirtied tables reach their steady layout (free space map), caches warm.
        log("warm-up round (untimed)")
        for variant in variants:
            since, _deleted = redirty(cluster, dirty, args.tables)
            runners[variant]()
            verify_vacuumed(cluster, dirty, since, variant)
        dead = 0
        loadavg = ", ".join("%.2f" % x for x in os.getloadavg())
        for rep in range(args.repeat):
            for variant in variants:
                since, deleted = redirty(cluster, dirty, args.tables)
                dead = max(deleted.values())
                seconds, info = runners[variant]()
                verify_vacuumed(cluster, dirty, since, variant)
                runs[variant].append(round(seconds, 3))
                if info:
                    results.setdefault(variant, []).append(info)
                log("run %d/%d %-8s %7.2f s %s" % (rep + 1, args.repeat, variant, seconds, info or ""))
    finally:
        cluster.stop()
        log("PostgreSQL stopped")
        shutil.rmtree(workdir, ignore_errors=True)

    medians = {v: median(runs[v]) for v in variants}
    ratio = medians["vacuumdb"] / medians["module"]
    data = {
        "benchmark": NAME,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "server_version": "PostgreSQL %s" % server_version,
        "params": {"tables": args.tables, "rows": args.rows, "dirty": args.dirty, "repeat": args.repeat, "seed": args.seed},
        "build": build_info,
        "dead_tuples_per_dirty_table": dead,
        "loadavg_at_start": loadavg,
        "runs": runs,
        "medians": {v: round(s, 3) for v, s in medians.items()},
        "ratio_module": round(ratio, 2),
        "ratio_module_per_round": [round(a / b, 2) for a, b in zip(runs["vacuumdb"], runs["module"], strict=True)],
        "ratio_playbook": round(medians["vacuumdb"] / medians["playbook"], 2) if "playbook" in medians else None,
        "target": args.min_ratio,
        "target_met": ratio >= args.min_ratio,
        "module_result": digest(results["module"]),
        "playbook_result": digest(results["playbook"]) if "playbook" in results else None,
        "command": "python bench/bench_pg_maintenance.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    return publish(args, data, render_section(data), NAME, met=data["target_met"])


if __name__ == "__main__":
    run_main(main)
