from django.contrib import admin

from .models import PageVisit


@admin.register(PageVisit)
class PageVisitAdmin(admin.ModelAdmin):
    list_display = ("path", "ip_address", "response_ms", "created_at")
    search_fields = ("path",)
    show_full_result_count = False
