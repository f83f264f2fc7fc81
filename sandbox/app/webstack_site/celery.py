"""Celery app `webstack_site.celery:app`: Redis broker, settings from Django (CELERY_*), tasks from the apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webstack_site.settings")

app = Celery("webstack_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
