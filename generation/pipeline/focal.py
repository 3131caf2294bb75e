"""Provides automatic focal points and subject boxes, found from a saliency map of an image."""

from __future__ import annotations

import numpy as np
from PIL import Image

from brandforge.images import flatten, has_alpha

# The map is computed on a copy this many pixels on its long side: subjects that matter for a
# crop are large, and a small map keeps the analysis to a few milliseconds at any size.
_MAP_SIDE = 64
# How much weaker a corner is than the centre: photographers centre subjects more often than
# not, so ties (two equally striking regions) go to the middle, but a clear subject off-centre
# still wins.
_CENTRE_PRIOR = 0.2
# Share of the saliency mass that ``subject_box`` keeps; the tails it drops are stray details.
_SUBJECT_MASS = 0.9

CENTRE = (0.5, 0.5)


def find_focal_point(image: Image.Image) -> tuple[float, float]:
    """Return the centre of the image's most salient region as (x, y) fractions of its size.

    Salient means unlike the rest of the image: colours far from the image's average colour and
    busy detail (gradient energy), weighed with a mild preference for the centre. An image with
    nothing that stands out (a plain colour) gives the centre.
    """
    weights = _subject_weights(image)
    total = float(weights.sum())
    if total <= 0.0:
        return CENTRE
    height, width = weights.shape
    xs = (np.arange(width, dtype=np.float64) + 0.5) / width
    ys = (np.arange(height, dtype=np.float64) + 0.5) / height
    x = float(weights.sum(axis=0) @ xs) / total
    y = float(weights.sum(axis=1) @ ys) / total
    return x, y


def subject_box(image: Image.Image) -> tuple[float, float, float, float]:
    """Return (left, top, right, bottom) fractions of the box holding most of the saliency.

    The box keeps 90% of the saliency mass on each axis, dropping equal tails at both ends. An
    image with nothing that stands out gives an empty box at the centre, which any crop keeps.
    """
    weights = _subject_weights(image)
    if float(weights.sum()) <= 0.0:
        return (*CENTRE, *CENTRE)
    left, right = _mass_span(weights.sum(axis=0))
    top, bottom = _mass_span(weights.sum(axis=1))
    return left, top, right, bottom


def saliency_map(image: Image.Image) -> np.ndarray:
    """Return a float32 saliency map (larger is more salient) of a small copy of ``image``.

    The map is at most 64 pixels on its long side and keeps the image's aspect ratio.
    """
    small = _small_rgb(image)
    ycc = np.asarray(small.convert("YCbCr"), dtype=np.float32)
    ycc = _box_blur(ycc, 1)
    # Colour contrast: distance from the average colour finds a subject on any plain or
    # softly varying background, whatever its own texture.
    contrast = np.sqrt(((ycc - ycc.mean(axis=(0, 1))) ** 2).sum(axis=2))
    luma = ycc[..., 0]
    gx = np.zeros_like(luma)
    gy = np.zeros_like(luma)
    gx[:, 1:-1] = luma[:, 2:] - luma[:, :-2]
    gy[1:-1, :] = luma[2:, :] - luma[:-2, :]
    # Detail energy: a textured subject on a background of similar average colour.
    energy = _box_blur(np.sqrt(gx * gx + gy * gy), 2)
    saliency = _unit(contrast) + _unit(energy)
    return (saliency * _centre_prior(saliency.shape)).astype(np.float32)


def _subject_weights(image: Image.Image) -> np.ndarray:
    # Only what stands out above the average counts, so a large, mildly busy background does
    # not drag the focal point or stretch the box; squaring favours the clearest region over
    # several middling ones.
    saliency = saliency_map(image)
    return np.maximum(saliency - saliency.mean(), 0.0) ** 2


def _small_rgb(image: Image.Image) -> Image.Image:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if has_alpha(image) else "RGB")
    scale = min(1.0, _MAP_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BOX)
    return flatten(image)


def _box_blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 * radius + 1)² window on both image axes, edges repeated."""
    result = values
    for axis in (0, 1):
        pad = [(0, 0)] * values.ndim
        pad[axis] = (radius + 1, radius)
        padded = np.pad(result, pad, mode="edge")
        sums = np.cumsum(padded, axis=axis, dtype=np.float64)
        window = 2 * radius + 1
        upper = np.take(sums, np.arange(window, sums.shape[axis]), axis=axis)
        lower = np.take(sums, np.arange(0, sums.shape[axis] - window), axis=axis)
        result = ((upper - lower) / window).astype(np.float32)
    return result


def _unit(values: np.ndarray) -> np.ndarray:
    peak = float(values.max())
    # Below half a grey level it is rounding in the averages, not something in the picture.
    return values / peak if peak >= 0.5 else np.zeros_like(values)


def _centre_prior(shape: tuple[int, ...]) -> np.ndarray:
    height, width = shape[:2]
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    # Squared distance from the centre, 0 there and 1 at the corners.
    distance = 2.0 * (xs[None, :] ** 2 + ys[:, None] ** 2)
    return 1.0 - _CENTRE_PRIOR * distance


def _mass_span(profile: np.ndarray) -> tuple[float, float]:
    cumulative = np.cumsum(profile, dtype=np.float64)
    cumulative /= cumulative[-1]
    tail = (1.0 - _SUBJECT_MASS) / 2.0
    start = int(np.searchsorted(cumulative, tail, side="right"))
    end = int(np.searchsorted(cumulative, 1.0 - tail, side="left")) + 1
    return start / len(profile), min(end, len(profile)) / len(profile)
