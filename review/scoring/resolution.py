"""Provides the resolution scorer: is a rendition at least its target size?"""

from __future__ import annotations

from PIL import Image

from review.scoring.base import ScoreContext, Scorer, ScoreResult, target_size
from review.scoring.registry import register


@register
class ResolutionScorer(Scorer):
    """Value is actual pixels over target pixels; passes when both sides reach the target.

    The pass rule is fixed by the target size, so no threshold applies.
    """

    name = "resolution"
    version = 1
    subject = "rendition"
    default_threshold = None

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        target_w, target_h = target_size(self, ctx)
        return ScoreResult(
            value=(image.width * image.height) / (target_w * target_h),
            passed=image.width >= target_w and image.height >= target_h,
            details={"actual": [image.width, image.height], "target": [target_w, target_h]},
        )
