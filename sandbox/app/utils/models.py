"""Request fingerprints, Lighthouse results (the guide's tables) and the runs of the Celery tasks."""

from django.db import models
from django.utils import timezone


class RequestFingerprint(models.Model):
    fingerprint = models.CharField(max_length=64)  # sha256 hex of ip|user agent|accept-language
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    path = models.TextField()
    method = models.CharField(max_length=8)
    is_suspicious = models.BooleanField(default=False)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return "%s %s %s" % (self.ip_address, self.method, self.path)


class LighthouseResult(models.Model):
    url = models.TextField()
    performance_score = models.IntegerField()
    accessibility_score = models.IntegerField()
    best_practices_score = models.IntegerField()
    seo_score = models.IntegerField()
    raw = models.JSONField(default=dict)  # the Lighthouse report
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return "%s: %d" % (self.url, self.performance_score)


class TaskRun(models.Model):
    """One run of a Celery task (the stand-ins of the guide's beat schedule record theirs here)."""

    RUNNING, SUCCESS, FAILURE = "running", "success", "failure"
    STATUSES = [(RUNNING, "running"), (SUCCESS, "success"), (FAILURE, "failure")]

    name = models.CharField(max_length=200)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=STATUSES, default=RUNNING)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return "%s %s %s" % (self.name, self.status, self.started_at)
