"""Provides the generation app's URLs: provider webhooks."""

from django.urls import path

from generation import views

urlpatterns = [
    path("providers/<slug:provider>/", views.provider_webhook, name="provider-webhook"),
]
