"""Provides refinement steps; importing the package registers every built-in step."""

from generation.pipeline import watermark

__all__ = ["watermark"]
