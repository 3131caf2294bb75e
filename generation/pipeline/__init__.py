"""Provides refinement steps; importing the package registers every built-in step."""

from generation.pipeline import looks, reframe, remote, upscale, watermark

__all__ = ["looks", "reframe", "remote", "upscale", "watermark"]
