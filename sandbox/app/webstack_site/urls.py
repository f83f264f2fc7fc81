"""URLs: the home page, /health/, the slow and error endpoints for log tests, and the admin."""

from django.contrib import admin
from django.urls import path
from pages import views as pages_views
from utils import views as utils_views

urlpatterns = [
    path("", pages_views.home, name="home"),
    path("health/", utils_views.health, name="health"),
    path("slow/", utils_views.slow, name="slow"),
    path("error/", utils_views.error, name="error"),
    path("admin/", admin.site.urls),
]
