"""Provides the sharpness scorer: variance of the Laplacian at a fixed analysis size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from brandforge.images import flatten
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register

ANALYSIS_SIDE = 512


@register
class SharpnessScorer(Scorer):
    """Value is the variance of a 3x3 Laplacian over the greyscale image.

    The image is first resampled so its long side is 512 px: the variance grows with
    resolution, and a fixed analysis size lets one threshold serve every output size.
    Blurred or smeared generations have little high-frequency energy and score low.
    """

    name = "sharpness"
    version = 1
    subject = "master"
    default_threshold = 50.0

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        grey = analysis_image(image)
        value = laplacian_variance(np.asarray(grey, dtype=np.float32))
        threshold = self.threshold(ctx)
        return ScoreResult(
            value=value,
            passed=threshold is None or value >= threshold,
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
