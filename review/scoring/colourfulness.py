"""Provides the colourfulness scorer: Hasler and Süsstrunk's colourfulness metric."""

from __future__ import annotations

import numpy as np
from PIL import Image

from review.scoring.analysis import rgb_array
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register


@register
class ColourfulnessScorer(Scorer):
    """Value is M = σ_rgyb + 0.3 μ_rgyb over the opponent channels rg = R − G and
    yb = (R + G) / 2 − B (Hasler & Süsstrunk 2003, "Measuring colourfulness in natural
    images"); 0 for a grey image, about 15 "slightly", 33 "moderately", 59 "quite colourful".

    Calibration (bench/calibrate_scorers.py, 8 skimage photos at 1024 px): originals ≥ 13.6
    (the nearly black Hubble deep field; the others ≥ 37.8), greyscale 0. Washed out to 15 %
    saturation they score 2.2–14.9 and half of them fail at 8; Hubble blurred (r=6) scores 7.1.
    """

    name = "colourfulness"
    label = "Colourfulness"
    version = 1
    subject = "master"
    default_threshold = 8.0
    higher_is_better = True

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        value, details = colourfulness(rgb_array(image))
        threshold = self.threshold(ctx)
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={**details, "threshold": threshold},
        )


def colourfulness(rgb: np.ndarray) -> tuple[float, dict[str, float]]:
    red, green, blue = (rgb[..., i].astype(np.float64) for i in range(3))
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = float(np.hypot(rg.std(), yb.std()))
    mean = float(np.hypot(rg.mean(), yb.mean()))
    return spread + 0.3 * mean, {"spread": round(spread, 2), "mean": round(mean, 2)}
