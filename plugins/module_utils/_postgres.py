# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection handling shared by the PostgreSQL modules (private to the collection)."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import psycopg2
    from psycopg2 import sql
except ImportError:
    psycopg2 = None
    sql = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()
else:
    PSYCOPG2_IMPORT_ERROR = None

PSYCOPG2_HINT = "on Debian/Ubuntu install python3-psycopg2, elsewhere pip install psycopg2-binary"


def postgres_argument_spec():
    """The connection options of doc_fragments/postgres.py, as an argument spec."""
    return dict(
        login_host=dict(type="str", default="127.0.0.1", aliases=["host"]),
        login_port=dict(type="int", default=5432, aliases=["port"]),
        login_user=dict(type="str", default="postgres", aliases=["login"]),
        login_password=dict(type="str", default="", no_log=True),
        login_unix_socket=dict(type="str", default="", aliases=["unix_socket"]),
        login_db=dict(type="str", default="postgres", aliases=["db", "database"]),
        connect_timeout=dict(type="int", default=10),
        ssl_mode=dict(
            type="str",
            default="prefer",
            choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"],
        ),
        ca_cert=dict(type="path", aliases=["ssl_rootcert"]),
    )


def ensure_driver(module):
    """Fail with the package to install when psycopg2 is missing on the managed host."""
    if psycopg2 is None:
        module.fail_json(msg=missing_required_lib("psycopg2", reason=PSYCOPG2_HINT), exception=PSYCOPG2_IMPORT_ERROR)


def describe_target(params):
    """Where we connect, for error messages: never includes the password."""
    where = params["login_unix_socket"] or "%s:%s" % (params["login_host"], params["login_port"])
    return "PostgreSQL at %s (database %s, user %s)" % (where, params["login_db"], params["login_user"])


def scrub(text, params):
    """Remove the password from a driver message, in case a DSN was echoed."""
    password = params.get("login_password")
    text = str(text).strip()
    return text.replace(password, "********") if password else text


def connection_kwargs(params, dbname=None):
    """psycopg2.connect() arguments from the login options, to login_db or to another database."""
    kwargs = dict(
        host=params["login_unix_socket"] or params["login_host"],
        port=params["login_port"],
        user=params["login_user"],
        dbname=dbname or params["login_db"],
        connect_timeout=params["connect_timeout"],
        sslmode=params["ssl_mode"],
        application_name="webstack.ops",
    )
    if params["login_password"]:
        kwargs["password"] = params["login_password"]
    if params.get("ca_cert"):
        kwargs["sslrootcert"] = params["ca_cert"]
    return kwargs


def connect(module, autocommit=True):
    """Open a psycopg2 connection from the module's login options or fail clearly."""
    ensure_driver(module)
    params = module.params
    try:
        conn = psycopg2.connect(**connection_kwargs(params))
    except psycopg2.Error as exc:
        module.fail_json(
            msg="Could not connect to %s: %s. Check that the server is running and reachable, "
            "and the login options (user, password, database)." % (describe_target(params), scrub(exc, params))
        )
    conn.autocommit = autocommit
    return conn


def qualified_name(schema, table):
    """A schema-qualified table name as a safely quoted SQL identifier."""
    return sql.Identifier(schema, table)


MAX_TIMEOUT = 2147483  # seconds: PostgreSQL's timeouts are milliseconds in an int


def bad_timeouts(params, names=("lock_timeout", "statement_timeout")):
    """What is wrong with the timeout options (seconds, 0 for none), or None."""
    for name in names:
        if params[name] != 0 and not 0.001 <= params[name] <= MAX_TIMEOUT:
            return "%s must be 0 (no limit) or between 0.001 and %d seconds, got %s" % (name, MAX_TIMEOUT, params[name])
    return None


def connected(conn):
    """Whether the session still answers (after an error: a timeout, or the server going away)."""
    if conn.closed:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    except psycopg2.Error:
        return False
    return True


def set_timeouts(cursor, lock_timeout_ms, statement_timeout_ms):
    """Session timeouts, so a busy table fails fast instead of hanging the run."""
    cursor.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                   ("%dms" % lock_timeout_ms, "%dms" % statement_timeout_ms))


def database_size(cursor):
    """Size of the current database in bytes and in PostgreSQL's pretty form."""
    cursor.execute("SELECT pg_database_size(current_database()), pg_size_pretty(pg_database_size(current_database()))")
    size, pretty = cursor.fetchone()
    return int(size), pretty
