"""Provides the NSFW scorer: the provider's own flag, and optionally NudeNet run locally."""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from brandforge.images import flatten
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register

# NudeNet also reports covered parts, faces and feet; only these make an image unsafe.
EXPOSED_CLASSES = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
MIN_DETECTION_SCORE = 0.5

_detector: Any = None
_detector_lock = threading.Lock()


@register
class NsfwScorer(Scorer):
    """Value is 1.0 when the image is flagged, else 0.0; passes at or below 0.5.

    Flagged means the provider said so (``recipe["nsfw"]``, fal's ``has_nsfw_concepts``) or,
    when ``BRANDFORGE_NSFW_LOCAL`` is on, NudeNet found an exposed part with a score ≥ 0.5.
    NudeNet is AGPL-3.0 and an optional extra (``nsfw-local``), so the local check is off
    unless asked for; a provider that says nothing (None) is not a flag.
    """

    name = "nsfw"
    label = "NSFW"
    version = 1
    subject = "master"
    default_threshold = 0.5
    higher_is_better = False

    def unavailable(self) -> str | None:
        if settings.BRANDFORGE_NSFW_LOCAL and not nudenet_installed():
            return (
                "BRANDFORGE_NSFW_LOCAL is on but NudeNet is not installed "
                "(pip install 'brandforge[nsfw-local]', AGPL-3.0)."
            )
        return None

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        provider = provider_flag(ctx.recipe.get("nsfw"))
        local: str | list[dict[str, Any]]
        if not settings.BRANDFORGE_NSFW_LOCAL:
            local = "off"
        elif not nudenet_installed():
            local = "not installed"
        else:
            local = exposed_detections(image)
        flagged = provider is True or (isinstance(local, list) and bool(local))
        value = 1.0 if flagged else 0.0
        threshold = self.threshold(ctx)
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={"provider": provider, "local": local, "threshold": threshold},
        )


def provider_flag(flag: object) -> bool | None:
    """Return the provider's verdict: None when it gave none; fal sends one flag per image."""
    if flag is None:
        return None
    if isinstance(flag, list | tuple):
        return any(bool(item) for item in flag)
    return bool(flag)


def nudenet_installed() -> bool:
    return importlib.util.find_spec("nudenet") is not None


def local_detector() -> Any:
    """Return this process's NudeDetector, created on first use (it loads a 12 MB model)."""
    global _detector
    with _detector_lock:
        if _detector is None:
            from nudenet import NudeDetector

            _detector = NudeDetector()
        return _detector


def exposed_detections(image: Image.Image) -> list[dict[str, Any]]:
    bgr = np.ascontiguousarray(np.asarray(flatten(image))[..., ::-1])
    return [
        {
            "class": detection["class"],
            "score": round(float(detection["score"]), 3),
            "box": [int(v) for v in detection.get("box", [])],
        }
        for detection in local_detector().detect(bgr)
        if detection["class"] in EXPOSED_CLASSES and detection["score"] >= MIN_DETECTION_SCORE
    ]
