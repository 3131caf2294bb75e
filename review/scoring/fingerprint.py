"""Provides image fingerprints (perceptual hash and colour histogram) and their distances."""

from __future__ import annotations

from collections.abc import Sequence

import imagehash
import numpy as np
from PIL import Image

from review.scoring.analysis import analysis_rgb
from review.scoring.base import Fingerprint

HASH_BITS = 64
# Hue is what tells a brand's images apart, so it gets the most bins; saturation and value
# fewer, so that the same scene lit a little differently lands in the same bins.
HUE_BINS, SATURATION_BINS, VALUE_BINS = 8, 4, 4
HISTOGRAM_BINS = HUE_BINS * SATURATION_BINS * VALUE_BINS
HISTOGRAM_SIDE = 256


def fingerprint(image: Image.Image) -> Fingerprint:
    """Return the image's 64-bit pHash (hex) and its normalised 8×4×4 HSV histogram.

    Both are computed from fixed-size reductions with Pillow's deterministic resamplers, so
    the same pixels always give the same fingerprint, whatever the image's size.
    """
    return Fingerprint(phash=phash_hex(image), histogram=colour_histogram(image))


def phash_hex(image: Image.Image) -> str:
    return str(imagehash.phash(analysis_rgb(image, HISTOGRAM_SIDE)))


def colour_histogram(image: Image.Image) -> tuple[float, ...]:
    hsv = np.asarray(analysis_rgb(image, HISTOGRAM_SIDE).convert("HSV"), dtype=np.int64)
    hue = hsv[..., 0] * HUE_BINS // 256
    saturation = hsv[..., 1] * SATURATION_BINS // 256
    value = hsv[..., 2] * VALUE_BINS // 256
    index = (hue * SATURATION_BINS + saturation) * VALUE_BINS + value
    counts = np.bincount(index.ravel(), minlength=HISTOGRAM_BINS)
    return tuple(float(share) for share in counts / counts.sum())


def phash_distance(a: str, b: str) -> int:
    """Return the Hamming distance in bits between two hex pHashes (0 = same, 64 = opposite)."""
    return int(imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b))


def histogram_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Return the Hellinger distance between two normalised histograms: 0 same, 1 disjoint."""
    if len(a) != len(b):
        raise ValueError(f"histograms differ in length: {len(a)} and {len(b)} bins")
    overlap = float(np.sqrt(np.asarray(a, dtype=np.float64) * np.asarray(b)).sum())
    return float(np.sqrt(max(0.0, 1.0 - overlap)))
