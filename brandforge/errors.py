"""Provides the error raised by services when a request cannot be carried out as asked."""

from django.core.exceptions import ValidationError


class ApplicationError(ValidationError):
    """A domain rule refused the operation; the message is meant for the person who asked."""
