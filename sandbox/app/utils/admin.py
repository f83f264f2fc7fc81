from django.contrib import admin

from .models import LighthouseResult, RequestFingerprint, TaskRun


@admin.register(RequestFingerprint)
class RequestFingerprintAdmin(admin.ModelAdmin):
    list_display = ("ip_address", "method", "path", "is_suspicious", "created_at")
    list_filter = ("is_suspicious", "method")
    search_fields = ("path", "fingerprint")
    show_full_result_count = False


@admin.register(LighthouseResult)
class LighthouseResultAdmin(admin.ModelAdmin):
    list_display = ("url", "performance_score", "accessibility_score", "best_practices_score", "seo_score", "created_at")
    show_full_result_count = False


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "started_at", "finished_at")
    list_filter = ("status", "name")
