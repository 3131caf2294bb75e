"""Provides the aspect scorer: how far a rendition's shape is from its target ratio."""

from __future__ import annotations

from PIL import Image

from review.scoring.base import ScoreContext, Scorer, ScoreResult, target_size
from review.scoring.registry import register


@register
class AspectScorer(Scorer):
    """Value is the relative error of the width/height ratio; passes at or below threshold."""

    name = "aspect"
    label = "Aspect ratio"
    version = 1
    subject = "rendition"
    default_threshold = 0.01
    higher_is_better = False

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        target_w, target_h = target_size(self, ctx)
        actual, target = image.width / image.height, target_w / target_h
        error = abs(actual - target) / target
        threshold = self.threshold(ctx)
        return ScoreResult(
            value=error,
            passed=self.passes(error, threshold),
            details={"actual_ratio": actual, "target_ratio": target, "threshold": threshold},
        )
