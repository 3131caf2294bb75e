"""Provides image providers: adapters that turn a generation request into image bytes."""
