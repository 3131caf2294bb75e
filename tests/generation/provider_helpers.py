"""Provides what the adapter tests share: recorded fixtures, a typical request, waiting."""

import dataclasses
import json
import time
from pathlib import Path

from generation.providers.base import GenerationRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"


def load_fixture(provider: str, name: str):
    return json.loads(fixture_bytes(provider, name))


def fixture_bytes(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / f"{name}.json").read_bytes()


def typical_request(*, model: str, width: int = 1024, height: int = 768, **changes):
    request = GenerationRequest(
        prompt="a ceramic mug on an oak desk, brand colours",
        negative_prompt="text, watermark",
        width=width,
        height=height,
        seed=42,
        model=model,
        palette=("#E63946", "#1D3557"),
    )
    return dataclasses.replace(request, **changes)


def wait_for(condition, timeout=15.0):
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")
