"""Provides the app config of the project package (shared base classes and helpers)."""

from django.apps import AppConfig


class BrandforgeConfig(AppConfig):
    name = "brandforge"
    verbose_name = "BrandForge"
