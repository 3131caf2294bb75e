"""Provides the watermark step, which places the brand logo on an image."""

from __future__ import annotations

from typing import Any

from PIL import Image

from assets.layouts import ANCHORS
from brandforge.images import flatten
from generation.pipeline.base import ParamSpec, Step, StepContext
from generation.pipeline.registry import register


@register
class WatermarkStep(Step):
    """Composite the brand logo onto the image at an anchor.

    The logo keeps its aspect ratio and its own transparency, scaled by ``opacity``. Its
    width is ``scale`` times the image width, reduced if the logo would then not fit inside
    the margins. ``safe_area`` keeps it further in, out of a band along every side (a share
    of the width at the left and right, of the height at the top and bottom) where a channel
    lays its own interface over the image, such as the header and reply bar of a story.
    Brands without a logo are not watermarked: the image passes through.
    """

    name = "watermark"
    version = 1
    overlay = True
    params = {
        "anchor": ParamSpec(str, "bottom-right", choices=tuple(ANCHORS), help="Logo position"),
        "margin": ParamSpec(
            float, 0.04, minimum=0.0, maximum=0.25, help="Gap to the edge, share of shorter side"
        ),
        "opacity": ParamSpec(float, 0.8, minimum=0.0, maximum=1.0, help="Logo opacity"),
        "scale": ParamSpec(
            float, 0.18, minimum=0.02, maximum=0.5, help="Logo width, share of image width"
        ),
        "safe_area": ParamSpec(
            float,
            0.0,
            minimum=0.0,
            maximum=0.3,
            help="Band along each side kept free of the logo, share of that dimension",
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        if ctx.logo is None:
            return base
        margin = round(params["margin"] * min(base.size))
        # Chains stored before safe_area existed lack it; they mean no safe area.
        safe_area = params.get("safe_area", 0.0)
        # A large margin plus a large safe area could leave no room at all; keep a pixel.
        inset = (
            min(margin + round(safe_area * base.width), (base.width - 1) // 2),
            min(margin + round(safe_area * base.height), (base.height - 1) // 2),
        )
        logo = _fit_logo(ctx.logo, base.size, scale=params["scale"], inset=inset)
        horizontal, vertical = ANCHORS[params["anchor"]]
        x = inset[0] + round((base.width - 2 * inset[0] - logo.width) * horizontal)
        y = inset[1] + round((base.height - 2 * inset[1] - logo.height) * vertical)
        alpha = logo.getchannel("A").point(_opacity_table(params["opacity"]))
        base.paste(logo.convert("RGB"), (x, y), mask=alpha)
        return base


def _fit_logo(
    logo: Image.Image, size: tuple[int, int], *, scale: float, inset: tuple[int, int]
) -> Image.Image:
    logo = logo.convert("RGBA")
    room_w = max(1, size[0] - 2 * inset[0])
    room_h = max(1, size[1] - 2 * inset[1])
    width = min(max(1, round(size[0] * scale)), room_w)
    height = max(1, round(logo.height * width / logo.width))
    if height > room_h:
        height = room_h
        width = max(1, round(logo.width * height / logo.height))
    return logo.resize((width, height), Image.Resampling.LANCZOS)


def _opacity_table(opacity: float) -> list[int]:
    return [round(level * opacity) for level in range(256)]
