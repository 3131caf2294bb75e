"""Provides a deterministic procedural image provider that needs no network or GPU."""

from __future__ import annotations

import hashlib
import math
import re
from decimal import Decimal

import numpy as np
from PIL import Image

from brandforge.images import CONTENT_TYPES, encode_image
from generation.providers.base import (
    GenerationRequest,
    GenerationResult,
    ImageProvider,
    ProviderError,
)

MIN_SIDE = 64
MAX_SIDE = 4096
NEUTRAL_PALETTE = ("#1F2933", "#52606D", "#9AA5B1", "#E4E7EB", "#F7F5F2")

_HEX = re.compile(r"#?([0-9a-fA-F]{6})")
_LUMA = np.array([0.299, 0.587, 0.114])
_GRAIN_LEVELS = 2.0
# Grain is drawn in square cells rather than per pixel: per-pixel noise is incompressible
# and made PNG encoding (fixed at zlib level 6) several times slower than the render.
_GRAIN_CELL = 4

Rgb = np.ndarray  # float32 array of shape (3,), channel values 0..255
# Channel-planar float32 (3, height, width): blending one contiguous plane at a time is
# about twice as fast as broadcasting over interleaved pixels.
Canvas = np.ndarray


class LocalImageProvider(ImageProvider):
    """Renders an abstract composition in the brand palette; it is not a diffusion model.

    The prompt only seeds the layout: the image never depicts what the prompt describes.
    It exists so that development, tests and demos exercise the whole pipeline (recipes,
    refinement, scoring, review) offline and at no cost. The output is a smooth gradient
    between two palette colours, soft- and crisp-edged discs, bands and rounded rectangles,
    a crisp dot grid and a faint grain. All randomness comes from
    ``numpy.random.default_rng([seed, prompt digest])``, so equal requests give equal bytes.
    LoRAs, the negative prompt and ``params`` are recorded in ``sent`` but do not change
    the picture.
    """

    name = "local"
    default_model = "procedural-v1"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        _check_request(request)
        palette = parse_palette(request.palette or NEUTRAL_PALETTE)
        rng = np.random.default_rng([request.seed, prompt_digest(request.prompt)])
        pixels = render(request.width, request.height, palette, rng)
        image_bytes = encode_image(Image.fromarray(pixels, "RGB"), fmt="PNG")
        return GenerationResult(
            image_bytes=image_bytes,
            content_type=CONTENT_TYPES["PNG"],
            width=request.width,
            height=request.height,
            provider=self.name,
            model=self.default_model,
            sent=_sent(request),
            cost=Decimal("0"),
            nsfw=False,
        )


def prompt_digest(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8], 16)


def parse_palette(colours: tuple[str, ...]) -> np.ndarray:
    """Return the ``#RRGGBB`` colours as a float32 array of shape (n, 3)."""
    rgb = []
    for colour in colours:
        match = _HEX.fullmatch(colour.strip())
        if match is None:
            raise ProviderError(f"palette colour {colour!r} is not #RRGGBB", retryable=False)
        rgb.append(bytes.fromhex(match.group(1)))
    return np.array([list(value) for value in rgb], dtype=np.float32)


def render(width: int, height: int, palette: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the composition as a uint8 array of shape (height, width, 3).

    Only IEEE-exact array operations are used (no vectorised sin/exp), so the pixels do
    not depend on which SIMD paths numpy picks on a given CPU.
    """
    unit = float(min(width, height))
    xs = np.arange(width, dtype=np.float32)[None, :] + np.float32(0.5)
    ys = np.arange(height, dtype=np.float32)[:, None] + np.float32(0.5)
    order = rng.permutation(len(palette))
    colours = [palette[i] for i in order]
    if len(colours) == 1:
        # A one-colour brand still needs a contrasting partner for the gradient and detail.
        light = float(colours[0] @ _LUMA) > 140
        colours.append(_mix(colours[0], np.full(3, 0 if light else 255, np.float32), 0.6))

    canvas = _gradient(xs, ys, colours[0], colours[1], angle=rng.uniform(0, 2 * math.pi))
    shape_count = int(rng.integers(5, 9))
    for index in range(shape_count):
        crisp = index >= shape_count - 2
        feather = 0.5 if crisp else float(rng.uniform(0.015, 0.06)) * unit
        colour = colours[(index + 2) % len(colours)]
        coverage, box = _random_shape(rng, xs, ys, width, height, unit, feather)
        _blend(canvas, coverage * np.float32(rng.uniform(0.88, 1.0)), colour, box)
    _dot_grid(canvas, rng, xs, ys, unit, np.stack(colours))

    canvas += _grain(rng, width, height)
    np.clip(canvas, 0, 255, out=canvas)
    np.rint(canvas, out=canvas)
    return np.ascontiguousarray(canvas.astype(np.uint8).transpose(1, 2, 0))


def _grain(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    cells = rng.standard_normal(
        (-(-height // _GRAIN_CELL), -(-width // _GRAIN_CELL)), dtype=np.float32
    )
    cells *= np.float32(_GRAIN_LEVELS)
    grain = np.repeat(np.repeat(cells, _GRAIN_CELL, axis=0), _GRAIN_CELL, axis=1)
    return grain[:height, :width]


def _check_request(request: GenerationRequest) -> None:
    for label, side in (("width", request.width), ("height", request.height)):
        if isinstance(side, bool) or not isinstance(side, int) or not MIN_SIDE <= side <= MAX_SIDE:
            raise ProviderError(
                f"{label} must be an integer from {MIN_SIDE} to {MAX_SIDE}, got {side!r}",
                retryable=False,
            )
    # SeedSequence rejects negative entries; refusing here gives a clearer message.
    if isinstance(request.seed, bool) or not isinstance(request.seed, int) or request.seed < 0:
        raise ProviderError(
            f"seed must be a non-negative integer, got {request.seed!r}", retryable=False
        )


def _sent(request: GenerationRequest) -> dict[str, object]:
    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "width": request.width,
        "height": request.height,
        "seed": request.seed,
        "model": request.model,
        "palette": list(request.palette),
        "loras": [{"path": lora.path, "scale": lora.scale} for lora in request.loras],
        "params": dict(request.params),
    }


def _mix(a: Rgb, b: Rgb, amount: float) -> Rgb:
    return a + (b - a) * np.float32(amount)


def _gradient(xs: np.ndarray, ys: np.ndarray, start: Rgb, end: Rgb, *, angle: float) -> Canvas:
    dx, dy = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    along = xs * dx + ys * dy
    low, high = along.min(), along.max()
    t = (along - low) / max(float(high - low), 1e-6)
    t = t * t * (np.float32(3) - np.float32(2) * t)
    return np.stack([a + t * (b - a) for a, b in zip(start, end, strict=True)])


def _random_shape(
    rng: np.random.Generator,
    xs: np.ndarray,
    ys: np.ndarray,
    width: int,
    height: int,
    unit: float,
    feather: float,
) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Return a shape's coverage (0..1) over its bounding box, and that box."""
    kind = int(rng.integers(3))
    cx = float(rng.uniform(-0.1, 1.1)) * width
    cy = float(rng.uniform(-0.1, 1.1)) * height
    if kind == 0:
        radius = float(rng.uniform(0.08, 0.32)) * unit
        box = _box(cx, cy, radius + 2 * feather, width, height)
        dx, dy = xs[:, box[1]] - np.float32(cx), ys[box[0]] - np.float32(cy)
        distance = np.sqrt(dx * dx + dy * dy) - np.float32(radius)
    elif kind == 1:
        angle = float(rng.uniform(0, math.pi))
        half_width = float(rng.uniform(0.03, 0.1)) * unit
        box = (slice(0, height), slice(0, width))
        across = (xs - np.float32(cx)) * np.float32(-math.sin(angle)) + (
            ys - np.float32(cy)
        ) * np.float32(math.cos(angle))
        distance = np.abs(across) - np.float32(half_width)
    else:
        half_x, half_y = (float(v) * unit for v in rng.uniform(0.08, 0.28, size=2))
        corner = float(rng.uniform(0.1, 0.5)) * min(half_x, half_y)
        angle = float(rng.uniform(-0.5, 0.5))
        box = _box(cx, cy, math.hypot(half_x, half_y) + 2 * feather, width, height)
        cos, sin = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        dx, dy = xs[:, box[1]] - np.float32(cx), ys[box[0]] - np.float32(cy)
        u, v = dx * cos + dy * sin, dy * cos - dx * sin
        distance = _rounded_box(u, v, half_x, half_y, corner)
    coverage = np.clip(np.float32(0.5) - distance / np.float32(2 * feather), 0, 1)
    return coverage, box


def _rounded_box(
    u: np.ndarray, v: np.ndarray, half_x: float, half_y: float, corner: float
) -> np.ndarray:
    qx = np.abs(u) - np.float32(half_x - corner)
    qy = np.abs(v) - np.float32(half_y - corner)
    outside_x, outside_y = np.maximum(qx, 0), np.maximum(qy, 0)
    outside = np.sqrt(outside_x * outside_x + outside_y * outside_y)
    inside = np.minimum(np.maximum(qx, qy), 0)
    return outside + inside - np.float32(corner)


def _box(cx: float, cy: float, reach: float, width: int, height: int) -> tuple[slice, slice]:
    x0, x1 = max(0, int(cx - reach)), min(width, int(cx + reach) + 2)
    y0, y1 = max(0, int(cy - reach)), min(height, int(cy + reach) + 2)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _blend(canvas: Canvas, coverage: np.ndarray, colour: Rgb, box: tuple[slice, slice]) -> None:
    rows = np.flatnonzero(coverage.any(axis=1))
    cols = np.flatnonzero(coverage.any(axis=0))
    if rows.size == 0:
        return
    # Bands are evaluated over the whole canvas; only the part they cover needs blending.
    top, bottom = rows[0], rows[-1] + 1
    left, right = cols[0], cols[-1] + 1
    coverage = coverage[top:bottom, left:right]
    ys = slice(box[0].start + top, box[0].start + bottom)
    xs = slice(box[1].start + left, box[1].start + right)
    scratch = np.empty_like(coverage)
    for plane, value in zip(canvas[:, ys, xs], colour, strict=True):
        np.subtract(value, plane, out=scratch)
        scratch *= coverage
        plane += scratch


def _dot_grid(
    canvas: Canvas,
    rng: np.random.Generator,
    xs: np.ndarray,
    ys: np.ndarray,
    unit: float,
    palette: np.ndarray,
) -> None:
    """Stamp a patch of crisp dots, which gives every render fine, sharp detail."""
    height, width = canvas.shape[1:]
    # Below ~8 px a dot pattern aliases into noise on small masters and their renditions.
    pitch = max(8.0, 0.03 * unit)
    radius = 0.28 * pitch
    # Whole rows and columns of dots, so none is cut off at the patch edge.
    patch_w, patch_h = (
        max(2, round(float(v) * unit / pitch)) * pitch for v in rng.uniform(0.28, 0.45, size=2)
    )
    x0 = int(rng.uniform(0.04, 0.96) * width - patch_w / 2)
    y0 = int(rng.uniform(0.04, 0.96) * height - patch_h / 2)
    box = (
        slice(max(0, y0), min(height, max(0, y0 + math.ceil(patch_h)))),
        slice(max(0, x0), min(width, max(0, x0 + math.ceil(patch_w)))),
    )
    region = canvas[:, box[0], box[1]]
    if region.size == 0:
        return
    # The dots take the palette colour that stands out most against what is under them.
    luma = float(region.mean(axis=(1, 2), dtype=np.float64) @ _LUMA)
    colour = palette[int(np.argmax(np.abs(palette @ _LUMA - luma)))]
    pitch32 = np.float32(pitch)
    u = np.mod(xs[:, box[1]] - np.float32(x0), pitch32) - pitch32 / 2
    v = np.mod(ys[box[0]] - np.float32(y0), pitch32) - pitch32 / 2
    distance = np.sqrt(u * u + v * v) - np.float32(radius)
    _blend(canvas, np.clip(np.float32(0.5) - distance, 0, 1), colour, box)
