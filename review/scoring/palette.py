"""Provides the palette scorer: how far the image's dominant colours are from the brand palette."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageColor
from skimage.color import deltaE_ciede2000, rgb2lab

from review.scoring.analysis import analysis_rgb
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register

DOMINANT_COLOURS = 5
# Median cut needs no detail; at 128 px it takes a tenth of the time it takes at 512 px.
PALETTE_SIDE = 128

RGB = tuple[int, int, int]


@register
class PaletteScorer(Scorer):
    """Value is the share-weighted mean CIEDE2000 ΔE from each of the image's five dominant
    colours (median cut) to the nearest brand palette colour.

    A ΔE of 1–2 is about a just-noticeable difference.

    Calibration (bench/calibrate_scorers.py, 8 skimage photos at 1024 px, each against a palette
    of its own five dominant colours): JPEG q70 ≤ 2.3, a 60 % centre crop ≤ 6.2; hue rotated
    by 120° or 180° ≥ 16.0, except the near-neutral Hubble deep field (2.8: rotating the hue of
    a nearly grey image changes little). The default sits high in that margin because images
    built from a palette blend and tint its colours: the local provider's masters score 5.9–17.2
    against their own palette (35 of 40 pass at 14, 13 of 40 would at 10) and their hue-rotated
    copies 10.9–35.5 (3 of 80 pass). The price: 25 of 56 pairs of unrelated photos pass too
    (11 at 10), since natural photos share browns, greys and near-blacks.
    """

    name = "palette"
    label = "Brand palette"
    version = 1
    subject = "master"
    default_threshold = 14.0
    higher_is_better = False

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        threshold = self.threshold(ctx)
        if not ctx.palette:
            return ScoreResult(
                value=0.0,
                passed=True,
                details={"note": "brand has no palette", "threshold": threshold},
            )
        palette = [parse_hex(colour) for colour in ctx.palette]
        dominant = dominant_colours(image)
        distances = delta_e_matrix([colour for colour, _ in dominant], palette)
        nearest = distances.argmin(axis=1)
        matches = [
            {
                "colour": to_hex(colour),
                "share": round(share, 4),
                "nearest": ctx.palette[int(index)],
                "delta_e": round(float(distances[row, index]), 2),
            }
            for row, ((colour, share), index) in enumerate(zip(dominant, nearest, strict=True))
        ]
        shares = np.array([share for _, share in dominant])
        value = float((shares * distances.min(axis=1)).sum() / shares.sum())
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={"dominant": matches, "threshold": threshold},
        )


def dominant_colours(image: Image.Image, count: int = DOMINANT_COLOURS) -> list[tuple[RGB, float]]:
    """Return up to ``count`` dominant colours by median cut with their pixel shares, largest
    share first (fewer when the image has fewer distinct colours)."""
    small = analysis_rgb(image, PALETTE_SIDE)
    quantized = small.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    flat = quantized.getpalette() or []
    counts = sorted(quantized.getcolors() or [], key=lambda item: (-item[0], item[1]))
    total = sum(n for n, _ in counts)
    return [
        ((flat[3 * index], flat[3 * index + 1], flat[3 * index + 2]), n / total)
        for n, index in counts
    ]


def delta_e_matrix(colours: Sequence[RGB], others: Sequence[RGB]) -> np.ndarray:
    """Return CIEDE2000 ΔE between every pair, shape (len(colours), len(others))."""
    lab_a = rgb2lab(np.asarray(colours, dtype=np.float64).reshape(-1, 1, 3) / 255)
    lab_b = rgb2lab(np.asarray(others, dtype=np.float64).reshape(1, -1, 3) / 255)
    return deltaE_ciede2000(lab_a, lab_b)


def parse_hex(colour: str) -> RGB:
    red, green, blue = ImageColor.getrgb(colour)[:3]
    return red, green, blue


def to_hex(colour: RGB) -> str:
    return "#{:02X}{:02X}{:02X}".format(*colour)
