"""Database backup to S3: the guide's `pg_dump | gzip > file` + upload against webstack.ops.s3_backup, and restores.

A database shaped like the guide's tables (text-heavy, --size-gb, default 1.3 GB
as pg_database_size) is generated with bench/datagen.py into a PostgreSQL 15 of
its own; SeaweedFS serves S3 (both from sandbox/harness, on free 127.0.0.1 ports,
stopped by PID at the end). In one run, interleaved, wall-clock of each command:

  plain            pg_dump DB > /dev/null: the ceiling
  guide            pg_dump DB | gzip > FILE, then FILE uploaded with boto3's upload_file
                   (the s3transfer code of `aws s3 cp`, without the CLI's start-up)
  s3_backup        python -m ansible_collections.webstack.ops.plugins.modules.s3_backup ARGS.json (defaults)
  s3_backup_l3     the same with compression_level: 3 (zstd's own default)
  s3_backup_custom the same with format: custom
  backend          the module's backend (_s3_backup.run_backup) called without Ansible, timed in its process
  playbook         s3_backup as one task of ansible-playbook (Ansible's own overhead)
  fc, zstd3, zstd2, zstd1   reference pipelines to a file, no upload: pg_dump -Fc; pg_dump | zstd -N -T2
                   (zstd2: s3_backup's pipeline in the shell)

Ratios are to the plain dump's rate (plain seconds / variant seconds). The CPU
time of each run is split into the PostgreSQL backend, the client side (pg_dump,
compressor, Python) and SeaweedFS. Peak memory is the RSS high-water mark of the
module's Python process (VmHWM, read at its exit); pg_dump is a process of its own
and is not included. It is measured at --size-gb and again once the database has
grown to --large-gb (default 4). The last s3_backup object is then restored into
fresh databases, by s3_restore from S3 and by pg_restore from a local copy of the
same object, interleaved.

    python bench/bench_backup.py [--size-gb 1.3] [--large-gb 4] [--repeat 3] [--quick] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore.config
import psycopg2
from psycopg2 import sql

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "sandbox"))

import datagen  # noqa: E402
from _common import median, publish  # noqa: E402
from bench_pg_maintenance import (  # noqa: E402
    COLLECTIONS,
    BenchError,
    ansible_env,
    handle_signals,
    log,
    machine,
    run_main,
    tool,
    write_private,
)
from harness import PostgresServer, S3Server  # noqa: E402
from harness.postgres import BIN as PG_BIN  # noqa: E402

NAME = "backup"
DB = "bench"
BUCKET = "backups"
PREFIX = "postgres/"
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)  # fixed: the same data at every run
MODULES = ROOT / "plugins" / "modules"
BACKUP_MODULE = "ansible_collections.webstack.ops.plugins.modules.s3_backup"
RESTORE_MODULE = "ansible_collections.webstack.ops.plugins.modules.s3_restore"
# One load unit, ~100 MB of COPY text: the guide's four tables, text-heavy (paths, user agents, headers, comments,
# Lighthouse JSON). Units are loaded (seed + unit number) until pg_database_size reaches the wanted size.
UNIT = {"pages_pagevisit": 200_000, "utils_requestfingerprint": 50_000, "blog_blogcomment": 20_000,
        "utils_lighthouseresult": 1_500}
# Targets of the issue.
MIN_PLAIN_RATIO = 0.75  # s3_backup's rate / plain dump's rate
MIN_SPEEDUP = 2.5  # guide's time / s3_backup's time
MAX_MEMORY_MB = 150
MAX_MEMORY_GROWTH = 0.20  # between the two database sizes
MAX_RESTORE_RATIO = 1.15  # s3_restore / restore from a local file

# Runs a module the way `python -m` does and writes, at its exit, the peak RSS of this Python process to the file
# named by BENCH_RUSAGE: VmHWM, the high-water mark of the address space since exec. Not ru_maxrss: Linux carries
# the parent's RSS at fork into the child's ru_maxrss (and the module's RSS into pg_dump's).
RUSAGE_WRAPPER = """\
import atexit, os, re, runpy, sys
def _report():
    with open("/proc/self/status") as status, open(os.environ["BENCH_RUSAGE"], "w") as out:
        out.write(re.search(r"VmHWM:\\s*(\\d+) kB", status.read()).group(1))
atexit.register(_report)
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""

# The module's backend called directly, without Ansible (no AnsibleModule, no version check, no manifest): the
# pg_dump command line s3_backup builds with its defaults (plain format, zstd level 2 on every CPU, 8 MiB parts,
# 4 at a time). Prints its in-process seconds and peak RSS as JSON.
BACKEND_DRIVER = """\
import json, re, sys, time
from ansible_collections.webstack.ops.plugins.module_utils import _s3, _s3_backup as backend
p = json.load(open(sys.argv[1]))
argv = ["pg_dump", "--format=plain", "--no-password", "--username", p["login_user"],
        "--dbname", p["login_db"], "--host", p["login_host"], "--port", str(p["login_port"])]
client = _s3.s3_client(p, max_pool_connections=6)
started = time.perf_counter()
source = backend.Runner({"PGPASSWORD": p["login_password"]}).start(argv)
stats = backend.run_backup(client, p, bucket=p["bucket"], key=p["key"], source=source, extra_args={},
                           compress=backend.compressor("zstd", 2, -1), part_size=8 << 20, concurrency=4)
stats["seconds"] = time.perf_counter() - started
stats["rss_kb"] = int(re.search(r"VmHWM:\\s*(\\d+) kB", open("/proc/self/status").read()).group(1))
print(json.dumps(stats))
"""


def mb(n):
    return n / 1e6


# ---------------------------------------------------------------- servers and data


class Bench:
    """The two servers, an S3 client, the work directory, and how to reach them."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.pg = PostgresServer(workdir / "postgres")
        self.s3 = S3Server(workdir / "s3")
        self.client = None

    def start(self):
        self.pg.start()
        self.s3.start()
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.s3.endpoint_url, region_name=self.s3.region, aws_access_key_id=self.s3.access_key,
            aws_secret_access_key=self.s3.secret_key, config=botocore.config.Config(s3={"addressing_style": "path"}))
        deadline = time.monotonic() + 30
        while True:  # the gateway answers before the filer is ready to take a bucket
            try:
                self.client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        with self.connect("postgres") as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % DB)

    def stop(self):
        for server in (self.s3, self.pg):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - stop the other one too
                log("stopping %s: %s" % (server.name, exc))

    @contextlib.contextmanager
    def connect(self, dbname=DB):
        conn = psycopg2.connect(**self.pg.conninfo(dbname))
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def scalar(self, query, dbname=DB):
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchone()[0]

    def db_size(self, dbname=DB):
        return self.scalar("SELECT pg_database_size(current_database())", dbname)

    def row_counts(self, dbname):
        with self.connect(dbname) as conn, conn.cursor() as cur:
            counts = {}
            for table in datagen.TABLES:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
                counts[table] = cur.fetchone()[0]
            return counts

    def drop_database(self, dbname):
        with self.connect("postgres") as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def env(self):
        """Environment of every command: PostgreSQL 15's tools first on PATH, the password in PGPASSWORD."""
        env = dict(os.environ)
        env["PGPASSWORD"] = self.pg.password
        env["PATH"] = "%s:%s:%s" % (PG_BIN, Path(sys.executable).parent, env.get("PATH", ""))
        env["PYTHONPATH"] = str(COLLECTIONS)
        return env

    def conn_args(self):
        return "-h 127.0.0.1 -p %d -U postgres" % self.pg.port

    def s3_options(self):
        return {"bucket": BUCKET, "endpoint_url": self.s3.endpoint_url, "region": self.s3.region,
                "access_key": self.s3.access_key, "secret_key": self.s3.secret_key}

    def login_options(self, dbname=DB):
        return {"login_host": "127.0.0.1", "login_port": self.pg.port, "login_user": "postgres",
                "login_password": self.pg.password, "login_db": dbname}

    def clear_bucket(self, keep=()):
        """Delete every object but `keep` (and their manifests)."""
        keep = set(keep)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                if not any(obj["Key"].startswith(k) for k in keep):
                    self.client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def _proc_cpu(pid, children):
    """CPU seconds of a process (utime + stime), or of its reaped children (cutime + cstime), from /proc/PID/stat."""
    stat = Path("/proc/%d/stat" % pid).read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    first = 13 if children else 11  # fields 16-17 or 14-15 of proc(5), counted from the state (field 3)
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def wait_idle(bench, timeout=10.0):
    """Wait until no other client backend is connected: the last command's backend has exited (and been reaped)."""
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    while bench.scalar(query, "postgres") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)


def cpu_snapshot(bench):
    """CPU seconds used so far by: the PostgreSQL backends that exited (the postmaster's reaped children: pg_dump's
    backend ends with it), the commands we ran (our reaped children, plus this process, which runs the guide's
    upload), and SeaweedFS."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"server": _proc_cpu(bench.pg.pid, children=True),
            "client": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
            "s3": _proc_cpu(bench.s3.pid, children=False)}


def grow(bench, target_bytes, first_unit, seed):
    """Load units of the four tables until the database reaches target_bytes; (units in the database, seconds, MB sent)."""
    started = time.perf_counter()
    sent = 0
    unit = first_unit
    with bench.connect() as conn:
        datagen.create_tables(conn)
        while bench.db_size() < target_bytes:
            for table, rows in UNIT.items():
                sent += datagen.fill(conn, table, rows, seed=seed + unit, now=NOW)
            unit += 1
            log("  unit %d loaded: database %.0f MB, %.0f MB of COPY text at %.1f MB/s" % (
                unit, mb(bench.db_size()), mb(sent), mb(sent) / (time.perf_counter() - started)))
        with conn.cursor() as cur:  # hint bits set and statistics fresh: dumps read clean pages
            cur.execute("VACUUM (FREEZE, ANALYZE)")
            cur.execute("CHECKPOINT")
    return unit, time.perf_counter() - started, mb(sent)


# ---------------------------------------------------------------- commands


def shell(command, env, what):
    """Run a bash pipeline (pipefail); its wall-clock seconds."""
    started = time.perf_counter()
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise BenchError("%s failed (exit %d): %s\n%s" % (what, proc.returncode, command, proc.stderr[-2000:]))
    return seconds


def plain_size(bench):
    """Bytes of the plain dump (untimed, also warms the cache)."""
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", "pg_dump %s %s" % (bench.conn_args(), DB)],
                            env=bench.env(), stdout=subprocess.PIPE)
    size = 0
    while data := proc.stdout.read(1 << 20):
        size += len(data)
    if proc.wait():
        raise BenchError("pg_dump failed")
    return size


def file_pipeline(command):
    """A runner for a `pg_dump ... > FILE` pipeline: seconds and the size of FILE."""

    def run(bench):
        out = bench.workdir / "dump.out"
        seconds = shell(command.format(conn=bench.conn_args(), db=DB, out=shlex.quote(str(out))), bench.env(), command)
        size = out.stat().st_size
        out.unlink()
        return {"seconds": seconds, "size": size}

    return run


def run_plain(bench):
    return {"seconds": shell("pg_dump %s %s > /dev/null" % (bench.conn_args(), DB), bench.env(), "plain pg_dump")}


def run_guide(bench):
    """pg_dump | gzip > file, then the file uploaded (boto3 upload_file: s3transfer, as `aws s3 cp`)."""
    out = bench.workdir / "bench.sql.gz"
    dump = shell("pg_dump %s %s | gzip > %s" % (bench.conn_args(), DB, shlex.quote(str(out))), bench.env(), "the guide's dump")
    started = time.perf_counter()
    bench.client.upload_file(str(out), BUCKET, "guide/bench.sql.gz")
    upload = time.perf_counter() - started
    size = out.stat().st_size
    out.unlink()
    bench.client.delete_object(Bucket=BUCKET, Key="guide/bench.sql.gz")
    return {"seconds": dump + upload, "dump_seconds": dump, "upload_seconds": upload, "size": size}


def run_module(bench, module, args, what):
    """The module as Ansible runs it on a host (python -m, args file); (wall seconds, exit status, result, peak RSS MB)."""
    args_file = bench.workdir / "args.json"
    rusage_file = bench.workdir / "peak_rss"
    rusage_file.unlink(missing_ok=True)
    write_private(args_file, json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = bench.env()
    env["BENCH_RUSAGE"] = str(rusage_file)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUSAGE_WRAPPER, module, str(args_file)], env=env, cwd=bench.workdir,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise BenchError("%s printed no JSON (exit %d):\n%s\n%s" % (what, proc.returncode, proc.stdout[-2000:],
                                                                    proc.stderr[-2000:])) from None
    peak_kb = int(rusage_file.read_text()) if rusage_file.exists() else 0
    return seconds, proc.returncode, result, round(peak_kb / 1024, 1)


def backup_args(bench, **extra):
    return {**bench.login_options(), **bench.s3_options(), "name": DB, **extra}


def module_backup(extra=None):
    """A runner for s3_backup with the given options on top of the defaults."""

    def run(bench):
        seconds, code, result, rss_mb = run_module(bench, BACKUP_MODULE, backup_args(bench, **(extra or {})), "s3_backup")
        if code or result.get("failed"):
            raise BenchError("s3_backup failed: %s" % result.get("msg"))
        head = bench.client.head_object(Bucket=BUCKET, Key=result["key"])
        if head["ContentLength"] != result["size"]:
            raise BenchError("s3_backup reported %s bytes, S3 holds %s" % (result["size"], head["ContentLength"]))
        manifest = json.loads(bench.client.get_object(Bucket=BUCKET, Key=result["key"] + ".manifest.json")["Body"].read())
        return {"seconds": seconds, "size": result["size"], "raw_size": result.get("raw_size"), "key": result["key"],
                "format": manifest["format"], "compression": manifest["compression"],
                "sha256": result.get("sha256"), "duration_s": result.get("duration_s"),
                "rss_mb": rss_mb}

    return run


def import_baseline(bench):
    """Peak RSS of the module's process when it fails right after its imports (no bucket given): the fixed part."""
    args = {k: v for k, v in backup_args(bench).items() if k != "bucket"}
    return run_module(bench, BACKUP_MODULE, args, "s3_backup without a bucket")[3]


def run_backend(bench):
    """BACKEND_DRIVER: the streaming itself, timed inside its process."""
    args_file = bench.workdir / "backend.json"
    write_private(args_file, json.dumps(backup_args(bench, key="backend/bench.dump.zst")))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", BACKEND_DRIVER, str(args_file)], env=bench.env(), capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise BenchError("the backend driver failed (exit %d): %s" % (proc.returncode, proc.stderr[-3000:]))
    stats = json.loads(proc.stdout)
    return {"seconds": seconds, "in_process_s": stats["seconds"], "size": stats["size"], "rss_mb": round(stats["rss_kb"] / 1024, 1)}


def run_playbook(bench):
    playbook = bench.workdir / "backup.yml"
    write_private(playbook, json.dumps([{
        "name": "Backup (benchmark)", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "s3_backup", "webstack.ops.s3_backup": backup_args(bench)}],
    }]))
    env = ansible_env()
    env["PATH"] = "%s:%s" % (PG_BIN, env["PATH"])
    argv = [tool("ansible-playbook"), "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise BenchError("ansible-playbook exited %d:\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-2000:]))
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return {"seconds": seconds, "size": result["size"], "duration_s": result.get("duration_s")}


# name: (what the table says, runner); a round runs them in this order, rotated by one at each round
VARIANTS = {
    "plain": ("`pg_dump DB > /dev/null` (the ceiling)", run_plain),
    "guide": ("the guide: `pg_dump DB \\| gzip > FILE`, then FILE uploaded (boto3 `upload_file`)", run_guide),
    "s3_backup": ("`s3_backup`, defaults (python -m, args file)", module_backup()),
    "s3_backup_l3": ("`s3_backup`, `compression_level: 3`", module_backup({"compression_level": 3})),
    "s3_backup_custom": ("`s3_backup`, `format: custom`", module_backup({"format": "custom"})),
    "backend": ("the backend alone, no Ansible (`_s3_backup.run_backup`, s3_backup's defaults)", run_backend),
    "playbook": ("`s3_backup` defaults through `ansible-playbook`", run_playbook),
    "fc": ("`pg_dump -Fc DB > FILE` (no upload)", file_pipeline("pg_dump -Fc {conn} {db} > {out}")),
    "zstd3": ("`pg_dump DB \\| zstd -3 -T2 > FILE` (no upload)", file_pipeline("pg_dump {conn} {db} | zstd -q -3 -T2 > {out}")),
    "zstd2": ("`pg_dump DB \\| zstd -2 -T2 > FILE` (s3_backup's pipeline in the shell, no upload)",
              file_pipeline("pg_dump {conn} {db} | zstd -q -2 -T2 > {out}")),
    "zstd1": ("`pg_dump DB \\| zstd -1 -T2 > FILE` (no upload)", file_pipeline("pg_dump {conn} {db} | zstd -q -1 -T2 > {out}")),
}
BACKUP_VARIANTS = ["s3_backup", "s3_backup_l3", "s3_backup_custom", "backend"]
REFERENCE_VARIANTS = ["fc", "zstd3", "zstd2", "zstd1"]


def rounds(bench, variants, repeat, keep=()):
    """`repeat` interleaved rounds of the variants; {variant: [result, ...]}."""
    runs = {v: [] for v in variants}
    for rep in range(repeat):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for variant in order:
            wait_idle(bench)
            before = cpu_snapshot(bench)
            result = VARIANTS[variant][1](bench)
            wait_idle(bench)
            after = cpu_snapshot(bench)
            result.update({"cpu_%s" % k: round(after[k] - before[k], 2) for k in after})
            runs[variant].append(result)
            log("round %d/%d %-13s %7.2f s %s" % (rep + 1, repeat, variant, result["seconds"], ", ".join(
                "%s=%s" % (k, v) for k, v in result.items() if k not in ("seconds", "key", "sha256"))))
            bench.clear_bucket(keep=list(keep) + [r["key"] for r in runs.get("s3_backup", [])[-1:]])
    return runs


# ---------------------------------------------------------------- restore


def local_restore_command(fmt, compression, path, target):
    """The hand-run restore of the same object from a local file."""
    decompress = {"zstd": "zstd -dc", "gzip": "gzip -dc", "none": "cat"}[compression]
    # The flags s3_restore gives its client: one transaction, stop at the first error.
    if fmt == "custom":
        load = "pg_restore {conn} --single-transaction --exit-on-error -d %s" % target
    else:
        load = "psql {conn} -X -q -v ON_ERROR_STOP=1 --single-transaction -d %s -f -" % target
    return "createdb {conn} %s && %s %s | %s" % (target, decompress, shlex.quote(str(path)), load)


def restore_rounds(bench, key, fmt, compression, *, repeat, expected):
    """s3_restore from S3 against the same dump restored from a local file, interleaved; each into a fresh database."""
    local = bench.workdir / "restore.dump"
    bench.client.download_file(BUCKET, key, str(local))
    runs = {"local": [], "s3_restore": []}
    template = local_restore_command(fmt, compression, local, "restore_local")
    for rep in range(repeat):
        for variant in (["local", "s3_restore"] if rep % 2 == 0 else ["s3_restore", "local"]):
            target = "restore_" + ("local" if variant == "local" else "s3")
            bench.drop_database(target)
            with bench.connect() as conn, conn.cursor() as cur:
                cur.execute("CHECKPOINT")
            if variant == "local":
                seconds = shell(template.format(conn=bench.conn_args()), bench.env(), "local restore")
                info = {"seconds": seconds}
            else:
                args = {**bench.login_options(), **bench.s3_options(), "key": key, "target_db": target}
                seconds, code, result, rss_mb = run_module(bench, RESTORE_MODULE, args, "s3_restore")
                if code or result.get("failed"):
                    raise BenchError("s3_restore failed: %s" % result.get("msg"))
                info = {"seconds": seconds, "duration_s": result.get("duration_s"),
                        "rss_mb": rss_mb}
            counts = bench.row_counts(target)
            if counts != expected:
                raise BenchError("%s restored %s rows, the database has %s" % (variant, counts, expected))
            runs[variant].append(info)
            log("restore %d/%d %-10s %7.2f s" % (rep + 1, repeat, variant, seconds))
            bench.drop_database(target)
    local.unlink()
    shown = local_restore_command(fmt, compression, "FILE", "restore_local").format(conn="-h 127.0.0.1 -p P -U postgres")
    return {"local_command": shown, "runs": runs}


# ---------------------------------------------------------------- report


def summarize(runs):
    """Medians per variant and the ratios of the issue's targets."""
    med = {}
    for variant, results in runs.items():
        med[variant] = {k: median([r[k] for r in results if r.get(k) is not None])
                        for k in results[0] if isinstance(results[0][k], (int, float))}
    plain = med["plain"]["seconds"]
    for m in med.values():
        m["ratio_to_plain"] = plain / m["seconds"]
        if "guide" in med:
            m["speedup_vs_guide"] = med["guide"]["seconds"] / m["seconds"]
            if m.get("size"):
                m["size_vs_gzip"] = m["size"] / med["guide"]["size"]
    return med


def targets(data):
    out = {}
    main_med = data["medians"]
    if "s3_backup" in main_med:
        b = main_med["s3_backup"]
        out["rate >= %.2f of plain" % MIN_PLAIN_RATIO] = (round(b["ratio_to_plain"], 2), b["ratio_to_plain"] >= MIN_PLAIN_RATIO)
        out[">= %.1fx faster than the guide" % MIN_SPEEDUP] = (round(b["speedup_vs_guide"], 2), b["speedup_vs_guide"] >= MIN_SPEEDUP)
        out["output <= the guide's gzip file"] = (round(b["size_vs_gzip"], 3), b["size_vs_gzip"] <= 1.0)
        small = b.get("rss_mb")
        large = (data.get("large") or {}).get("medians", {}).get("s3_backup", {}).get("rss_mb")
        if small:
            peak = max(small, large or 0)
            out["peak memory < %d MB" % MAX_MEMORY_MB] = (peak, peak < MAX_MEMORY_MB)
        if small and large:
            growth = large / small - 1
            out["memory at %.1f GB within %d%% of %.1f GB" % (data["large"]["size_gb"], MAX_MEMORY_GROWTH * 100,
                                                              data["size_gb"])] = (
                "%+.1f%%" % (growth * 100), abs(growth) <= MAX_MEMORY_GROWTH)
    restore = data.get("restore")
    if restore:
        ratio = restore["ratio"]
        out["s3_restore <= %.2fx local restore" % MAX_RESTORE_RATIO] = (round(ratio, 3), ratio <= MAX_RESTORE_RATIO)
    return out


def fmt_s(values):
    return ", ".join("%.2f" % v for v in values)


def cpu_total(m):
    return m["cpu_server"] + m["cpu_client"] + m["cpu_s3"]


def where_time_goes(data):
    """The CPU budget of the plain dump against s3_backup's: what the cores allow at best."""
    med, cores = data["medians"], data["machine"]["cpus"]
    if "s3_backup" not in med:
        return []
    p, b = med["plain"], med["s3_backup"]
    floor = cpu_total(b) / cores
    lines = ["", "Where the time goes (CPU s, medians): the plain dump %.1f, of which %.1f in the PostgreSQL backend, one "
             "process that bounds the plain dump's time, and %.1f in pg_dump. s3_backup %.1f: backend %.1f, pg_dump + "
             "zstd + Python %.1f (+%.1f over the plain dump's client side), SeaweedFS %.1f. On %d cores that is at least "
             "%.1f / %d = %.2f s even with nothing else running, a rate of at most %.2f of the plain dump's %.2f s; the "
             "machine is shared, so less in practice." % (
                 cpu_total(p), p["cpu_server"], p["cpu_client"], cpu_total(b), b["cpu_server"], b["cpu_client"],
                 b["cpu_client"] - p["cpu_client"], b["cpu_s3"], cores, cpu_total(b), cores, floor, p["seconds"] / floor,
                 p["seconds"])]
    for name, label in (("zstd1", "zstd -1"), ("zstd2", "zstd -2"), ("zstd3", "zstd -3")):
        if name in med:
            lines.append("For comparison, `%s -T2` to a file: %.1f CPU s on the client side, %.2f s." % (
                label, med[name]["cpu_client"], med[name]["seconds"]))
    return lines


def miss_notes(data):
    """One line per missed target, from this run's own figures: what the other variants show about the cause."""
    med, notes = data["medians"], []
    missed = {name.split(" ")[0] for name, (_value, met) in data["targets"].items() if not met}
    b = med.get("s3_backup", {})
    if "rate" in missed:
        seen = []
        if b.get("duration_s"):
            seen.append("s3_backup's streaming alone (its `duration_s`, without the %.2f s of start-up, imports, version and "
                        "bucket checks) %.2f" % (b["seconds"] - b["duration_s"], med["plain"]["seconds"] / b["duration_s"]))
        large = (data.get("large") or {}).get("medians", {})
        if "s3_backup" in large:
            seen.append("at %.2f GB, where that fixed cost weighs less, %.2f" % (
                data["large"]["size_gb"], large["s3_backup"]["ratio_to_plain"]))
        if "zstd2" in med:
            seen.append("the same pipeline in the shell without upload (`zstd2`) %.2f" % med["zstd2"]["ratio_to_plain"])
        if "zstd1" in med:
            seen.append("`zstd -1` in the shell %.2f" % med["zstd1"]["ratio_to_plain"])
        notes.append("- Rate: %sthe extra CPU of zstd (and, here, of SeaweedFS) on the cores the PostgreSQL backend and "
                     "pg_dump already use costs the time (see the CPU column and \"Where the time goes\")." % (
                         "".join(x + "; " for x in seen)))
    if "output" in missed:
        notes.append("- Size: %.1f MB against the gzip file's %.1f MB; `compression_level: 3` gives %.1f MB." % (
            mb(b["size"]), mb(med["guide"]["size"]),
            mb(med["s3_backup_l3"]["size"]) if "s3_backup_l3" in med else float("nan")))
    if "peak" in missed:
        notes.append("- Memory: %.0f MB of the peak is Python with its imports; the parts in flight add up to concurrency "
                     "x part size (4 x 8 MiB), and zstd's multi-threaded compressor keeps a few 2 MiB jobs per worker." % (
                         data.get("import_rss_mb", 0)))
    if "s3_restore" in missed:
        r = data["restore"]
        notes.append("- Restore: the streaming restore alone (`duration_s`) is %.3fx the local one; the other %.1f s of the "
                     "module are its start-up, the checks before the restore and the database creation." % (
                         r["s3_restore_duration_s"] / r["local_seconds"], r["s3_restore_seconds"] - r["s3_restore_duration_s"]))
    return ["", "Why the misses (from this run's figures):"] + notes if notes else []


def render_section(data):
    m = data["machine"]
    med = data["medians"]
    lines = [
        "<!-- bench:%s:start -->" % NAME,
        "## backup: the guide's `pg_dump | gzip` + upload vs `s3_backup`, and `s3_restore`",
        "",
        "- Date: %s" % data["date"],
        "- Machine: %d cores (%s), %s, %s; Python %s, ansible-core %s; %s; S3: SeaweedFS on 127.0.0.1" % (
            m["cpus"], m["cpu"], m["memory"], m["os"], m["python"], m["ansible_core"], data["server_version"]),
        "- Data: the guide's four tables generated by bench/datagen.py (units of %s rows: %s; loaded %d), **%.2f GB** "
        "(pg_database_size); plain dump %.0f MB. Loaded in %.0f s, then VACUUM (FREEZE, ANALYZE)." % (
            ", ".join("`%s`" % t for t in UNIT), " / ".join(format(r, ",") for r in UNIT.values()), data["units"],
            data["size_gb"], mb(data["plain_size"]),
            data["load_seconds"]),
        "- Load average when the runs started: %s (shared machine). %d interleaved rounds (order rotated), one untimed "
        "plain dump first; medians. Wall-clock of the whole command; S3 objects deleted between runs (untimed)." % (
            data["loadavg_at_start"], data["repeat"]),
        "",
        "| variant | command | median s | rate vs plain | vs guide | output MB | CPU s: server + client + S3 | runs s |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for variant, results in data["runs"].items():
        r = med[variant]
        lines.append("| %s | %s | %.2f | %.2f | %s | %s | %.1f + %.1f + %.1f | %s |" % (
            variant, VARIANTS[variant][0], r["seconds"], r["ratio_to_plain"],
            "%.2fx" % r["speedup_vs_guide"] if "speedup_vs_guide" in r else "",
            "%.1f" % mb(r["size"]) if r.get("size") else "", r["cpu_server"], r["cpu_client"], r["cpu_s3"],
            fmt_s([x["seconds"] for x in results])))
    lines += ["", "CPU s (medians): *server* = the PostgreSQL backend serving the dump, *client* = pg_dump, the "
              "compressor and the module's Python (or the guide's upload), *S3* = SeaweedFS. The machine has %d cores "
              "for all three (and whatever else runs on it)." % data["machine"]["cpus"], ""]
    if "guide" in med:
        g = med["guide"]
        lines.append("The guide's pipeline: dump + gzip %.2f s, upload %.2f s (medians). boto3's `upload_file` stands in "
                     "for `aws s3 cp` (same s3transfer code, 8 MB parts, 10 threads; the CLI's ~1 s start-up not counted)."
                     % (g["dump_seconds"], g["upload_seconds"]))
    if "s3_backup" in med:
        b = med["s3_backup"]
        lines.append("s3_backup's own `duration_s` %.2f s of its %.2f s wall-clock (the rest, %.2f s: Python start-up, "
                     "imports, the psql and pg_dump version checks, the bucket check); raw dump %.0f MB -> %.1f MB." % (
                         b["duration_s"], b["seconds"], b["seconds"] - b["duration_s"], mb(b["raw_size"]), mb(b["size"])))
        if "backend" in med:
            lines.append("The backend alone (`run_backup` timed inside its process, no Ansible): %.2f s." % med["backend"]["in_process_s"])
        if "playbook" in med:
            lines.append("Through ansible-playbook: %.2f s (+%.2f s of Ansible)." % (
                med["playbook"]["seconds"], med["playbook"]["seconds"] - b["seconds"]))
        lines.append("")
        lines.append("Peak RSS of the module's Python process (VmHWM at its exit, medians; pg_dump is a process of its own, "
                     "not included): **%.1f MB** at %.2f GB%s; the same module failing right after its imports (no bucket "
                     "given): %.1f MB%s." % (
                         b["rss_mb"], data["size_gb"],
                         ", **%.1f MB** at %.2f GB" % (data["large"]["medians"]["s3_backup"]["rss_mb"], data["large"]["size_gb"])
                         if data.get("large") else "", data["import_rss_mb"],
                         "; the backend alone: %.1f MB" % med["backend"]["rss_mb"] if "backend" in med else ""))
    lines += where_time_goes(data)
    large = data.get("large")
    if large:
        lm = large["medians"]
        lines.append("")
        figures = (large["size_gb"], mb(large["plain_size"]), large["repeat"], lm["plain"]["seconds"],
                   lm["s3_backup"]["seconds"], lm["s3_backup"]["ratio_to_plain"], mb(lm["s3_backup"]["size"]))
        lines.append("At %.2f GB (plain dump %.0f MB, %d run(s) each): plain %.2f s, s3_backup %.2f s (rate %.2f of plain, "
                     "%.1f MB output)." % figures)
    restore = data.get("restore")
    if restore:
        lines += [
            "",
            "Restore of the last s3_backup object into a fresh database (row counts checked afterwards, untimed), %d "
            "interleaved runs, "
            "medians: s3_restore %.2f s wall-clock (runs %s; its own `duration_s`, the streaming restore without "
            "start-up, its checks and the database creation: %.2f s) vs `%s` from a local copy of the same object "
            "%.2f s (runs %s): **%.3fx** (streaming part alone: %.3fx)." % (
                len(restore["runs"]["local"]), restore["s3_restore_seconds"],
                fmt_s([r["seconds"] for r in restore["runs"]["s3_restore"]]), restore["s3_restore_duration_s"],
                restore["local_command"], restore["local_seconds"], fmt_s([r["seconds"] for r in restore["runs"]["local"]]),
                restore["ratio"], restore["s3_restore_duration_s"] / restore["local_seconds"]),
        ]
    if data["targets"]:
        lines += ["", "| target (issue) | measured | |", "|---|---:|---|"]
        for name, (value, met) in data["targets"].items():
            lines.append("| %s | %s | %s |" % (name, value, "met" if met else "**NOT MET**"))
        lines += miss_notes(data)
    if data.get("notes"):
        lines += [""] + data["notes"]
    lines += ["", "Command: `%s`" % data["command"], "<!-- bench:%s:end -->" % NAME]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--size-gb", type=float, default=1.3, help="database size of the timed rounds (pg_database_size)")
    parser.add_argument("--large-gb", type=float, default=4.0, help="database size of the second memory measurement")
    parser.add_argument("--repeat", "-n", type=int, default=3, help="interleaved rounds (median reported)")
    parser.add_argument("--large-repeat", type=int, default=2, help="runs of plain and s3_backup at --large-gb")
    parser.add_argument("--quick", action="store_true", help="no --large-gb phase, no reference pipelines, no playbook")
    parser.add_argument("--no-playbook", action="store_true")
    parser.add_argument("--no-references", action="store_true", help="skip pg_dump -Fc and pg_dump | zstd")
    parser.add_argument("--no-restore", action="store_true")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--enforce", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--json", type=Path, default=BENCH / "out" / ("%s.json" % NAME), help="raw figures")
    parser.add_argument("--base-dir", type=Path, help="parent of the private temporary directory (default: $TMPDIR)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.size_gb <= 0:
        parser.error("need --repeat >= 1 and --size-gb > 0")
    return args


def main(argv=None):  # noqa: PLR0915 - one linear story: build, rounds, large database, restores, report
    args = parse_args(argv)
    handle_signals()
    has_backup = (MODULES / "s3_backup.py").exists()
    has_restore = (MODULES / "s3_restore.py").exists()
    variants = ["plain", "guide"]
    if has_backup:
        variants += BACKUP_VARIANTS + ([] if args.quick or args.no_playbook else ["playbook"])
    else:
        log("plugins/modules/s3_backup.py not found: baselines only")
    if not (args.quick or args.no_references):
        variants += REFERENCE_VARIANTS
    workdir = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=args.base_dir))
    workdir.chmod(0o711)  # the postgres user must be able to enter its state dir
    bench = Bench(workdir)
    data = {"benchmark": NAME, "size_gb": None, "notes": []}
    try:
        log("starting PostgreSQL 15 and SeaweedFS in %s" % workdir)
        bench.start()
        data["server_version"] = "PostgreSQL " + bench.scalar("SHOW server_version")
        log("generating %.2f GB" % args.size_gb)
        units, load_seconds, load_mb = grow(bench, args.size_gb * 1e9, 0, args.seed)
        size_gb = round(bench.db_size() / 1e9, 3)
        data.update(units=units, load_seconds=round(load_seconds, 1), load_mb=round(load_mb), size_gb=size_gb)
        expected = bench.row_counts(DB)
        data["plain_size"] = dump_size = plain_size(bench)
        log("database %.2f GB, plain dump %.0f MB" % (size_gb, mb(dump_size)))
        if has_backup:
            data["import_rss_mb"] = import_baseline(bench)
        data["loadavg_at_start"] = ", ".join("%.2f" % x for x in os.getloadavg())
        runs = rounds(bench, variants, args.repeat)
        data["runs"] = runs
        data["medians"] = summarize(runs)
        if has_backup and has_restore and not args.no_restore:
            last = runs["s3_backup"][-1]
            local = bench.workdir / "check.dump"
            bench.client.download_file(BUCKET, last["key"], str(local))
            digest = hashlib.sha256(local.read_bytes()).hexdigest()
            local.unlink()
            if last.get("sha256") and digest != last["sha256"]:
                raise BenchError("the object's SHA-256 %s differs from the one s3_backup reported %s" % (digest, last["sha256"]))
            restore = restore_rounds(bench, last["key"], last["format"], last["compression"], repeat=args.repeat,
                                     expected=expected)
            restore["local_seconds"] = median([r["seconds"] for r in restore["runs"]["local"]])
            restore["s3_restore_seconds"] = median([r["seconds"] for r in restore["runs"]["s3_restore"]])
            restore["s3_restore_duration_s"] = median([r["duration_s"] for r in restore["runs"]["s3_restore"]])
            restore["ratio"] = restore["s3_restore_seconds"] / restore["local_seconds"]
            data["restore"] = restore
        if has_backup and not args.quick and args.large_gb > data["size_gb"]:
            bench.clear_bucket()
            log("growing the database to %.2f GB" % args.large_gb)
            _units, seconds, _sent = grow(bench, args.large_gb * 1e9, units, args.seed)
            large = {"size_gb": round(bench.db_size() / 1e9, 3), "load_seconds": round(seconds, 1),
                     "plain_size": plain_size(bench), "repeat": args.large_repeat}
            large["runs"] = rounds(bench, ["plain", "s3_backup"], args.large_repeat)
            large["medians"] = summarize(large["runs"])
            data["large"] = large
    finally:
        bench.stop()
        log("PostgreSQL and SeaweedFS stopped")
        shutil.rmtree(workdir, ignore_errors=True)

    data.update(date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine(),
                repeat=args.repeat,
                command="python bench/bench_backup.py " + shlex.join(argv if argv is not None else sys.argv[1:]))
    data["targets"] = targets(data)
    if not has_backup:
        data["notes"].append("`s3_backup` was not there yet (plugins/modules/s3_backup.py): baselines only.")
    elif not has_restore:
        data["notes"].append("`s3_restore` was not there yet (plugins/modules/s3_restore.py): no restore figures.")
    return publish(args, data, render_section(data), NAME, met=all(met for _value, met in data["targets"].values()))


if __name__ == "__main__":
    run_main(main)
