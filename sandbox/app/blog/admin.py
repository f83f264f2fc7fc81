from django.contrib import admin

from .models import BlogComment


@admin.register(BlogComment)
class BlogCommentAdmin(admin.ModelAdmin):
    list_display = ("post_slug", "author_name", "is_approved", "created_at")
    list_filter = ("is_approved",)
    search_fields = ("post_slug", "author_name", "author_email")
    date_hierarchy = "created_at"
    show_full_result_count = False  # the tables are large: no COUNT(*) per page
