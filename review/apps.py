"""Provides the app config of the review app."""

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
