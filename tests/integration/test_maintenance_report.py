"""The callback webstack.ops.maintenance_report in real ansible-playbook runs: real check modules against the
machine's disk and the session's PostgreSQL, alerts staged by thresholds the real figures cross, a real failed task.
"""

from __future__ import annotations

import collections
import http.server
import json
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import uuid
import zlib
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import pytest
from ansible_run import run_playbook
from markupsafe import escape

SECRET = "s3cr3t-%s" % uuid.uuid4().hex[:12]  # given to modules and a no_log task: must reach no output file
SEED = "run-20200101T000000Z-5eed.json"  # an earlier run in the history, older than keep allows after two runs
SEED_SIZE = 4242  # its database size, far below any real one

# Plays in this order: a play whose every host failed ends the playbook, so web1's failure comes last.
PLAYBOOK = [
    {"name": "db checks", "hosts": "db1", "gather_facts": False, "tasks": [
        {"name": "Disk space of the database host", "webstack.ops.disk_usage": {"paths": ["/"], "warn_percent": 0.1, "crit_percent": 0.2}},
        {"name": "Database health", "webstack.ops.pg_health": {
            "login_host": "{{ pg.host }}", "login_port": "{{ pg.port }}", "login_user": "{{ pg.user }}",
            "login_password": "{{ pg.password }}", "login_db": "postgres",
            "checks": ["database_size", "connections", "database_stats"]}},
    ]},
    {"name": "web checks", "hosts": "web1", "gather_facts": False, "tasks": [
        {"name": "Disk space of the web host", "webstack.ops.disk_usage": {"paths": ["/"], "warn_percent": 0.1, "crit_percent": 99.9}},
        {"name": "Rotate a <secret>", "ansible.builtin.fail": {"msg": "could not rotate {{ secret }}"}, "no_log": True, "ignore_errors": True},
        {"name": "Database health through a closed port", "webstack.ops.pg_health": {
            "login_host": "127.0.0.1", "login_port": "{{ closed_port }}", "login_user": "postgres",
            "login_password": "{{ secret }}", "login_db": "postgres", "connect_timeout": 2}},
    ]},
]


def write_inputs(base, extra_vars, plays=None):
    """The playbook (PLAYBOOK by default), a two-host local inventory (the venv's Python) and the variables file, in base."""
    playbook = base / "play.yml"
    playbook.write_text(json.dumps(plays or PLAYBOOK))
    inventory = base / "hosts.ini"
    inventory.write_text("".join("%s ansible_connection=local ansible_python_interpreter=%s\n" % (h, sys.executable) for h in ("db1", "web1")))
    variables = base / "vars.json"
    variables.write_text(json.dumps(extra_vars))
    return playbook, ["-i", str(inventory), "-e", "@%s" % variables]


def report_env(out, **extra):
    return dict(ANSIBLE_CALLBACKS_ENABLED="webstack.ops.maintenance_report", WEBSTACK_REPORT_DIR=str(out), **extra)


def load(out):
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def chart(page, host, figure):
    """The SVG trend chart of a figure in a host's part of the page."""
    part = page.split("<h3>%s</h3>" % host, 1)[1].split("<h3>", 1)[0]
    found = re.search(r'<svg class="trend" data-figure="%s".*?</svg>' % re.escape(str(escape(figure))), part, re.S)
    assert found, "no chart of %s for %s" % (figure, host)
    return found.group(0)


def polyline_points(svg):
    found = re.search(r'<polyline points="([^"]*)"', svg)
    return found.group(1).split() if found else []


@pytest.fixture(scope="module")
def two_runs(pg_server, tmp_path_factory):
    """A run, then the same run under --check, keeping 2 runs of history that starts with an old seeded run."""
    base = tmp_path_factory.mktemp("report")
    out = base / "reports"
    (out / "history").mkdir(parents=True)
    (out / "history" / SEED).write_text(json.dumps({"run_id": "20200101T000000Z-5eed", "started": "2020-01-01T00:00:00Z", "hosts": {
        "db1": {"figures": {"database_size:postgres": {"label": "database size postgres", "value": SEED_SIZE, "unit": "bytes"}}}}}))
    env = report_env(out, WEBSTACK_REPORT_KEEP="2")
    pg = dict(host=pg_server.host, port=pg_server.port, user=pg_server.user, password=pg_server.password)
    with socket_bound() as closed_port:
        playbook, args = write_inputs(base, dict(pg=pg, secret=SECRET, closed_port=closed_port))
        disk_before = disk_used_percent("/")
        first = run_playbook(playbook, *args, json_output=False, env=env)
        disk_range = sorted([disk_before, disk_used_percent("/")])
        first_report, first_page = load(out)
        after_first = sorted(p.name for p in (out / "history").iterdir())
        second = run_playbook(playbook, *args, "--check", json_output=False, env=env)
    with psycopg2.connect(dbname="postgres", **pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_database_size('postgres')")
        size = cur.fetchone()[0]
    return SimpleNamespace(out=out, first=first, first_report=first_report, first_page=first_page, after_first=after_first,
                           second=second, database_size=size, disk_range=disk_range, password=pg_server.password)


def disk_used_percent(path):
    """As df counts it: used in percent of used plus available (other people's work moves it while a run lasts)."""
    disk = shutil.disk_usage(path)
    return 100 * disk.used / (disk.used + disk.free)


class socket_bound:
    """A loopback port held (bound, not listening) while the block runs: connecting to it is refused."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


def test_report_json_has_every_check_per_host_with_alerts_figures_and_failed_tasks(two_runs):
    run, report = two_runs.first, two_runs.first_report
    assert run.rc == 2, run.output  # web1's last task failed
    assert "maintenance report: %s" % (two_runs.out / "report.html") in run.stderr
    assert report["playbook"] == "play.yml" and report["check_mode"] is False and report["level"] == "crit"

    db1, web1 = report["hosts"]["db1"], report["hosts"]["web1"]
    assert {c: v["level"] for c, v in db1["checks"].items()} == {"disk_usage": "crit", "pg_health": "ok"}
    assert {c: v["level"] for c, v in web1["checks"].items()} == {"disk_usage": "warn", "tasks": "warn", "pg_health": "crit"}
    assert (db1["level"], web1["level"]) == ("crit", "crit")

    space = next(a for a in db1["alerts"] if a["check"] == "disk_space")
    assert space["level"] == "crit" and space["threshold"] == 0.2 and space["message"].startswith("space on / is")
    assert [a["level"] for a in web1["alerts"]] == sorted((a["level"] for a in web1["alerts"]), key=["crit", "warn"].index)

    failed = {f["task"]: f for f in web1["failed_tasks"]}
    closed = failed["Database health through a closed port"]
    assert closed["ignored"] is False and closed["module"] == "webstack.ops.pg_health"
    assert closed["message"].startswith("task Database health through a closed port failed: Could not connect to PostgreSQL")
    assert any(a["level"] == "crit" and a["message"] == closed["message"] for a in web1["alerts"])
    hidden = failed["Rotate a <secret>"]
    assert hidden["ignored"] is True and hidden["message"].endswith("its output is hidden by no_log")

    size = db1["figures"]["database_size:postgres"]
    assert size["unit"] == "bytes" and abs(size["value"] - two_runs.database_size) < 1024 * 1024
    assert 0 < db1["figures"]["pg_connections_percent"]["value"] < 100
    low, high = two_runs.disk_range
    assert low - 0.2 <= web1["figures"]["disk_used_percent:/"]["value"] <= high + 0.2
    assert web1["stats"]["failures"] == 1 and web1["stats"]["ignored"] == 1


def test_html_page_is_self_contained_with_the_board_the_alerts_and_trend_charts(two_runs):
    page = two_runs.first_page
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"\b(src|href)\s*=|<script|<link|@import|url\(|https?://", page, re.I)
    board = page.split('<table class="board">', 1)[1].split("</table>", 1)[0]
    for name in ("db1", "web1", "disk_usage", "pg_health", "tasks"):
        assert ">%s<" % name in board or " %s<" % name in board, name
    assert board.count('class="cell crit"') == 2 and board.count('class="cell warn"') == 2 and board.count('class="cell ok"') == 1
    for host in two_runs.first_report["hosts"].values():
        for alert in host["alerts"]:
            assert str(escape(alert["message"])) in page
    assert "Rotate a &lt;secret&gt;" in page and "Rotate a <secret>" not in page  # escaped, not markup

    # The seeded earlier run and this one: two points for db1's database size; one (no line yet) for web1's disk.
    seeded = chart(page, "db1", "database_size:postgres")
    assert len(polyline_points(seeded)) == 2 and "2020-01-01T00:00:00Z: 4.1 KiB" in seeded
    assert polyline_points(chart(page, "web1", "disk_used_percent:/")) == []


def test_history_grows_run_by_run_keeps_the_last_runs_and_check_mode_is_marked(two_runs):
    run = two_runs.second
    report, page = load(two_runs.out)
    assert run.rc == 2, run.output
    assert report["check_mode"] is True and "CHECK MODE" in page
    assert report["hosts"]["db1"]["checks"]["disk_usage"]["level"] == "crit"  # the checks read under --check too

    assert two_runs.after_first == [SEED, "run-%s.json" % two_runs.first_report["run_id"]]
    history = sorted(p.name for p in (two_runs.out / "history").iterdir())
    assert history == ["run-%s.json" % two_runs.first_report["run_id"], "run-%s.json" % report["run_id"]]  # the seed pruned
    assert json.loads((two_runs.out / "history" / history[-1]).read_text()) == report

    disk = chart(page, "web1", "disk_used_percent:/")
    assert len(polyline_points(disk)) == 2
    size = chart(page, "db1", "database_size:postgres")
    assert len(polyline_points(size)) == 2 and "2020-01-01" not in size


def test_no_secret_reaches_any_output_file(two_runs):
    files = [two_runs.out / "report.json", two_runs.out / "report.html", *(two_runs.out / "history").iterdir()]
    assert len(files) == 4
    for path in files:
        text = path.read_text()
        assert SECRET not in text and two_runs.password not in text, path
        assert "login_password" not in text and "module_args" not in text, path


class Receiver(http.server.BaseHTTPRequestHandler):
    posts: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_alerts_go_to_a_webhook_and_an_unreachable_webhook_only_warns(tmp_path, free_port):
    warn_only = [{"name": "web checks", "hosts": "web1", "gather_facts": False, "tasks": [PLAYBOOK[1]["tasks"][0]]}]
    playbook, args = write_inputs(tmp_path, {}, warn_only)
    token = "/services/T000/B000/%s" % uuid.uuid4().hex
    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d%s" % (server.server_port, token)
        posted = run_playbook(playbook, *args, json_output=False, env=report_env(
            tmp_path / "posted", WEBSTACK_REPORT_WEBHOOK=url, WEBSTACK_REPORT_WEBHOOK_MIN_LEVEL="warn", WEBSTACK_REPORT_TITLE="Daily"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert posted.rc == 0, posted.output
    assert len(Receiver.posts) == 1
    path, content_type, body = Receiver.posts[0]
    message = json.loads(body)
    assert path == token and content_type == "application/json"
    warnings = json.loads((tmp_path / "posted" / "report.json").read_text())["counts"]["warn"]
    assert warnings >= 1 and message["text"].startswith("Daily: 0 critical, %d warning on 1 host(s), play.yml" % warnings)
    assert "*WARN* web1 / disk_space: space on / is" in message["text"] and message["blocks"][0]["type"] == "header"

    unreachable = "http://127.0.0.1:%d%s" % (free_port, token)
    refused = run_playbook(playbook, *args, json_output=False, env=report_env(
        tmp_path / "refused", WEBSTACK_REPORT_WEBHOOK=unreachable, WEBSTACK_REPORT_WEBHOOK_MIN_LEVEL="warn"))
    assert refused.rc == 0, refused.output
    assert "posting the alerts to the webhook failed" in refused.stderr and "Connection refused" in refused.stderr
    assert (tmp_path / "refused" / "report.html").exists()
    for run, out in ((posted, tmp_path / "posted"), (refused, tmp_path / "refused")):
        assert token not in run.output
        assert all(token not in path.read_text() for path in [*out.iterdir(), *(out / "history").iterdir()] if path.is_file())


# --- the screenshot ------------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BOARD_COLOURS = {"ok": (0x1E, 0x8E, 0x3E), "warn": (0xF2, 0x99, 0x00), "crit": (0xD9, 0x30, 0x25)}


def png_colours(path):
    """Counter of the (r, g, b) pixels of an 8-bit, non-interlaced RGB or RGBA PNG, decoded with zlib alone."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _compression, _filter, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unexpected PNG format"
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    previous = bytearray(stride)
    counts = collections.Counter()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        unfilter(kind, line, previous, bpp)
        counts.update(zip(line[0::bpp], line[1::bpp], line[2::bpp], strict=True))
        previous = line
    return (width, height), counts


def unfilter(kind, line, previous, bpp):
    """Undo a PNG row filter in place (None, Sub, Up, Average, Paeth)."""
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line[:] = bytes((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
    elif kind == 3:
        for i in range(len(line)):
            line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + previous[i]) // 2) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            a, b, c = (line[i - bpp] if i >= bpp else 0), previous[i], (previous[i - bpp] if i >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF


def screenshot(page: Path, png: Path, profile: Path):
    """Headless Chromium, nothing but the file: no first-run, sync, component or background network traffic."""
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=%s" % profile,
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-default-apps", "--screenshot=%s" % png, "--window-size=1280,900", page.as_uri()],
                   check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: scripts/bootstrap.sh installs it (Debian package chromium)")
def test_a_browser_shows_the_board_in_its_colours(two_runs, tmp_path):
    png = tmp_path / "report.png"
    screenshot(two_runs.out / "report.html", png, tmp_path / "profile")
    size, counts = png_colours(png)
    assert size == (1280, 900)
    assert len(counts) > 50  # text, tables and charts, not a blank page

    def near(colour):
        return sum(n for pixel, n in counts.items() if all(abs(p - c) <= 8 for p, c in zip(pixel, colour, strict=True)))

    # Board cells are about 110 x 33 px: 2 crit, 2 warn and 1 ok cells, plus the level pills.
    found = {level: near(colour) for level, colour in BOARD_COLOURS.items()}
    assert found["crit"] > 2 * 2500 and found["warn"] > 2 * 2500 and found["ok"] > 2500, found
