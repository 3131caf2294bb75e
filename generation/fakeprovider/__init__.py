"""Provides a protocol-faithful fake of the fal, Replicate and OpenAI image APIs."""

from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.server import FakeProvider

__all__ = ["FakeConfig", "FakeProvider"]
