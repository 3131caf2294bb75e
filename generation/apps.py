"""Provides the app config of the generation app."""

from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
