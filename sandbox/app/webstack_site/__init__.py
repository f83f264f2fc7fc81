"""The reference Django site of the sandbox; the Celery app loads with Django so @shared_task finds it."""

from .celery import app as celery_app

__all__ = ("celery_app",)
