"""Page visits: the guide's `pages_pagevisit` table (column types as bench/datagen.py loads them)."""

from django.db import models
from django.utils import timezone


class PageVisit(models.Model):
    path = models.TextField()
    user_agent = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    referer = models.TextField(null=True, blank=True)  # NULL when absent, as in the seeded rows
    session_key = models.CharField(max_length=40, null=True, blank=True)
    response_ms = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return "%s at %s" % (self.path, self.created_at)
