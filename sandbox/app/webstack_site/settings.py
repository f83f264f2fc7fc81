"""Settings of the reference site: everything that varies comes from environment variables.

Required: DJANGO_SECRET_KEY. Optional (default): POSTGRES_HOST (127.0.0.1), POSTGRES_PORT (5432),
POSTGRES_DB (webstack), POSTGRES_USER (webstack), POSTGRES_PASSWORD (empty), REDIS_URL
(redis://127.0.0.1:6379/1, the cache), CELERY_BROKER_URL (redis://127.0.0.1:6379/0), DJANGO_DEBUG (off),
DJANGO_ALLOWED_HOSTS (127.0.0.1,localhost), SLOW_REQUEST_MS (1000), LOG_DIR (unset: logs to stderr only;
set: also LOG_DIR/django.log), CACHE_KEY_PREFIX (webstack), HEALTH_FORCE_FAIL_FILE (unset),
STATIC_ROOT (<app>/staticfiles).
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    """The variable's value, `default` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value if value else default


def env_bool(name, default=False):
    value = env(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    value = env(name)
    try:
        return int(value) if value is not None else default
    except ValueError as exc:
        raise ImproperlyConfigured("%s must be an integer, got %r" % (name, value)) from exc


SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set: the site refuses to start without a secret key")

DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = [host.strip() for host in env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if host.strip()]
# Behind nginx (TLS ends there; gunicorn listens on loopback only): trust its X-Forwarded-Proto, and let the admin's
# forms post from the allowed hosts over https and http.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = ["%s://%s" % (scheme, "*" + host if host.startswith(".") else host)
                        for host in ALLOWED_HOSTS if host != "*" for scheme in ("https", "http")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "blog",
    "pages",
    "utils",
]

MIDDLEWARE = [
    "utils.middleware.RequestLogMiddleware",  # first: its duration covers everything below
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "utils.middleware.FingerprintMiddleware",
]

ROOT_URLCONF = "webstack_site.urls"
WSGI_APPLICATION = "webstack_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env("POSTGRES_HOST", "127.0.0.1"),
        "PORT": env("POSTGRES_PORT", "5432"),
        "NAME": env("POSTGRES_DB", "webstack"),
        "USER": env("POSTGRES_USER", "webstack"),
        "PASSWORD": env("POSTGRES_PASSWORD", ""),
        "OPTIONS": {"connect_timeout": 5},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's own Redis cache backend; short socket timeouts so /health/ answers 503 quickly when Redis is gone.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("REDIS_URL", "redis://127.0.0.1:6379/1"),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "webstack"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env("STATIC_ROOT", str(BASE_DIR / "staticfiles"))

# The app's own knobs.
SLOW_REQUEST_MS = env_int("SLOW_REQUEST_MS", 1000)
HEALTH_FORCE_FAIL_FILE = env("HEALTH_FORCE_FAIL_FILE")

# Celery: Redis broker, no result backend (tasks record their runs in utils_taskrun), events on for Flower.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    # The guide's beat schedule; the tasks are stand-ins that record their runs.
    "collect-lighthouse-scores": {"task": "utils.tasks.collect_lighthouse_scores", "schedule": 24 * 3600.0},
    "cleanup-old-fingerprints": {"task": "utils.tasks.cleanup_old_fingerprints", "schedule": 24 * 3600.0},
    "publish-scheduled-posts": {"task": "blog.tasks.publish_scheduled_posts", "schedule": 5 * 60.0},
}

# Logging: one format everywhere ("<time> <LEVEL> <logger> <message>"), so `grep ERROR` and
# `grep 'slow request'` work on docker logs and on LOG_DIR/django.log alike.
LOG_DIR = env("LOG_DIR")
LOG_HANDLERS = ["console"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": LOG_HANDLERS, "level": "INFO"},
    "loggers": {
        # Replace Django's defaults (console only with DEBUG, mail_admins): everything goes to the root handlers,
        # including django.request's ERROR lines with their tracebacks.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "webstack": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
if LOG_DIR:
    os.makedirs(LOG_DIR, exist_ok=True)
    # WatchedFileHandler reopens the file when logrotate moves it away.
    LOGGING["handlers"]["file"] = {"class": "logging.handlers.WatchedFileHandler", "formatter": "plain",
                                   "filename": os.path.join(LOG_DIR, "django.log")}
    LOG_HANDLERS.append("file")
