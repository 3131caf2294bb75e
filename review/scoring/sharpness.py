"""Provides the sharpness scorer: variance of the Laplacian at a fixed analysis size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from brandforge.images import flatten
from review.scoring.analysis import ANALYSIS_SIDE
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register


@register
class SharpnessScorer(Scorer):
    """Value is the variance of a 3x3 Laplacian over the greyscale image.

    The image is first resampled so its long side is 512 px: the variance grows with
    resolution, and a fixed analysis size lets one threshold serve every output size.
    Blurred or smeared generations have little high-frequency energy and score low.

    Calibration (bench/calibrate_scorers.py, 8 skimage photos at 1024 px): originals ≥ 91.3
    (the soft retina fundus; median 646), Gaussian blur r=3 ≤ 30.4, r=6 ≤ 3.1, so the
    default 50 stays.
    """

    name = "sharpness"
    label = "Sharpness"
    version = 1
    subject = "master"
    default_threshold = 50.0
    higher_is_better = True

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        grey = analysis_image(image)
        value = laplacian_variance(np.asarray(grey, dtype=np.float32))
        threshold = self.threshold(ctx)
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={"threshold": threshold, "analysed_size": list(grey.size)},
        )


def analysis_image(image: Image.Image) -> Image.Image:
    """Return a float greyscale copy whose long side is ``ANALYSIS_SIDE`` pixels."""
    grey = flatten(image).convert("L").convert("F")
    factor = ANALYSIS_SIDE / max(grey.size)
    size = (max(1, round(grey.width * factor)), max(1, round(grey.height * factor)))
    if size == grey.size:
        return grey
    return grey.resize(size, Image.Resampling.LANCZOS)


def laplacian_variance(grey: np.ndarray) -> float:
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    centre = grey[1:-1, 1:-1]
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * centre
    return float(laplacian.var(dtype=np.float64))
