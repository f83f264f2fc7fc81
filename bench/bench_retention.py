"""Quarterly retention: one big DELETE and the guide's Django ORM delete against webstack.ops.pg_retention.

A `pages_pagevisit` table of --rows rows (default 4 million) is created by the sandbox app's own Django
migration and filled by bench/datagen.py with timestamps uniform over the three years before now, so
83.6% of them (3.34 M of 4 M) are past the guide's 180-day cutoff; `created_at` is indexed. Before every
run the same data is restored (a fresh database from that template, file copy, then a CHECKPOINT), and
each variant deletes the rows older than 180 days, timed as wall-clock of the whole command:

  delete        psql -c "DELETE FROM pages_pagevisit WHERE created_at < CUTOFF": one statement, one transaction
  pg_retention  python -m ansible_collections.webstack.ops.plugins.modules.pg_retention ARGS.json, its defaults
                (batches of primary-key ranges, each committed; width adapted to batch_seconds)
  ctid          the same with method: ctid (batches of heap page ranges, TID range scans)
  fixed_20k     the same with batch_size 20000 and batch_seconds 0: the issue's measured setup
  orm           the guide's way, on the sandbox app: python manage.py shell -c
                "PageVisit.objects.filter(created_at__lt=timezone.now() - timedelta(days=180)).delete()"

While each variant runs, a writer thread inserts a row into pages_pagevisit every 10 ms on its own
connection (the site recording visits) and times every INSERT (commit included). After each run the
table must hold exactly the template's rows at or after that run's cutoff plus the writer's rows, or
the benchmark fails. The benchmark starts its own PostgreSQL 15 (sandbox/harness, fsync on, default
settings but autovacuum off: it would start on a batched walk's committed batches during the timed run,
and after the single DELETE's; the same VACUUM is due either way) on a free loopback port and stops it
by PID at the end, failure or not.

    python bench/bench_retention.py [--rows 4000000] [--repeat 5] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "sandbox"))

import datagen  # noqa: E402
from _common import median, publish  # noqa: E402
from bench_pg_maintenance import (  # noqa: E402
    COLLECTIONS,
    BenchError,
    ensure_collection_link,
    handle_signals,
    log,
    machine,
    run_main,
    write_private,
)
from harness import PostgresServer  # noqa: E402
from harness.postgres import BIN as PG_BIN  # noqa: E402

NAME = "retention"
TEMPLATE = "bench_src"
DB = "bench_run"
TABLE = "pages_pagevisit"
DAYS = 180
APP = ROOT / "sandbox" / "app"
MODULE = "ansible_collections.webstack.ops.plugins.modules.pg_retention"
VARIANTS = ("delete", "pg_retention", "ctid", "fixed_20k", "orm")
WRITER_INTERVAL = 0.01
# Targets of the issue.
MIN_THROUGHPUT = 0.9  # pg_retention's rows/s over the single DELETE's
MAX_BATCH_SECONDS = 0.2  # longest batch with the defaults
MAX_WRITER_SECONDS = 0.2  # worst INSERT of the concurrent writer while pg_retention runs

# The guide's quarterly cleanup as Django code, timed inside the process too; prints one JSON line.
ORM_CODE = """\
import datetime, json, time
from django.db import connection
from django.utils import timezone
from pages.models import PageVisit
statements = []
def capture(execute, sql, params, many, context):
    statements.append(sql)
    return execute(sql, params, many, context)
with connection.execute_wrapper(capture):
    started = time.perf_counter()
    cutoff = timezone.now() - datetime.timedelta(days=%d)
    deleted, _per_model = PageVisit.objects.filter(created_at__lt=cutoff).delete()
    seconds = time.perf_counter() - started
print(json.dumps({"rows": deleted, "cutoff": cutoff.isoformat(), "in_process_s": seconds, "statements": statements}))
""" % DAYS


# ---------------------------------------------------------------- server and data


class Bench:
    def __init__(self, workdir):
        self.workdir = workdir
        self.pg = PostgresServer(workdir / "postgres")

    def start(self):
        """The server, with autovacuum off: the single DELETE leaves its dead rows to a VACUUM after it ends, while
        autovacuum would start on a batched walk's committed batches during the timed run. The same VACUUM work is
        due either way; with it off every variant is timed on its deletes alone."""
        self.pg.start()
        with self.connect("postgres") as conn, conn.cursor() as cur:
            cur.execute("ALTER SYSTEM SET autovacuum = off")
            cur.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while self.query("SHOW autovacuum", dbname="postgres")[0][0] != "off":
            if time.monotonic() > deadline:
                raise BenchError("autovacuum is still on after ALTER SYSTEM + reload")
            time.sleep(0.1)

    @contextlib.contextmanager
    def connect(self, dbname=DB):
        conn = psycopg2.connect(**self.pg.conninfo(dbname))
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def query(self, statement, params=None, dbname=DB):
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def env(self, dbname=DB):
        """Environment of the commands: PostgreSQL 15's tools first, the password and the sandbox app's settings."""
        env = dict(os.environ)
        env.update(PGPASSWORD=self.pg.password, PYTHONPATH=str(COLLECTIONS), DJANGO_SECRET_KEY="bench-retention-not-secret",
                   POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(self.pg.port), POSTGRES_DB=dbname,
                   POSTGRES_USER="postgres", POSTGRES_PASSWORD=self.pg.password,
                   PATH="%s:%s:%s" % (PG_BIN, Path(sys.executable).parent, env.get("PATH", "")))
        return env

    def login_options(self):
        return {"login_host": "127.0.0.1", "login_port": self.pg.port, "login_user": "postgres",
                "login_password": self.pg.password, "login_db": DB}


def build(bench, rows, seed):
    """The template database: the sandbox app's migrations, then `rows` generated page visits, frozen and analyzed."""
    bench.query("CREATE DATABASE %s" % TEMPLATE, dbname="postgres")
    run_command([sys.executable, "manage.py", "migrate", "--noinput"], bench.env(TEMPLATE), "Django migrate", cwd=APP)
    started = time.perf_counter()
    with bench.connect(TEMPLATE) as conn:
        datagen.fill(conn, TABLE, rows, seed=seed)
        load_seconds = time.perf_counter() - started
        with conn.cursor() as cur:
            cur.execute("VACUUM (FREEZE, ANALYZE) pages_pagevisit")
            cur.execute("SELECT pg_size_pretty(pg_total_relation_size('pages_pagevisit')), count(*) FILTER (WHERE "
                        "created_at < now() - make_interval(days => %s)) FROM pages_pagevisit", (DAYS,))
            size, old = cur.fetchone()
            cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (TABLE,))
            indexes = [row[0] for row in cur.fetchall()]
    log("  %d rows loaded in %.0f s (%.0f rows/s), %s with indexes; %d past %d days" % (
        rows, load_seconds, rows / load_seconds, size, old, DAYS))
    if not any("(created_at)" in index for index in indexes):
        raise BenchError("the table has no index on created_at: %s" % indexes)
    return {"load_seconds": round(load_seconds, 1), "size": size, "old_rows_at_build": old, "indexes": indexes}


def fresh_copy(bench):
    """The run's database, a file copy of the template: the same data, layout and statistics every time."""
    with bench.connect("postgres") as conn, conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cur.execute("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY" % (DB, TEMPLATE))
    os.sync()  # the copy's dirty pages are not flushed during the timed run
    with bench.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pages_pagevisit")  # warm the cache alike for every variant
        cur.execute("CHECKPOINT")


def run_command(argv, env, what, cwd=None):
    """Run a command; (wall seconds, stdout)."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd or ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise BenchError("%s failed (exit %d):\n%s\n%s" % (what, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return seconds, proc.stdout


# ---------------------------------------------------------------- the concurrent writer


class Writer(threading.Thread):
    """Inserts a page visit every WRITER_INTERVAL seconds on its own connection and times each INSERT."""

    def __init__(self, bench):
        super().__init__(daemon=True)
        self.conninfo = bench.pg.conninfo(DB)
        self.stop_event = threading.Event()
        self.latencies = []
        self.error = None

    def run(self):
        try:
            conn = psycopg2.connect(**self.conninfo)
            conn.autocommit = True
            with conn, conn.cursor() as cur:
                while not self.stop_event.is_set():
                    started = time.perf_counter()
                    cur.execute("INSERT INTO pages_pagevisit (path, user_agent, response_ms, created_at) "
                                "VALUES ('/bench/writer', 'bench-writer', 1, now())")
                    took = time.perf_counter() - started
                    self.latencies.append(took)
                    self.stop_event.wait(max(0.0, WRITER_INTERVAL - took))
            conn.close()
        except psycopg2.Error as exc:
            self.error = str(exc).strip()

    def finish(self):
        self.stop_event.set()
        self.join(timeout=30)
        if self.error:
            raise BenchError("the concurrent writer failed: %s" % self.error)
        lat = sorted(self.latencies)
        return {"inserts": len(lat), "writer_max_ms": round(lat[-1] * 1000, 1) if lat else None,
                "writer_p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1) if lat else None}


# ---------------------------------------------------------------- variants


def run_delete(bench):
    with bench.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT now() - make_interval(days => %s)", (DAYS,))
        cutoff = cur.fetchone()[0]
        statement = cur.mogrify("DELETE FROM pages_pagevisit WHERE created_at < %s", (cutoff,)).decode()
    seconds, out = run_command(["psql", "-X", "-h", "127.0.0.1", "-p", str(bench.pg.port), "-U", "postgres", "-d", DB,
                                "-v", "ON_ERROR_STOP=1", "-c", "\\timing on", "-c", statement], bench.env(), "psql DELETE")
    found = re.search(r"^DELETE (\d+)\s+Time: ([\d.]+) ms", out, re.MULTILINE)
    if not found:
        raise BenchError("unexpected psql output: %r" % out)
    return {"seconds": seconds, "rows": int(found.group(1)), "cutoff": cutoff,
            "in_process_s": round(float(found.group(2)) / 1000, 3)}


def module_runner(extra):
    def run(bench):
        args = {**bench.login_options(), "tables": [{"name": TABLE, "days": DAYS}], **extra}
        args_file = bench.workdir / "args.json"
        write_private(args_file, json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", MODULE, str(args_file)], env=bench.env(), cwd=bench.workdir,
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise BenchError("pg_retention printed no JSON (exit %d):\n%s\n%s" % (
                proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])) from None
        if proc.returncode or result.get("failed"):
            raise BenchError("pg_retention failed: %s" % result.get("msg"))
        [table] = result["tables"]
        return {"seconds": seconds, "rows": table["rows"], "cutoff": dt.datetime.fromisoformat(table["cutoff"]),
                "in_process_s": table["seconds"], "batches": table["batches"],
                "longest_batch_ms": round(table["longest_batch_seconds"] * 1000, 1)}

    return run


def run_orm(bench):
    seconds, out = run_command([sys.executable, "manage.py", "shell", "-c", ORM_CODE], bench.env(), "Django ORM delete",
                               cwd=APP)
    result = json.loads(out.strip().splitlines()[-1])
    return {"seconds": seconds, "rows": result["rows"], "cutoff": dt.datetime.fromisoformat(result["cutoff"]),
            "in_process_s": round(result["in_process_s"], 3), "statements": result["statements"]}


RUNNERS = {
    "delete": ("one `DELETE ... WHERE created_at < CUTOFF` (psql -c, one transaction)", run_delete),
    "pg_retention": ("`pg_retention` with its defaults (python -m, args file)", module_runner({})),
    "ctid": ("`pg_retention`, `method: ctid` (heap page ranges instead of key ranges)", module_runner({"method": "ctid"})),
    "fixed_20k": ("`pg_retention`, `batch_size: 20000`, `batch_seconds: 0` (fixed ranges of 20,000 keys)",
                  module_runner({"batch_size": 20000, "batch_seconds": 0})),
    "orm": ("the guide: `PageVisit.objects.filter(created_at__lt=...).delete()` (manage.py shell -c)", run_orm),
}


def verify(bench, variant, result):
    """Exactly the template's rows at or after the run's cutoff are left, plus the writer's rows."""
    cutoff = result["cutoff"]
    total, expected_gone = bench.query("SELECT count(*), count(*) FILTER (WHERE created_at < %s) FROM pages_pagevisit",
                                       (cutoff,), dbname=TEMPLATE)[0]
    left, old_left, writer_rows = bench.query(
        "SELECT count(*), count(*) FILTER (WHERE created_at < %s), count(*) FILTER (WHERE path = '/bench/writer') "
        "FROM pages_pagevisit", (cutoff,))[0]
    if result["rows"] != expected_gone or old_left or left != total - expected_gone + writer_rows:
        raise BenchError("%s: deleted %d rows, expected %d; %d rows past the cutoff left; %d rows left, expected %d" % (
            variant, result["rows"], expected_gone, old_left, left, total - expected_gone + writer_rows))


def rounds(bench, variants, repeat):
    runs = {v: [] for v in variants}
    for rep in range(repeat):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for variant in order:
            fresh_copy(bench)
            writer = Writer(bench)
            writer.start()
            time.sleep(0.3)  # the writer is connected and steady before the variant starts
            writer.latencies.clear()
            try:
                result = RUNNERS[variant][1](bench)
            finally:
                result_writer = writer.finish()
            result.update(result_writer)
            verify(bench, variant, result)
            result["rows_per_s"] = round(result["rows"] / result["seconds"])
            runs[variant].append(result)
            log("round %d/%d %-12s %6.2f s %s" % (rep + 1, repeat, variant, result["seconds"], ", ".join(
                "%s=%s" % (k, v) for k, v in result.items() if k not in ("seconds", "cutoff", "statements"))))
    return runs


# ---------------------------------------------------------------- report


def summarize(runs):
    med = {}
    for variant, results in runs.items():
        med[variant] = {k: median([r[k] for r in results]) for k in results[0]
                        if isinstance(results[0][k], (int, float)) and not isinstance(results[0][k], bool)}
        med[variant]["writer_worst_ms"] = max(r["writer_max_ms"] for r in results)
        if "longest_batch_ms" in results[0]:
            med[variant]["longest_batch_worst_ms"] = max(r["longest_batch_ms"] for r in results)
    base = med["delete"]["rows_per_s"]
    for variant, m in med.items():
        m["throughput_vs_delete"] = m["rows_per_s"] / base
        m["in_process_rows_per_s"] = median([r["rows"] / r["in_process_s"] for r in runs[variant]])
    for m in med.values():
        m["in_process_vs_delete"] = m["in_process_rows_per_s"] / med["delete"]["in_process_rows_per_s"]
    return med


def targets(med):
    out = {}
    if "pg_retention" in med:
        r = med["pg_retention"]
        out["throughput"] = ("rows/s of pg_retention / rows/s of the single DELETE, whole commands = %.2f (target >= %g)" % (
            r["throughput_vs_delete"], MIN_THROUGHPUT), r["throughput_vs_delete"] >= MIN_THROUGHPUT)
        sql_text = ("the same, database work only (the module's walk, bounds query included, against the DELETE "
                    "statement's time) = %.2f (target >= %g)" % (r["in_process_vs_delete"], MIN_THROUGHPUT))
        out["throughput_sql"] = (sql_text, r["in_process_vs_delete"] >= MIN_THROUGHPUT)
        out["longest_batch"] = ("longest batch with the defaults, worst of all runs = %.0f ms (target < %.0f ms)" % (
            r["longest_batch_worst_ms"], MAX_BATCH_SECONDS * 1000), r["longest_batch_worst_ms"] < MAX_BATCH_SECONDS * 1000)
        if "orm" in med:
            out["vs_orm"] = ("pg_retention %.2f s vs the ORM %.2f s (median wall-clock; target: no slower)" % (
                r["seconds"], med["orm"]["seconds"]), r["seconds"] <= med["orm"]["seconds"])
        out["writer"] = ("worst INSERT of the concurrent writer while pg_retention ran = %.0f ms (target < %.0f ms)" % (
            r["writer_worst_ms"], MAX_WRITER_SECONDS * 1000), r["writer_worst_ms"] < MAX_WRITER_SECONDS * 1000)
    if "ctid" in med:  # not the default: shown to compare the two walks
        c = med["ctid"]
        ctid_text = ("with `method: ctid` (not the default): rows/s vs the single DELETE = %.2f whole commands, %.2f "
                     "database work (target >= %g)" % (c["throughput_vs_delete"], c["in_process_vs_delete"], MIN_THROUGHPUT))
        out["ctid_throughput"] = (ctid_text, c["throughput_vs_delete"] >= MIN_THROUGHPUT)
        if "orm" in med:
            out["ctid_vs_orm"] = ("with `method: ctid`: %.2f s vs the ORM %.2f s (target: no slower)" % (
                c["seconds"], med["orm"]["seconds"]), c["seconds"] <= med["orm"]["seconds"])
        out["ctid_longest_batch"] = ("with `method: ctid`: longest batch %.0f ms, writer's worst INSERT %.0f ms (targets "
                                     "< 200 ms)" % (c["longest_batch_worst_ms"], c["writer_worst_ms"]),
                                     max(c["longest_batch_worst_ms"], c["writer_worst_ms"]) < 200)
    return out


def fmt_runs(results):
    return ", ".join("%.2f" % r["seconds"] for r in results)


def render_section(data):
    m = data["machine"]
    med = data["medians"]
    b = data["build"]
    lines = [
        "<!-- bench:%s:start -->" % NAME,
        "## retention: one DELETE and the guide's ORM delete vs `pg_retention`",
        "",
        "- Date: %s" % data["date"],
        "- Machine: %d cores (%s), %s, %s; Python %s, ansible-core %s, Django %s; %s (fsync on, default settings, "
        "autovacuum off: see README.md)" % (
            m["cpus"], m["cpu"], m["memory"], m["os"], m["python"], m["ansible_core"], data["django"], data["server_version"]),
        "- Data: `%s` created by the sandbox app's migration (bigint identity `id`, index on `created_at`), %s rows "
        "from bench/datagen.py (%s with indexes), timestamps uniform over three years: %s past the %d-day cutoff. "
        "Loaded in %.0f s, then VACUUM (FREEZE, ANALYZE)." % (
            TABLE, format(data["rows"], ","), b["size"], format(b["old_rows_at_build"], ","), DAYS, b["load_seconds"]),
        "- Before every run: a fresh database copied from that template (STRATEGY FILE_COPY), sync, a count(*) to warm "
        "the cache, CHECKPOINT. During every run a writer inserts a row every 10 ms on its own connection. After every "
        "run the table held exactly the template's rows at or after the run's cutoff plus the writer's rows.",
        "- Load average when the runs started: %s (shared machine). %d interleaved rounds (order rotated); medians; "
        "wall-clock of the whole command." % (data["loadavg_at_start"], data["repeat"]),
        "",
        "| variant | command | median s | database work s | rows deleted | rows/s vs DELETE (database work) "
        "| batches | longest batch ms (worst) | writer worst INSERT ms | runs s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for variant, results in data["runs"].items():
        r = med[variant]
        lines.append("| %s | %s | %.2f | %.2f | %s | %.2f (%.2f) | %s | %s | %.0f | %s |" % (
            variant, RUNNERS[variant][0], r["seconds"], r["in_process_s"], format(int(r["rows"]), ","),
            r["throughput_vs_delete"], r["in_process_vs_delete"],
            "%d" % r["batches"] if "batches" in r else "1",
            "%.0f (%.0f)" % (r["longest_batch_ms"], r["longest_batch_worst_ms"]) if "longest_batch_ms" in r
            else "whole run", r["writer_worst_ms"], fmt_runs(results)))
    lines += ["", "*Database work*: the DELETE statement's own time (psql `\\timing`); the module's time on the table "
              "(its cutoff and key-bounds query, then every batch); the ORM's `delete()` call. The rest of *median s* is "
              "start-up: psql's, Python's and Ansible's imports, Django's setup."]
    if data.get("orm_statements"):
        lines.append("- The ORM ran: `%s`" % "`; `".join(s.replace("|", "\\|") for s in data["orm_statements"]))
    lines += ["", "Targets (the issue):", ""]
    for text, met in data["targets"].values():
        lines.append("- %s: **%s**" % (text, "met" if met else "NOT MET"))
    lines += ["", "Command: `%s`" % data["command"], "<!-- bench:%s:end -->" % NAME]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, default=4_000_000, help="rows of pages_pagevisit")
    parser.add_argument("--repeat", "-n", type=int, default=5, help="rounds (median reported)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of %s" % ", ".join(VARIANTS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--enforce", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / ("%s.json" % NAME), help="raw figures")
    parser.add_argument("--base-dir", type=Path, help="parent of the private temporary directory (default: $TMPDIR)")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or "delete" not in args.variants:
        parser.error("--variants: known are %s, and delete (the reference) is needed" % ", ".join(VARIANTS))
    if args.repeat < 1 or args.rows < 1000:
        parser.error("need --repeat >= 1 and --rows >= 1000")
    return args


def main(argv=None):
    args = parse_args(argv)
    handle_signals()
    ensure_collection_link()
    workdir = Path(tempfile.mkdtemp(prefix="bench-retention-", dir=args.base_dir))
    workdir.chmod(0o711)  # the postgres user must be able to enter its state dir
    bench = Bench(workdir)
    try:
        log("starting PostgreSQL 15 in %s" % workdir)
        bench.start()
        server_version = bench.query("SHOW server_version", dbname="postgres")[0][0]
        log("PostgreSQL %s on 127.0.0.1:%d (pid %d)" % (server_version, bench.pg.port, bench.pg.pid))
        log("building %s with %d rows" % (TABLE, args.rows))
        build_info = build(bench, args.rows, args.seed)
        django_version = run_command([sys.executable, "-c", "import django; print(django.get_version())"],
                                     bench.env(), "django version")[1].strip()
        loadavg = ", ".join("%.2f" % x for x in os.getloadavg())
        runs = rounds(bench, args.variants, args.repeat)
    finally:
        bench.pg.stop()
        log("PostgreSQL stopped")
        shutil.rmtree(workdir, ignore_errors=True)

    med = summarize(runs)
    data = {
        "benchmark": NAME,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "server_version": "PostgreSQL %s" % server_version,
        "django": django_version,
        "rows": args.rows,
        "repeat": args.repeat,
        "build": build_info,
        "loadavg_at_start": loadavg,
        "runs": runs,
        "medians": med,
        "orm_statements": runs["orm"][-1]["statements"] if runs.get("orm") else None,
        "command": "python bench/bench_retention.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    data["targets"] = targets(med)
    return publish(args, data, render_section(data), NAME, met=all(met for _text, met in data["targets"].values()))


if __name__ == "__main__":
    run_main(main)
