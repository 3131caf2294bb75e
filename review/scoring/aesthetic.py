"""Provides the aesthetic scorer: a pluggable ONNX aesthetic predictor (LAION-style, 1–10).

The model is any ONNX file named by ``BRANDFORGE_AESTHETIC_MODEL`` that follows this contract,
which is that of the LAION aesthetic predictor (an MLP on CLIP ViT-L/14 image embeddings)
exported together with its CLIP image encoder:

- input: one float32 tensor, NCHW ``[1, 3, 224, 224]``, RGB, made by resizing the short side
  to 224 (bicubic), cropping the centre 224 × 224, scaling to 0–1 and normalising with CLIP's
  mean (0.48145466, 0.4578275, 0.40821073) and std (0.26862954, 0.26130258, 0.27577711);
- output: the first output holds one float, on LAION's scale of about 1–10, higher is better.

No model ships with the project; without one the scorer is unavailable and says why.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

import numpy as np
from django.conf import settings
from PIL import Image

from brandforge.images import flatten
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import register

INPUT_SIDE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


@register
class AestheticScorer(Scorer):
    """Value is the model's prediction; passes at or above 5.0, LAION's "average" mark.

    Called while unavailable, ``score`` runs nothing and passes with value 0 and the reason
    under ``details["skipped"]``; the service should ask ``unavailable()`` first.
    """

    name = "aesthetic"
    label = "Aesthetic"
    version = 1
    subject = "master"
    default_threshold = 5.0
    higher_is_better = True

    def unavailable(self) -> str | None:
        path = model_path()
        if not path:
            return "No aesthetic model configured (set BRANDFORGE_AESTHETIC_MODEL to an ONNX file)."
        if not onnxruntime_installed():
            return (
                "The aesthetic scorer needs onnxruntime, which is not installed "
                "(pip install 'brandforge[aesthetic]')."
            )
        if not os.path.isfile(path):
            return f"The aesthetic model {path} (BRANDFORGE_AESTHETIC_MODEL) does not exist."
        try:
            load_session(path, os.stat(path).st_mtime_ns)
        # onnxruntime's errors derive from Exception directly, one class per failure kind.
        except Exception as exc:  # noqa: BLE001
            return f"The aesthetic model {path} could not be loaded: {exc}"
        return None

    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        threshold = self.threshold(ctx)
        reason = self.unavailable()
        if reason is not None:
            return ScoreResult(
                value=0.0, passed=True, details={"skipped": reason, "threshold": threshold}
            )
        path = model_path()
        session = load_session(path, os.stat(path).st_mtime_ns)
        value = predict(session, image)
        return ScoreResult(
            value=value,
            passed=self.passes(value, threshold),
            details={"model": os.path.basename(path), "threshold": threshold},
        )


def model_path() -> str:
    return str(getattr(settings, "BRANDFORGE_AESTHETIC_MODEL", "") or "")


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


@functools.lru_cache(maxsize=2)
def load_session(path: str, mtime_ns: int) -> Any:
    """Return an InferenceSession for ``path``; a new file (new mtime) loads a new one."""
    import onnxruntime

    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])


def model_input(image: Image.Image) -> np.ndarray:
    """Return the image as the model's float32 NCHW [1, 3, 224, 224] CLIP-normalised input."""
    rgb = flatten(image)
    scale = INPUT_SIDE / min(rgb.size)
    size = (max(INPUT_SIDE, round(rgb.width * scale)), max(INPUT_SIDE, round(rgb.height * scale)))
    resized = rgb.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - INPUT_SIDE) // 2, (size[1] - INPUT_SIDE) // 2
    crop = resized.crop((left, top, left + INPUT_SIDE, top + INPUT_SIDE))
    pixels = (np.asarray(crop, dtype=np.float32) / 255 - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)[np.newaxis])


def predict(session: Any, image: Image.Image) -> float:
    name = session.get_inputs()[0].name
    output = session.run(None, {name: model_input(image)})[0]
    return float(np.asarray(output, dtype=np.float64).reshape(-1)[0])
