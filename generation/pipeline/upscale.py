"""Provides the local upscale step: LANCZOS resampling followed by an unsharp mask."""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from brandforge.images import flatten
from generation.pipeline.base import ParamSpec, Step, StepContext, StepError
from generation.pipeline.looks import unsharp_luma
from generation.pipeline.registry import register

# Larger outputs could not be opened again by the rest of the system (the upload limit), and
# would take hundreds of megabytes of memory to make.
MAX_PIXELS = 40_000_000
# The mask's blur radius per unit of scale: LANCZOS spreads an edge over about ``scale``
# output pixels, and the mask must be about as wide to restore it.
_RADIUS_PER_SCALE = 0.6
_THRESHOLD = 2
_BAND_ROWS = 256


@register
class UpscaleLocalStep(Step):
    """Enlarge with LANCZOS and restore edge contrast with an unsharp mask.

    The size is ``factor`` times the source, or ``long_side`` pixels on the longer side when
    that is set (a smaller ``long_side`` reduces). It serves previews and is the recorded
    fallback when the remote upscaler gives up; it invents no detail.
    """

    name = "upscale_local"
    version = 1
    params = {
        "factor": ParamSpec(float, 2.0, minimum=1.0, maximum=8.0, help="Scale factor"),
        "long_side": ParamSpec(
            int, 0, minimum=0, maximum=16384, help="Pixels on the longer side; 0: use factor"
        ),
        "sharpen": ParamSpec(
            int, 60, minimum=0, maximum=300, help="Unsharp mask strength in percent; 0: none"
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        long_side = params["long_side"]
        scale = long_side / max(base.size) if long_side else params["factor"]
        size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
        if size[0] * size[1] > MAX_PIXELS:
            raise StepError(
                self.name,
                f"{size[0]} x {size[1]} pixels is over the limit of {MAX_PIXELS:,}",
            )
        if size == base.size:
            return base
        enlarged = base.resize(size, Image.Resampling.LANCZOS)
        if scale <= 1.0 or params["sharpen"] == 0:
            return enlarged
        sharpen_in_bands(enlarged, radius=_RADIUS_PER_SCALE * scale, percent=params["sharpen"])
        return enlarged


def sharpen_in_bands(image: Image.Image, *, radius: float, percent: int) -> None:
    """Apply ``unsharp_luma`` to ``image`` in place, a band of rows at a time.

    The mask's temporaries (luminance, blur, detail, a full-colour boost) would otherwise be
    several copies of a large output; in bands they stay a few megabytes. Each band is read
    with enough rows around it for the blur, so the result equals masking the whole image.
    """
    overlap = math.ceil(4 * radius) + 4
    pending: tuple[Image.Image, tuple[int, int]] | None = None
    for top in range(0, image.height, _BAND_ROWS):
        bottom = min(image.height, top + _BAND_ROWS)
        low, high = max(0, top - overlap), min(image.height, bottom + overlap)
        # Read this band before the previous one is written back: their margins overlap.
        source = image.crop((0, low, image.width, high))
        if pending is not None:
            image.paste(*pending)
        sharpened = unsharp_luma(source, radius=radius, percent=percent, threshold=_THRESHOLD)
        pending = (sharpened.crop((0, top - low, image.width, bottom - low)), (0, top))
    if pending is not None:
        image.paste(*pending)
