"""Provides geometry helpers that turn a master image into fixed-size renditions."""

from __future__ import annotations

from PIL import Image


def cover(
    image: Image.Image,
    *,
    width: int,
    height: int,
    focal_point: tuple[float, float] = (0.5, 0.5),
) -> Image.Image:
    """Return ``image`` scaled to cover ``width`` x ``height`` and cropped to exactly that.

    The crop is centred on ``focal_point`` (fractions of the source width and height) as
    far as the image allows: near an edge the crop box is shifted back inside rather than
    padded. Cropping and scaling happen in one LANCZOS resample.
    """
    if width < 1 or height < 1:
        raise ValueError(f"rendition size must be positive, got {width}x{height}")
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = width / scale, height / scale
    left = _clamp(focal_point[0] * image.width - crop_w / 2, 0.0, image.width - crop_w)
    top = _clamp(focal_point[1] * image.height - crop_h / 2, 0.0, image.height - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), Image.Resampling.LANCZOS, box=box)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), max(low, high))
