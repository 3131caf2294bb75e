"""Provides the remote refinement steps (upscale, face restore, outpaint), run by a provider."""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from PIL import Image

from generation.pipeline.base import ParamSpec, Step, StepContext, StepError
from generation.pipeline.reframe import parse_aspect
from generation.pipeline.registry import register

# What every remote step takes besides its task parameters.
COMMON_PARAMS = {
    "provider": ParamSpec(str, "fal", choices=("fal", "replicate"), help="Who runs the model"),
    "model": ParamSpec(str, "", help="Model id; empty: the provider's model for this task"),
    "price": ParamSpec(
        float, 0.0, minimum=0.0, maximum=100.0, help="Cost per image, for the ledger"
    ),
}


class RemoteStep(Step):
    """A step that a provider's model performs, as a GenerationJob of its own.

    The engine submits it through the same retries, circuit breaker and cost ledger as a
    generation, and the chain waits for it. ``task_params`` are what the model receives.
    """

    kind: ClassVar[str]
    task_params: ClassVar[tuple[str, ...]] = ()

    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        raise StepError(self.name, "runs at a provider; the engine submits it as a job")

    def edit_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {key: params[key] for key in self.task_params}


@register
class UpscaleStep(RemoteStep):
    """Real-ESRGAN upscale at fal or Replicate; optionally falls back to ``upscale_local``."""

    name = "upscale"
    version = 1
    kind = "upscale"
    task_params = ("scale",)
    params = {
        **COMMON_PARAMS,
        "scale": ParamSpec(float, 2.0, minimum=1.0, maximum=8.0, help="Scale factor"),
        "fallback": ParamSpec(
            str,
            "none",
            choices=("none", "upscale_local"),
            help="When the provider gives up: fail the job, or upscale locally (recorded)",
        ),
    }


@register
class FaceRestoreStep(RemoteStep):
    """Face restoration (CodeFormer) at fal or Replicate."""

    name = "face_restore"
    version = 1
    kind = "face_restore"
    task_params = ("fidelity",)
    params = {
        **COMMON_PARAMS,
        "fidelity": ParamSpec(
            float, 0.5, minimum=0.0, maximum=1.0, help="0: strongest restoration, 1: most faithful"
        ),
    }


@register
class OutpaintStep(RemoteStep):
    """Generative reframe: the model extends the canvas to an aspect ratio (fal Bria Expand)."""

    name = "outpaint"
    version = 1
    kind = "outpaint"
    task_params = ("aspect", "prompt")
    params = {
        **COMMON_PARAMS,
        "provider": ParamSpec(str, "fal", choices=("fal",), help="Who runs the model"),
        "aspect": ParamSpec(str, "16:9", help="Target aspect ratio W:H, e.g. 9:16"),
        "prompt": ParamSpec(str, "", help="Optional guidance for the new areas"),
    }

    @classmethod
    def validate_params(cls, raw: Any) -> dict[str, Any]:
        params = super().validate_params(raw)
        try:
            parse_aspect(params["aspect"])
        except ValueError as exc:
            raise ValidationError(f"{cls.name}: 'aspect' {exc}", code="invalid_param") from None
        return params
