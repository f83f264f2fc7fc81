"""Blog comments: the guide's `blog_blogcomment` table (column types as bench/datagen.py loads them)."""

from django.core.validators import validate_email
from django.db import models
from django.utils import timezone


class BlogComment(models.Model):
    post_slug = models.TextField()
    author_name = models.TextField()
    author_email = models.TextField(validators=[validate_email])
    content = models.TextField()
    is_approved = models.BooleanField(default=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return "%s on %s" % (self.author_name, self.post_slug)
