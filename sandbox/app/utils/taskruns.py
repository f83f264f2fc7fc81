"""record_run(): how the stand-in Celery tasks record each run in utils_taskrun."""

import contextlib

from django.utils import timezone

from .models import TaskRun


@contextlib.contextmanager
def record_run(name):
    """A TaskRun row: `running` on entry, then `success`, or `failure` with the error when the body raises."""
    run = TaskRun.objects.create(name=name)
    try:
        yield run
    except Exception as exc:
        run.status, run.detail, run.finished_at = TaskRun.FAILURE, "%s: %s" % (type(exc).__name__, exc), timezone.now()
        run.save(update_fields=["status", "detail", "finished_at"])
        raise
    run.status, run.finished_at = TaskRun.SUCCESS, timezone.now()
    run.save(update_fields=["status", "detail", "finished_at"])
