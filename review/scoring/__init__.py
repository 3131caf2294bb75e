"""Provides automated scorers; importing the package registers every built-in scorer."""

from review.scoring import (
    aesthetic,
    aspect,
    brand_consistency,
    colourfulness,
    duplicate,
    exposure,
    nsfw,
    palette,
    resolution,
    sharpness,
)

__all__ = [
    "aesthetic",
    "aspect",
    "brand_consistency",
    "colourfulness",
    "duplicate",
    "exposure",
    "nsfw",
    "palette",
    "resolution",
    "sharpness",
]
