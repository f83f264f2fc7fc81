# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection handling shared by the Redis modules (private to the collection).

Works with redis-py 4.3 (Debian 12's python3-redis) and later.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()
else:
    REDIS_IMPORT_ERROR = None

REDIS_HINT = "on Debian/Ubuntu install python3-redis, elsewhere pip install redis"

# Server replies that mean the credentials are missing or wrong (Redis 6+ ACL, and older requirepass).
AUTH_REPLIES = ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password", "HELLO must be called")


def redis_argument_spec():
    """The connection options of doc_fragments/redis.py, as an argument spec."""
    return dict(
        login_host=dict(type="str", default="127.0.0.1", aliases=["host"]),
        login_port=dict(type="int", default=6379, aliases=["port"]),
        login_user=dict(type="str", aliases=["username"]),
        login_password=dict(type="str", no_log=True),
        db=dict(type="int", default=0),
        tls=dict(type="bool", default=False),
        ca_cert=dict(type="path", aliases=["ca_certs"]),
        validate_certs=dict(type="bool", default=True),
        connect_timeout=dict(type="float", default=10),
        socket_timeout=dict(type="float", default=30),
    )


def ensure_driver(module):
    """Fail with the package to install when redis-py is missing on the managed host."""
    if redis is None:
        module.fail_json(msg=missing_required_lib("redis", reason=REDIS_HINT), exception=REDIS_IMPORT_ERROR)


def describe_target(params):
    """Where we connect, for messages: never includes the password."""
    where = "Redis at %s:%s (database %s" % (params["login_host"], params["login_port"], params["db"])
    if params.get("login_user"):
        where += ", user %s" % params["login_user"]
    return where + (", TLS)" if params.get("tls") else ")")


def scrub(text, params):
    """The text with the password masked, in case a library echoed it."""
    password = params.get("login_password")
    text = str(text).strip()
    return text.replace(password, "********") if password else text


def connection_kwargs(params):
    """redis.Redis() arguments from the connection options; no retries, so a failure is reported at once."""
    kwargs = dict(
        host=params["login_host"],
        port=params["login_port"],
        db=params["db"],
        socket_connect_timeout=params["connect_timeout"],
        socket_timeout=params["socket_timeout"],
        retry=Retry(NoBackoff(), 0),
    )
    if params.get("login_user"):
        kwargs["username"] = params["login_user"]
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("tls"):
        kwargs["ssl"] = True
        kwargs["ssl_cert_reqs"] = "required" if params["validate_certs"] else "none"
        kwargs["ssl_check_hostname"] = bool(params["validate_certs"])
        if params.get("ca_cert"):
            kwargs["ssl_ca_certs"] = params["ca_cert"]
    return kwargs


def is_auth_error(exc):
    """Whether a redis-py error means missing or wrong credentials."""
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return True
    return isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(AUTH_REPLIES)


def explain(exc, params, doing="talking to"):
    """One sentence for a redis-py error: what failed, where, and what to check. Never the password."""
    target = describe_target(params)
    detail = scrub(exc, params).rstrip(".")
    if is_auth_error(exc):
        if not params.get("login_password"):
            return ("%s requires a password (NOAUTH): set login_password (and login_user for an ACL user). "
                    "Server said: %s" % (target, detail))
        return ("%s refused the credentials (WRONGPASS): check login_password and login_user (the ACL user, or none "
                "for the default user with requirepass). Server said: %s" % (target, detail))
    if isinstance(exc, redis.exceptions.TimeoutError):
        return ("Timed out %s %s (connect_timeout %ss, socket_timeout %ss): %s. Check the host and port, the firewall, "
                "whether the server is overloaded, and tls (TLS to a plain port waits like this)." % (
                    doing, target, params["connect_timeout"], params["socket_timeout"], detail))
    if isinstance(exc, redis.exceptions.ConnectionError):
        hint = "tls, ca_cert and validate_certs" if params.get("tls") else "tls (a TLS-only port needs tls: true)"
        return ("Could not connect to %s: %s. Check that Redis runs and listens there (bind, port, protected-mode), "
                "the firewall, and %s." % (target, detail, hint))
    if str(exc).startswith("NOPERM"):
        user = params.get("login_user") or "default"
        return ("%s: the ACL user %s may not run this command: %s. Check the user's ACL (ACL GETUSER %s)." % (
            target, user, detail, user))
    return "Error %s %s: %s" % (doing, target, detail)


def connect(module):
    """A redis.Redis client that answered PING, or a clear failure."""
    ensure_driver(module)
    params = module.params
    client = redis.Redis(**connection_kwargs(params))
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        module.fail_json(msg=explain(exc, params, "connecting to"))
    return client


def info_int(info, name, default=0):
    """An INFO field as an int (INFO fields are absent on older or trimmed servers)."""
    try:
        return int(info.get(name, default))
    except (TypeError, ValueError):
        return default


def config_value(client, name):
    """CONFIG GET name as a string, or None when the command is refused (managed Redis often renames or blocks it)."""
    try:
        reply = client.config_get(name)
    except redis.exceptions.ResponseError:
        return None
    value = reply.get(name) if isinstance(reply, dict) else None
    return value.decode() if isinstance(value, bytes) else value


def key_text(key):
    """A key for display: keys are bytes and need not be UTF-8."""
    return key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else str(key)
