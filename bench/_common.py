"""What every benchmark here shares: the machine's description, medians, logging and RESULTS.md sections."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def log(msg):
    print("[%s] %s" % (dt.datetime.now().strftime("%H:%M:%S"), msg), flush=True)


def median(values):
    """The median, None when there is no run (null in the JSON, where NaN would not be valid)."""
    return statistics.median(values) if values else None


def machine():
    """Cores, CPU, memory, OS and the Python and ansible-core versions, for the report's header."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    mem = ""
    with contextlib.suppress(OSError):
        found = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
        mem = "%.0f GiB RAM" % (int(found.group(1)) / 2**20) if found else ""
    debian = ""
    with contextlib.suppress(OSError):
        debian = "Debian " + Path("/etc/debian_version").read_text().strip()
    try:
        from ansible.release import __version__ as ansible_version  # noqa: PLC0415 - only for the report
    except ImportError:
        ansible_version = "?"
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory": mem, "os": "%s, Linux %s" % (debian, platform.release()),
            "python": platform.python_version(), "ansible_core": ansible_version}


def record(section, name, path=BENCH / "RESULTS.md"):
    """Replace the benchmark's section of RESULTS.md (between its bench:NAME markers), or append it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\nWritten by the benchmarks' `--record`.\n"
    pattern = re.compile(r"<!-- bench:%s:start -->.*?<!-- bench:%s:end -->\n?" % (re.escape(name), re.escape(name)), re.DOTALL)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def publish(args, data, section, name, met=True):
    """The end of every benchmark: the run's figures to args.json, its RESULTS.md section printed (and recorded with
    --record); the exit status, 3 when --enforce is given and a target was missed."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print()
    print(section)
    if args.record:
        record(section, name=name)
        log("recorded in %s" % (BENCH / "RESULTS.md"))
    return 3 if getattr(args, "enforce", False) and not met else 0
