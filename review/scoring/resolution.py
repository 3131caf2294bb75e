"""Provides the resolution scorer: is a rendition at least its target size?"""

from __future__ import annotations

from PIL import Image

from review.scoring.base import ScoreContext, Scorer, ScoreResult, target_size
from review.scoring.registry import register


@register
class ResolutionScorer(Scorer):
    """Value is actual pixels over target pixels; passes when both sides reach the target.

    The pass rule is fixed by the target size, so no threshold applies: ``passes`` is given
    the target instead, and a gate's threshold for this scorer is ignored.
    """

    name = "resolution"
    label = "Resolution"
    version = 1
    subject = "rendition"
    default_threshold = None
    higher_is_better = True

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        target_w, target_h = target_size(self, ctx)
        return ScoreResult(
            value=(image.width * image.height) / (target_w * target_h),
            passed=self.reaches(image.size, (target_w, target_h)),
            details={"actual": [image.width, image.height], "target": [target_w, target_h]},
        )

    def threshold(self, ctx: ScoreContext) -> float | None:
        return None

    def reaches(self, size: tuple[int, int], target: tuple[int, int]) -> bool:
        # A pixel-count ratio ≥ 1 is not enough: a wide but short image must still fail.
        return size[0] >= target[0] and size[1] >= target[1]
