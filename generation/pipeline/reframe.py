"""Provides the reframe step and ``reframe_to``: a new aspect ratio by focal crop or extension."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from PIL import Image, ImageFilter

from brandforge.images import cover, flatten
from generation.pipeline.base import ParamSpec, Step, StepContext
from generation.pipeline.focal import find_focal_point, subject_box
from generation.pipeline.registry import register

FILLS = ("crop", "blur", "mirror", "auto")
FOCUS_MODES = ("auto", "manual")
# focus_x / focus_y value meaning "take the asset's own focal point from the context".
FROM_CONTEXT = -1.0

_ASPECT = re.compile(r"\s*(\d+)\s*:\s*(\d+)\s*")
# Beyond this an extended canvas is mostly backdrop, and its size grows without bound.
_MAX_RATIO = 10
# A subject may lose this share of the crop window's length before fill=auto extends instead:
# the subject box is an estimate, and a sliver of it is not worth a backdrop.
_CUT_TOLERANCE = 0.02
# The blurred backdrop is built this small (long side) and scaled up: its blur is then a fixed
# share of the frame whatever the resolution, and it costs almost nothing.
_BACKDROP_SIDE = 48
_BACKDROP_BLUR = 2.0
# Darkened a little, so the untouched picture reads as the subject and the backdrop as fill.
_BACKDROP_LEVELS = [round(level * 0.8) for level in range(256)] * 3


def parse_aspect(text: str) -> tuple[int, int]:
    """Return (width, height) of an aspect ratio written ``"W:H"``, e.g. ``"9:16"``.

    Raise ``ValueError`` with a message that completes "'aspect' ..." for anything else.
    """
    match = _ASPECT.fullmatch(text)
    width, height = (int(match[1]), int(match[2])) if match else (0, 0)
    if width < 1 or height < 1:
        raise ValueError(f"must be W:H with two positive whole numbers, e.g. 9:16 (got {text!r})")
    if max(width, height) > _MAX_RATIO * min(width, height):
        raise ValueError(f"must be between 1:{_MAX_RATIO} and {_MAX_RATIO}:1 (got {text!r})")
    return width, height


def reframe_to(
    image: Image.Image,
    *,
    width: int,
    height: int,
    focal_point: tuple[float, float] = (0.5, 0.5),
    fill: str = "auto",
) -> Image.Image:
    """Return an RGB image of exactly ``width`` x ``height`` showing ``image`` reframed.

    ``fill`` says how the aspect ratio changes:

    - ``"crop"``: scale to cover the frame and crop around ``focal_point`` (fractions of the
      source size), shifted back inside the image near its edges;
    - ``"blur"``: scale to fit inside the frame, whole, over a blurred and slightly darkened
      copy of the image that covers the frame;
    - ``"mirror"``: scale to fit inside the frame, the free bands filled by mirroring the edges;
    - ``"auto"``: crop, moving the window as little as needed to keep the subject (see
      ``focal.subject_box``) whole; when the subject is wider than the window, blur instead.

    Cropping and scaling happen in one LANCZOS resample, and none at all when no scaling is
    needed.
    """
    if width < 1 or height < 1:
        raise ValueError(f"reframe size must be positive, got {width}x{height}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    base = flatten(image)
    subject = subject_box(base) if fill == "auto" else None
    mode, focus = _plan(base.size, width / height, focal_point, fill, subject)
    return _render(base, (width, height), mode, focus)


@register
class ReframeStep(Step):
    """Change the aspect ratio of the image, keeping its resolution.

    A crop keeps the full height (or width) of the source and cuts the other side around the
    focal point; an extension keeps every source pixel, unscaled, in the middle of a larger
    canvas. The focal point is found automatically (``focus="auto"``) or set by hand
    (``focus="manual"``): ``focus_x`` / ``focus_y`` in 0..1, or -1 for the asset's own focal
    point, which the engine passes in the context (the centre unless someone set it).
    """

    name = "reframe"
    version = 1
    params = {
        "aspect": ParamSpec(str, "1:1", help="Target aspect ratio W:H, e.g. 1:1, 4:5, 9:16, 16:9"),
        "focus": ParamSpec(
            str,
            "auto",
            choices=FOCUS_MODES,
            help="Focal point: found in the image (auto), or focus_x / focus_y (manual)",
        ),
        "focus_x": ParamSpec(
            float,
            FROM_CONTEXT,
            minimum=-1.0,
            maximum=1.0,
            help="Manual focus, share of the width from the left; -1: the asset's focal point",
        ),
        "focus_y": ParamSpec(
            float,
            FROM_CONTEXT,
            minimum=-1.0,
            maximum=1.0,
            help="Manual focus, share of the height from the top; -1: the asset's focal point",
        ),
        "fill": ParamSpec(
            str,
            "auto",
            choices=FILLS,
            help="crop; extend over a blurred or mirrored backdrop; auto: crop unless that "
            "would cut the subject, then blur",
        ),
    }

    @classmethod
    def validate_params(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        params = super().validate_params(raw)
        try:
            parse_aspect(params["aspect"])
        except ValueError as exc:
            raise ValidationError(f"{cls.name}: 'aspect' {exc}", code="invalid_param") from exc
        for key in ("focus_x", "focus_y"):
            value = params[key]
            if value == FROM_CONTEXT:
                continue
            if value < 0.0:
                raise ValidationError(
                    f"{cls.name}: {key!r} must be between 0 and 1, or -1 for the asset's "
                    "focal point",
                    code="invalid_param",
                )
            # Silently ignoring a hand-set value would leave the editor wondering why.
            if params["focus"] != "manual":
                raise ValidationError(
                    f"{cls.name}: {key!r} is only used with focus 'manual'",
                    code="invalid_param",
                )
        return params

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        aspect = parse_aspect(params["aspect"])
        if params["focus"] == "auto":
            focal_point = find_focal_point(base)
        else:
            focal_point = (
                ctx.focal_point[0] if params["focus_x"] == FROM_CONTEXT else params["focus_x"],
                ctx.focal_point[1] if params["focus_y"] == FROM_CONTEXT else params["focus_y"],
            )
        fill = params["fill"]
        subject = subject_box(base) if fill == "auto" else None
        mode, focus = _plan(base.size, aspect[0] / aspect[1], focal_point, fill, subject)
        size = _natural_size(base.size, aspect, extend=mode != "crop")
        return _render(base, size, mode, focus)


def _plan(
    size: tuple[int, int],
    ratio: float,
    focal_point: tuple[float, float],
    fill: str,
    subject: tuple[float, float, float, float] | None,
) -> tuple[str, tuple[float, float]]:
    """Return the fill to use (crop, blur or mirror) and the focal point to crop around."""
    if fill not in ("crop", "auto"):
        return fill, focal_point
    window = (min(size[0], size[1] * ratio), min(size[1], size[0] / ratio))
    spans = (
        (None, None) if subject is None else ((subject[0], subject[2]), (subject[1], subject[3]))
    )
    centres = [
        _window_centre(size[axis], window[axis], focal_point[axis], spans[axis]) for axis in (0, 1)
    ]
    if centres[0] is None or centres[1] is None:
        return "blur", focal_point
    return "crop", (centres[0], centres[1])


def _window_centre(
    length: int, window: float, centre: float, span: tuple[float, float] | None
) -> float | None:
    """Return where (as a share of ``length``) a crop window of ``window`` is centred, or None
    when it cannot hold ``span`` (the subject, shares of ``length``)."""
    start = min(max(centre * length - window / 2, 0.0), length - window)
    if span is not None:
        low, high = span[0] * length, span[1] * length
        if high - low > window * (1.0 + _CUT_TOLERANCE):
            return None
        if high - low > window:
            start = (low + high - window) / 2
        else:
            # The least move that brings the subject into the window, with part of the spare
            # room around it: the box is an estimate, and a subject touching the frame looks cut.
            pad = (window - (high - low)) / 4
            start = min(max(start, high + pad - window), low - pad)
        start = min(max(start, 0.0), length - window)
    return (start + window / 2) / length


def _natural_size(
    size: tuple[int, int], aspect: tuple[int, int], *, extend: bool
) -> tuple[int, int]:
    """The largest crop of ``size`` at ``aspect`` or, extending, the smallest canvas around it."""
    width, height = size
    wider = width * aspect[1] > height * aspect[0]
    if wider != extend:
        return max(1, round(height * aspect[0] / aspect[1])), height
    return width, max(1, round(width * aspect[1] / aspect[0]))


def _render(
    base: Image.Image, size: tuple[int, int], mode: str, focus: tuple[float, float]
) -> Image.Image:
    if mode == "crop":
        return _crop(base, size, focus)
    return _extend(base, size, mirror=mode == "mirror")


def _crop(base: Image.Image, size: tuple[int, int], focus: tuple[float, float]) -> Image.Image:
    width, height = size
    if max(width / base.width, height / base.height) != 1.0:
        return cover(base, width=width, height=height, focal_point=focus)
    # Same scale: a whole-pixel crop keeps every pixel as it was, and costs no resample.
    left = min(max(round(focus[0] * base.width - width / 2), 0), base.width - width)
    top = min(max(round(focus[1] * base.height - height / 2), 0), base.height - height)
    return base.crop((left, top, left + width, top + height))


def _extend(base: Image.Image, size: tuple[int, int], *, mirror: bool) -> Image.Image:
    width, height = size
    scale = min(width / base.width, height / base.height)
    inner = (
        min(width, max(1, round(base.width * scale))),
        min(height, max(1, round(base.height * scale))),
    )
    content = base if inner == base.size else base.resize(inner, Image.Resampling.LANCZOS)
    left, top = (width - inner[0]) // 2, (height - inner[1]) // 2
    if mirror:
        bands = ((top, height - inner[1] - top), (left, width - inner[0] - left), (0, 0))
        return Image.fromarray(np.pad(np.asarray(content), bands, mode="symmetric"))
    canvas = _backdrop(base, size)
    canvas.paste(content, (left, top))
    return canvas


def _backdrop(base: Image.Image, size: tuple[int, int]) -> Image.Image:
    scale = min(1.0, _BACKDROP_SIDE / max(size))
    small = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    # Box-reduce first so the LANCZOS cover works on a few thousand pixels, not millions.
    reduce_by = max(1, int(min(base.width / small[0], base.height / small[1]) / 4))
    source = base.reduce(reduce_by) if reduce_by > 1 else base
    blurred = cover(source, width=small[0], height=small[1]).filter(
        ImageFilter.GaussianBlur(_BACKDROP_BLUR)
    )
    return blurred.point(_BACKDROP_LEVELS).resize(size, Image.Resampling.BICUBIC)
