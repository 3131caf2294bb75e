"""Provides the HTTP clients of a worker process: one for provider APIs, one for downloads."""

import functools
import os

import httpx
from django.conf import settings

from brandforge.net import safe_client


@functools.cache
def _clients(pid: int) -> tuple[httpx.Client, httpx.Client]:
    # Keyed by pid: django-q2 forks its workers, and a pooled client must not cross a fork.
    api = httpx.Client(
        timeout=httpx.Timeout(30.0, connect=5.0),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        follow_redirects=False,
        headers={"User-Agent": "BrandForge/0.1"},
    )
    downloads = safe_client(allow=settings.BRANDFORGE_NET_ALLOW)
    return api, downloads


def provider_client() -> httpx.Client:
    """Client for the configured provider APIs (fixed hosts from settings, never from input)."""
    return _clients(os.getpid())[0]


def download_client() -> httpx.Client:
    """SSRF-safe client for URLs a provider handed us (outputs), checked at connect time."""
    return _clients(os.getpid())[1]
