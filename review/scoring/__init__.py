"""Provides automated scorers; importing the package registers every built-in scorer."""

from review.scoring import aspect, resolution, sharpness

__all__ = ["aspect", "resolution", "sharpness"]
