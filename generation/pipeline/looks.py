"""Provides the authenticity looks: grain, colour temperature, glow, vignette, lens, sharpen."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageFilter, ImageStat

from brandforge.images import flatten
from generation.pipeline.base import ParamSpec, Step, StepContext
from generation.pipeline.registry import register

# Rec. 709 luminance weights, applied in linear light.
_LUMA = (0.2126, 0.7152, 0.0722)
# Gain on red (and the inverse on blue) at shift = ±1, in linear light: about the cast of warm
# indoor light on a daylight picture, strong but still natural.
_MAX_WARMTH = 0.3
# Uniform random bytes through this table are Gaussian noise around mid-grey (to 2.9 sigma, all
# that 256 equally likely levels can hold) at a fraction of the cost of drawing normals. The
# spread is wide enough that quantising it is invisible; the grain is rescaled afterwards.
_NORMAL_LEVELS = [
    min(255, max(0, round(NormalDist(128.0, 40.0).inv_cdf((level + 0.5) / 256))))
    for level in range(256)
]
# Long side of the vignette mask; the mask is smooth, so it is computed small and scaled up.
_MASK_SIDE = 128
# Mesh cells between the centre and each edge for lens distortion: the bilinear mapping of a
# cell then stays within a few hundredths of a pixel of the true curve.
_MESH_CELLS = 8


@register
class FilmGrainStep(Step):
    """Add film grain: seeded noise at a chosen grain size, the same for the same seed.

    The pattern comes from the job's seed and ``seed_offset`` (so two steps of one chain, or
    two looks of one seed, can differ), never from a global random state.
    """

    name = "film_grain"
    version = 1
    params = {
        "amount": ParamSpec(
            float,
            0.04,
            minimum=0.0,
            maximum=0.25,
            help="Strength: spread of the grain, share of full scale",
        ),
        "size": ParamSpec(float, 1.5, minimum=1.0, maximum=8.0, help="Grain size in pixels"),
        "monochrome": ParamSpec(
            bool, True, help="The same grain in every channel (false: colour grain)"
        ),
        "seed_offset": ParamSpec(
            int,
            0,
            minimum=0,
            maximum=2**31 - 1,
            help="Mixed with the job's seed: another grain pattern for the same seed",
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        if params["amount"] == 0.0:
            return base
        mode = "L" if params["monochrome"] else "RGB"
        bands = len(mode)
        size = params["size"]
        small = (math.ceil(base.width / size), math.ceil(base.height / size))
        # SeedSequence needs non-negative entropy; masking keeps every seed distinct.
        rng = np.random.default_rng([ctx.seed & (2**64 - 1), params["seed_offset"]])
        noise = Image.frombytes(mode, small, rng.bytes(small[0] * small[1] * bands))
        grain = noise.point(_NORMAL_LEVELS * bands)
        if small != base.size:
            box = (0, 0, base.width / size, base.height / size)
            grain = grain.resize(base.size, Image.Resampling.BICUBIC, box=box)
        # Scaling up smooths the noise and lowers its spread by an amount that depends on the
        # size; measuring it makes ``amount`` mean the same at every grain size.
        spread = sum(ImageStat.Stat(grain).stddev) / bands
        gain = params["amount"] * 255.0 / max(spread, 1e-6)
        grain = grain.point(
            [_clamp_level(128 + (level - 128) * gain) for level in range(256)] * bands
        )
        if bands == 1:
            grain = Image.merge("RGB", (grain, grain, grain))
        return ImageChops.add(base, grain, scale=1.0, offset=-128)


@register
class ColorTemperatureStep(Step):
    """Warm (more red, less blue) or cool the image, keeping its brightness."""

    name = "color_temperature"
    version = 1
    params = {
        "shift": ParamSpec(
            float, 0.2, minimum=-1.0, maximum=1.0, help="Above 0 warmer, below 0 cooler"
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        shift = params["shift"]
        red, blue = 1.0 + _MAX_WARMTH * shift, 1.0 - _MAX_WARMTH * shift
        # Green takes up the difference so that a grey keeps its luminance.
        green = (1.0 - _LUMA[0] * red - _LUMA[2] * blue) / _LUMA[1]
        table = [
            _clamp_level(255.0 * _to_srgb(_to_linear(level / 255.0) * gain))
            for gain in (red, green, blue)
            for level in range(256)
        ]
        return base.point(table)


@register
class GlowStep(Step):
    """Soft light: the highlights, blurred, screened back over the image."""

    name = "glow"
    version = 1
    params = {
        "radius": ParamSpec(
            float,
            0.02,
            minimum=0.002,
            maximum=0.1,
            help="Spread of the glow, share of the shorter side",
        ),
        "strength": ParamSpec(float, 0.4, minimum=0.0, maximum=1.0, help="Glow brightness"),
        "threshold": ParamSpec(
            float, 0.6, minimum=0.0, maximum=0.95, help="Brightness (0..1) above which light glows"
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        if params["strength"] == 0.0:
            return base
        radius = params["radius"] * min(base.size)
        # The glow is a wide blur, so it can be made on a reduced copy at a fraction of the cost.
        reduce_by = max(1, int(radius / 4))
        small = base.reduce(reduce_by) if reduce_by > 1 else base
        cutoff = params["threshold"] * 255.0
        table = [
            _clamp_level(params["strength"] * max(0.0, level - cutoff) * 255.0 / (255.0 - cutoff))
            for level in range(256)
        ]
        light = small.point(table * 3).filter(ImageFilter.GaussianBlur(radius / reduce_by))
        if reduce_by > 1:
            box = (0, 0, base.width / reduce_by, base.height / reduce_by)
            light = light.resize(base.size, Image.Resampling.BILINEAR, box=box)
        return ImageChops.screen(base, light)


@register
class VignetteStep(Step):
    """Darken towards the corners, following the frame's shape; the middle is untouched.

    It is an overlay: a vignette belongs to the frame, so renditions apply it again after
    reframing rather than cropping it off-centre.
    """

    name = "vignette"
    version = 1
    overlay = True
    params = {
        "strength": ParamSpec(
            float, 0.3, minimum=0.0, maximum=1.0, help="Darkening in the corners (1: black)"
        ),
        "radius": ParamSpec(
            float,
            0.5,
            minimum=0.1,
            maximum=1.0,
            help="Where darkening starts, share of the centre-to-corner distance",
        ),
        "feather": ParamSpec(
            float, 0.5, minimum=0.05, maximum=1.0, help="Length of the fade, same unit as radius"
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        if params["strength"] == 0.0:
            return base
        scale = min(1.0, _MASK_SIDE / max(base.size))
        width, height = max(1, round(base.width * scale)), max(1, round(base.height * scale))
        # -1..1 across each side: the fade is an ellipse with the frame's proportions.
        xs = (np.arange(width, dtype=np.float32) + 0.5) / width * 2.0 - 1.0
        ys = (np.arange(height, dtype=np.float32) + 0.5) / height * 2.0 - 1.0
        distance = np.sqrt((xs[None, :] ** 2 + ys[:, None] ** 2) / 2.0)
        fade = np.clip((distance - params["radius"]) / params["feather"], 0.0, 1.0)
        fade = fade * fade * (3.0 - 2.0 * fade)
        levels = np.rint(255.0 * (1.0 - params["strength"] * fade)).astype(np.uint8)
        mask = Image.fromarray(levels)
        if mask.size != base.size:
            mask = mask.resize(base.size, Image.Resampling.BILINEAR)
        return ImageChops.multiply(base, Image.merge("RGB", (mask, mask, mask)))


@register
class LensDistortionStep(Step):
    """Barrel distortion: the middle bulges and straight lines bow outwards, as through a
    cheap wide lens. The corners stay at the corners, so no empty border appears; the centre
    is magnified by ``1 + amount``.
    """

    name = "lens_distortion"
    version = 1
    params = {
        "amount": ParamSpec(
            float, 0.05, minimum=0.0, maximum=0.2, help="Barrel distortion; 0 leaves the image"
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        if params["amount"] == 0.0:
            return base
        mesh = _barrel_mesh(base.size, params["amount"])
        return base.transform(
            base.size, Image.Transform.MESH, mesh, resample=Image.Resampling.BILINEAR
        )


@register
class SharpenStep(Step):
    """Unsharp mask: local contrast at edges raised by ``percent``."""

    name = "sharpen"
    version = 1
    params = {
        # In pixels rather than a share of the image: it targets detail at pixel scale.
        "radius": ParamSpec(
            float, 1.5, minimum=0.1, maximum=20.0, help="Size of the detail sharpened, in pixels"
        ),
        "percent": ParamSpec(int, 80, minimum=0, maximum=500, help="Strength in percent"),
        "threshold": ParamSpec(
            int, 2, minimum=0, maximum=255, help="Smallest difference (levels) that is sharpened"
        ),
    }

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        base = flatten(image)
        if params["percent"] == 0:
            return base
        return unsharp_luma(
            base, radius=params["radius"], percent=params["percent"], threshold=params["threshold"]
        )


def unsharp_luma(image: Image.Image, *, radius: float, percent: int, threshold: int) -> Image.Image:
    """Return the RGB ``image`` with an unsharp mask applied to its luminance.

    Where the luminance differs from its blur (Gaussian, ``radius`` pixels) by ``threshold``
    levels or more, that difference times ``percent`` / 100 is added to every channel. Working
    on the luminance alone leaves colours without fringes, and blurs one band instead of three.
    """
    luma = image.convert("L")
    blurred = luma.filter(ImageFilter.GaussianBlur(radius))
    detail = ImageChops.subtract(luma, blurred, scale=1.0, offset=128)
    boost = detail.point(
        [
            128
            if abs(level - 128) < threshold
            else _clamp_level(128 + (level - 128) * percent / 100)
            for level in range(256)
        ]
    )
    return ImageChops.add(image, Image.merge("RGB", (boost, boost, boost)), scale=1.0, offset=-128)


def _barrel_mesh(
    size: tuple[int, int], amount: float
) -> list[tuple[tuple[int, int, int, int], tuple[float, ...]]]:
    """Pillow MESH data mapping each output cell to its quadrilateral in the source."""
    width, height = size
    centre_x, centre_y = width / 2, height / 2
    corner = centre_x**2 + centre_y**2

    def source(x: int, y: int) -> tuple[float, float]:
        dx, dy = x - centre_x, y - centre_y
        # Radius² as a share of the corner's: the corners map to themselves.
        factor = (1.0 + amount * (dx * dx + dy * dy) / corner) / (1.0 + amount)
        return centre_x + dx * factor, centre_y + dy * factor

    xs, ys = _symmetric_nodes(width), _symmetric_nodes(height)
    mesh = []
    for top, bottom in itertools.pairwise(ys):
        for left, right in itertools.pairwise(xs):
            quad = (
                *source(left, top),
                *source(left, bottom),
                *source(right, bottom),
                *source(right, top),
            )
            mesh.append(((left, top, right, bottom), quad))
    return mesh


def _symmetric_nodes(length: int) -> list[int]:
    """Whole-pixel cell edges, mirror-symmetric about the middle.

    The cell holding the centre is then symmetric about it, so the bilinear map of that cell
    sends the centre to itself exactly and the centre pixel keeps its value.
    """
    half = length / 2
    starts = sorted({int(half * index / _MESH_CELLS) for index in range(_MESH_CELLS)})
    middle = [length // 2] if length % 2 == 0 else []
    return [*starts, *middle, *(length - start for start in reversed(starts))]


def _to_linear(value: float) -> float:
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _to_srgb(value: float) -> float:
    value = min(max(value, 0.0), 1.0)
    return value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055


def _clamp_level(value: float) -> int:
    return min(255, max(0, round(value)))
