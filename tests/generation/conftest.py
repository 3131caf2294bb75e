"""Provides the fake provider on loopback for the engine's protocol tests."""

import pytest

from generation import http
from generation.fakeprovider import FakeProvider


@pytest.fixture
def fake(settings, live_server):
    """The fake provider on loopback, the adapters pointed at it, webhooks to the live server."""
    with FakeProvider(latency=0.3, image_size=96) as provider:
        host_port = provider.base_url.removeprefix("http://")
        providers = settings.BRANDFORGE_PROVIDERS
        settings.BRANDFORGE_PROVIDERS = {
            **providers,
            "fal": {
                "class": providers["fal"]["class"],
                "options": {
                    "api_key": "fake-key",
                    "queue_url": provider.fal_url,
                    "jwks": provider.jwks(),
                    "user_id": provider.fal_user_id,
                },
            },
            "replicate": {
                "class": providers["replicate"]["class"],
                "options": {
                    "api_token": "fake-token",
                    "base_url": f"{provider.base_url}/replicate",
                    "webhook_secret": provider.replicate_secret,
                },
            },
        }
        settings.BRANDFORGE_NET_ALLOW = [host_port]
        settings.BRANDFORGE_PUBLIC_URL = live_server.url
        http._clients.cache_clear()  # the download allow-list is read when a client is made
        yield provider
    http._clients.cache_clear()
