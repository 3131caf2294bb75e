"""Provides the exposure scorer: the share of pixels clipped to black or blown to white."""

from __future__ import annotations

import numpy as np
from PIL import Image

from review.scoring.analysis import analysis_rgb
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register

SHADOW_LUMA = 2
HIGHLIGHT_LEVEL = 253


@register
class ExposureScorer(Scorer):
    """Value is the fraction of pixels, at a long side of 512 px, that are clipped: shadows
    (Rec. 601 luma ≤ 2) plus highlights (any channel ≥ 253).

    Highlights are counted per channel, as a camera's clipping warning does, not by luma: an
    over-exposed warm or red scene blows its red channel long before its luma reaches 253
    (chelsea at ×1.8 brightness: 63 % of pixels with a channel blown, 12 % by luma; the
    retina: 76 % against 0.3 %).

    Calibration (bench/calibrate_scorers.py, 8 skimage photos at 1024 px): originals ≤ 0.237
    (the retina's black surround: 0.224 of shadows; the astronaut's black sky 0.125), every
    other original ≤ 0.015; brightness ×1.8 ≥ 0.423 on the six photos it over-exposes. Rocket
    and Hubble are dark (mean luma 61 and 20) and stay below mid-grey at ×1.8 (0.032, 0.017);
    under-exposure by ×0.3 adds at most 0.036 of shadows, so this scorer does not catch it.
    """

    name = "exposure"
    label = "Exposure"
    version = 1
    subject = "master"
    default_threshold = 0.3
    higher_is_better = False

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        rgb = analysis_rgb(image)
        y = np.asarray(rgb.convert("L"))
        brightest = np.maximum.reduce([np.asarray(channel) for channel in rgb.split()])
        shadows = float((y <= SHADOW_LUMA).mean())
        highlights = float((brightest >= HIGHLIGHT_LEVEL).mean())
        value = shadows + highlights
        threshold = self.threshold(ctx)
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={
                "shadows": round(shadows, 4),
                "highlights": round(highlights, 4),
                "mean_luma": round(float(y.mean()), 1),
                "threshold": threshold,
            },
        )
