"""Provides lookup of image providers by name from the ``BRANDFORGE_PROVIDERS`` setting."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from django.conf import settings

from generation.providers.base import ImageProvider

if TYPE_CHECKING:
    import httpx

DEFAULT_PROVIDERS = {"local": "generation.providers.local.LocalImageProvider"}


class UnknownProviderError(KeyError):
    """No provider is configured under the requested name."""

    def __str__(self) -> str:
        # KeyError would repr() the message, wrapping it in quotes.
        return str(self.args[0]) if self.args else ""


def provider_names() -> list[str]:
    return sorted(_configured())


def get_provider(name: str, *, client: httpx.Client | None = None) -> ImageProvider:
    """Return a new instance of the provider configured under ``name``.

    An entry is a dotted class path, or ``{"class": path, "options": {...}}`` whose options
    (API keys, base URLs) are passed to the constructor with the injected ``client``.
    """
    entries = _configured()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "(none)"
        raise UnknownProviderError(f"unknown image provider {name!r}; known providers: {known}")
    entry = entries[name]
    path, options = (
        (entry, {}) if isinstance(entry, str) else (entry["class"], entry.get("options", {}))
    )
    return _provider_class(name, path)(client=client, **options)


def _configured() -> dict[str, str | dict]:
    # Lets the registry work in scripts and tests that run without Django settings.
    if not settings.configured:
        return dict(DEFAULT_PROVIDERS)
    return dict(getattr(settings, "BRANDFORGE_PROVIDERS", DEFAULT_PROVIDERS))


@functools.cache
def _provider_class(name: str, path: str) -> type[ImageProvider]:
    module_path, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_path), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImportError(
            f"BRANDFORGE_PROVIDERS[{name!r}] = {path!r} could not be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, ImageProvider)):
        raise TypeError(f"BRANDFORGE_PROVIDERS[{name!r}] = {path!r} is not an ImageProvider")
    return cls
