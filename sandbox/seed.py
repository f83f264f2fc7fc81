#!/usr/bin/env python
"""Give the sandbox's database the guide's tables, then a week of traffic so the weekly job has work.

  seed.py [--state-dir DIR] [--database NAME]

First run: creates the database and fills pages_pagevisit, utils_requestfingerprint,
utils_lighthouseresult and blog_blogcomment with realistic rows (bench/datagen.py).
Every run: new visits and fingerprints arrive, some old ones are deleted and
comments get moderated, leaving dead tuples and changed rows behind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))

import datagen  # noqa: E402

ROWS = {"pages_pagevisit": 60000, "utils_requestfingerprint": 40000, "utils_lighthouseresult": 1500, "blog_blogcomment": 3000}
WEEK = [
    "DELETE FROM pages_pagevisit WHERE id IN (SELECT id FROM pages_pagevisit TABLESAMPLE BERNOULLI (12))",
    "DELETE FROM utils_requestfingerprint WHERE id IN (SELECT id FROM utils_requestfingerprint TABLESAMPLE BERNOULLI (8))",
    "UPDATE blog_blogcomment SET is_approved = NOT is_approved WHERE id IN "
    "(SELECT id FROM blog_blogcomment TABLESAMPLE BERNOULLI (20))",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("WEBSTACK_SANDBOX_STATE") or HERE / "state"))
    parser.add_argument("--database", default="webstack")
    args = parser.parse_args(argv)
    state_file = args.state_dir / "state.json"
    if not state_file.exists():
        parser.error("%s does not exist: start the sandbox first (sandbox/stackctl up postgres)" % state_file)
    state = json.loads(state_file.read_text())
    # The whole stack's postgres_db container, or a bare PostgreSQL when only that runs.
    pg = state["sandbox"]["postgres"] if "sandbox" in state else state["postgres"]
    login = dict(host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"])

    admin = psycopg2.connect(dbname="postgres", **login)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.database,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(args.database)))
    admin.close()

    conn = psycopg2.connect(dbname=args.database, **login)
    conn.autocommit = True
    with conn.cursor() as cur:
        # The app's migrations may have created the tables already (with their own indexes): fill them while empty.
        cur.execute("SELECT to_regclass('public.pages_pagevisit')")
        if cur.fetchone()[0] is None:
            datagen.create_tables(conn)
        cur.execute("SELECT EXISTS (SELECT 1 FROM pages_pagevisit)")
        if not cur.fetchone()[0]:
            datagen.generate(conn, ROWS)
            cur.execute("VACUUM ANALYZE")
            print("seed: %s filled: %s" % (args.database, ", ".join("%s %d rows" % item for item in ROWS.items())))
        week = random.randrange(1 << 30)
        datagen.fill(conn, "pages_pagevisit", 6000, seed=week)
        datagen.fill(conn, "utils_requestfingerprint", 3000, seed=week)
        for statement in WEEK:
            cur.execute(statement)
        cur.execute("SELECT pg_stat_force_next_flush()")
    conn.close()
    print("seed: a week of traffic on %s (visits and fingerprints added and deleted, comments moderated)" % args.database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
