"""Provides the duplicate scorer: pHash distance to the campaign's other masters."""

from __future__ import annotations

from PIL import Image

from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.fingerprint import HASH_BITS, phash_distance, phash_hex
from review.scoring.registry import register


@register
class DuplicateScorer(Scorer):
    """Value is the smallest Hamming distance, in bits of 64, between this image's pHash and
    the other masters' (``ctx.neighbours``); 64 when there are none. Passes at or above the
    threshold, so a near-copy of another master (re-encoded, resized, relit) fails.

    ``details["phash"]`` is this image's own hash: the service stores it so that later masters
    of the campaign are compared with this one.

    Calibration (bench/calibrate_scorers.py, 8 skimage photos at 1024 px): JPEG q70, a 90 %
    resize and 5 % more brightness are ≤ 2 bits from the photo (Gaussian blur r=6 too), the 8
    different photos ≥ 20 bits apart (median 25); hue rotations 0–10 bits, so most fail as well.
    A 60 % crop is 24–38 bits away: pHash does not see crops as copies.
    """

    name = "duplicate"
    label = "Near-duplicate"
    version = 1
    subject = "master"
    default_threshold = 10.0
    higher_is_better = True

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        own = phash_hex(image)
        threshold = self.threshold(ctx)
        value, nearest = HASH_BITS, None
        for uid, other in sorted(ctx.neighbours.items()):
            bits = phash_distance(own, other)
            if bits < value:
                value, nearest = bits, uid
        return ScoreResult(
            value=float(value),
            passed=self.passes(value, threshold),
            details={
                "phash": own,
                "nearest": nearest,
                "neighbours": len(ctx.neighbours),
                "threshold": threshold,
            },
        )
