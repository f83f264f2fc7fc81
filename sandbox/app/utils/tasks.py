"""Stand-ins for the guide's periodic tasks (they record their runs and change no data), and ping for tests."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from .models import LighthouseResult, RequestFingerprint
from .taskruns import record_run

FINGERPRINT_RETENTION_DAYS = 90


@shared_task(name="utils.tasks.ping")
def ping():
    with record_run("utils.tasks.ping") as run:
        run.detail = "pong"
    return "pong"


@shared_task(name="utils.tasks.collect_lighthouse_scores")
def collect_lighthouse_scores():
    """Stand-in: a real site would run Lighthouse here; this one notes how many results exist."""
    with record_run("utils.tasks.collect_lighthouse_scores") as run:
        run.detail = "stand-in: %d lighthouse results stored" % LighthouseResult.objects.count()


@shared_task(name="utils.tasks.cleanup_old_fingerprints")
def cleanup_old_fingerprints():
    """Stand-in: counts what a 90-day cleanup would delete, deletes nothing (retention is the collection's job)."""
    with record_run("utils.tasks.cleanup_old_fingerprints") as run:
        cutoff = timezone.now() - dt.timedelta(days=FINGERPRINT_RETENTION_DAYS)
        old = RequestFingerprint.objects.filter(created_at__lt=cutoff).count()
        run.detail = "stand-in: %d fingerprints older than %d days (not deleted)" % (old, FINGERPRINT_RETENTION_DAYS)
