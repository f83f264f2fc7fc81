"""Throughput of bench/datagen.py: rows/s generated in Python alone, and loaded into PostgreSQL through COPY.

For each table: (1) the COPY text generated and thrown away (the generator's
own speed), (2) the same rows through `datagen.fill` into an empty table of a
fresh PostgreSQL 15 (sandbox/harness, 127.0.0.1, stopped by PID at the end),
with its primary key and created_at index, as the benchmarks and the sandbox
seeder load them. Medians of --repeat runs; the target is >= 100,000 rows/s of
pages_pagevisit through COPY.

    python bench/bench_datagen.py [--repeat 3] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import statistics
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
from _common import publish  # noqa: E402
from bench_pg_maintenance import handle_signals, log, machine, run_main  # noqa: E402
from harness import PostgresServer  # noqa: E402

NAME = "datagen"
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
DEFAULT_ROWS = {"pages_pagevisit": 500_000, "utils_requestfingerprint": 100_000, "utils_lighthouseresult": 5_000,
                "blog_blogcomment": 50_000}
TARGET = 100_000  # pages_pagevisit rows/s through COPY


def pure(table, rows):
    stream = datagen.RowStream(table, rows, 1, NOW)
    started = time.perf_counter()
    while stream.read(1 << 18):
        pass
    return time.perf_counter() - started, stream.bytes_read


def loaded(server, table, rows, run):
    name = "%s_run%d" % (table, run)
    conn = psycopg2.connect(**server.conninfo())
    conn.autocommit = True
    try:
        datagen.create_table(conn, table, name=name)
        started = time.perf_counter()
        datagen.fill(conn, table, rows, seed=1, now=NOW, name=name)
        seconds = time.perf_counter() - started
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        return seconds
    finally:
        conn.close()


def render_section(data):
    m = data["machine"]
    lines = [
        "<!-- bench:%s:start -->" % NAME,
        "## datagen: test data generation speed",
        "",
        "- Date: %s" % data["date"],
        "- Machine: %d cores (%s), %s, %s; Python %s; %s" % (
            m["cpus"], m["cpu"], m["memory"], m["os"], m["python"], data["server_version"]),
        "- Medians of %d runs. *Python only*: the COPY text generated and discarded. *COPY*: `datagen.fill` into an "
        "empty table with its primary key and `created_at` index (generation and server work overlap: two processes)."
        % data["repeat"],
        "",
        "| table | rows | bytes/row | Python only, rows/s | COPY into PostgreSQL, rows/s | COPY MB/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for table, r in data["tables"].items():
        lines.append("| `%s` | %s | %d | %s | %s | %.1f |" % (
            table, format(r["rows"], ","), r["bytes_per_row"], format(round(r["pure_rows_per_s"]), ","),
            format(round(r["copy_rows_per_s"]), ","), r["copy_mb_per_s"]))
    pv = data["tables"].get("pages_pagevisit")
    if pv:
        lines += ["", "pages_pagevisit through COPY: **%s rows/s** (target >= %s: %s)." % (
            format(round(pv["copy_rows_per_s"]), ","), format(TARGET, ","), "met" if pv["copy_rows_per_s"] >= TARGET else "NOT MET")]
    lines += ["", "Command: `%s`" % data["command"], "<!-- bench:%s:end -->" % NAME]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", "-n", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the row counts")
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / ("%s.json" % NAME))
    parser.add_argument("--base-dir", type=Path, help="parent of the private temporary directory")
    args = parser.parse_args(argv)
    handle_signals()
    plan = {table: max(10, int(rows * args.scale)) for table, rows in DEFAULT_ROWS.items()}
    workdir = Path(tempfile.mkdtemp(prefix="bench-datagen-", dir=args.base_dir))
    workdir.chmod(0o711)
    server = PostgresServer(workdir / "postgres")
    figures = {}
    try:
        server.start()
        conn = psycopg2.connect(**server.conninfo())
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            server_version = "PostgreSQL " + cur.fetchone()[0]
        conn.close()
        for table, rows in plan.items():
            pure_runs, copy_runs, size = [], [], 0
            for run in range(args.repeat):
                seconds, size = pure(table, rows)
                pure_runs.append(seconds)
                copy_runs.append(loaded(server, table, rows, run))
            p, c = statistics.median(pure_runs), statistics.median(copy_runs)
            figures[table] = {"rows": rows, "bytes_per_row": round(size / rows), "pure_rows_per_s": rows / p,
                              "copy_rows_per_s": rows / c, "copy_mb_per_s": round(size / c / 1e6, 1),
                              "pure_seconds": [round(s, 3) for s in pure_runs], "copy_seconds": [round(s, 3) for s in copy_runs]}
            log("%-26s %8d rows: Python %9.0f rows/s, COPY %9.0f rows/s" % (table, rows, rows / p, rows / c))
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    data = {
        "benchmark": NAME,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "server_version": server_version,
        "repeat": args.repeat,
        "tables": figures,
        "command": "python bench/bench_datagen.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    return publish(args, data, render_section(data), NAME)


if __name__ == "__main__":
    run_main(main)
