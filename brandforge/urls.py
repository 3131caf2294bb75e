"""Provides the URL map: admin, provider webhooks, health check, staff-only local media."""

from django.contrib import admin
from django.urls import include, path

from brandforge import views

admin.site.site_header = "BrandForge"
admin.site.site_title = "BrandForge"
admin.site.index_title = "Brand asset factory"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("media/<path:name>", views.media, name="media"),
    path("admin/", admin.site.urls),
    path("webhooks/", include("generation.urls")),
]
