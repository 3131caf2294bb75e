"""Provides the app config of the assets app."""

from django.apps import AppConfig


class AssetsConfig(AppConfig):
    name = "assets"
