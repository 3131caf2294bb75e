"""Provides the brand consistency scorer: distance to the nearest brand reference image."""

from __future__ import annotations

from PIL import Image

from review.scoring.base import Fingerprint, ScoreContext, Scorer, ScoreResult
from review.scoring.fingerprint import (
    HASH_BITS,
    fingerprint,
    histogram_distance,
    phash_distance,
)
from review.scoring.registry import register

# On-brand photos of different scenes have unrelated pHashes (20–38 of 64 bits apart in the
# calibration, like any two photos), so the hash only nudges the distance: a copy scores lower.
PHASH_WEIGHT = 0.2


@register
class BrandConsistencyScorer(Scorer):
    """Value is min over the references of H + 0.2 × b / 64, where H is the Hellinger distance
    between 8×4×4 HSV histograms (0 same colours, 1 none shared) and b the pHash distance in
    bits (64 = every bit differs), so 0 for a copy of a reference and at most 1.2.

    Calibration (bench/calibrate_scorers.py, 8 skimage photos at 1024 px, references = the four
    60 % corner crops of each photo): the photo ≤ 0.358, JPEG q70 ≤ 0.354, a 60 % centre crop
    ≤ 0.468; greyscale ≥ 0.635, hue rotated by 120° or 180° ≥ 0.637. Unrelated photos score
    0.426–1.1 (median 0.894); 2 of 56 pairs pass. The local provider's masters against five
    others of the same palette score 0.16–0.55 (18 of 20 pass), hue-rotated 0.83–1.1.
    """

    name = "brand_consistency"
    label = "Brand consistency"
    version = 1
    subject = "master"
    default_threshold = 0.5
    higher_is_better = False

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        threshold = self.threshold(ctx)
        if not ctx.references:
            return ScoreResult(
                value=0.0,
                passed=True,
                details={"note": "brand has no reference images", "threshold": threshold},
            )
        own = fingerprint(image)
        distances = [reference_distance(own, reference) for reference in ctx.references]
        index = min(range(len(distances)), key=lambda i: distances[i]["distance"])
        nearest = distances[index]
        value = nearest["distance"]
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={
                "nearest_reference": index,
                "histogram_distance": round(nearest["histogram"], 4),
                "phash_distance": nearest["phash"],
                "references": len(ctx.references),
                "threshold": threshold,
            },
        )


def reference_distance(own: Fingerprint, reference: Fingerprint) -> dict[str, float]:
    """Return the combined distance between two fingerprints and its two parts."""
    histogram = histogram_distance(own.histogram, reference.histogram)
    bits = phash_distance(own.phash, reference.phash)
    return {
        "distance": histogram + PHASH_WEIGHT * bits / HASH_BITS,
        "histogram": histogram,
        "phash": bits,
    }
