"""Provides the fake OpenAI-compatible ``POST /v1/images/generations`` (synchronous)."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from generation.fakeprovider.errors import fault_message, provider_error
from generation.fakeprovider.faults import Fault
from generation.fakeprovider.http import BadRequest, Request, Response, Router, json_response
from generation.fakeprovider.images import ImageSpec, image_format, render_image, scaled_size
from generation.fakeprovider.runtime import Runtime

DEFAULT_MODEL = "dall-e-2"
# DALL·E image URLs are valid for 60 minutes.
URL_LIFETIME = 3600.0
MAX_SIDE = 4096
_SIZE = re.compile(r"(\d+)x(\d+)")


class InputError(Exception):
    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


class OpenAIImagesApi:
    """Answers after the configured latency, holding only this request's own thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def register(self, router: Router) -> None:
        router.add("^/openai/v1/images/generations$", "POST", "openai.submit", self.generate)

    def generate(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise InputError("The request body must be a JSON object.", None)
            model, prompt, count, (width, height), as_url, fmt = _parse(body)
        except BadRequest as exc:
            return _invalid(str(exc), None)
        except InputError as exc:
            return _invalid(str(exc), exc.param)
        seed = body.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            seed = self.rt.random_seed()
        self.rt.stats.record_submit("openai", prompt, body.get("seed"))
        self.rt.hold(self.rt.sample_latency())
        refusal = _job_fault_answer(fault)
        if refusal is not None:
            return refusal
        width, height = scaled_size(width, height, self.rt.config.image_size)
        expires = self.rt.now() + URL_LIFETIME
        data = [
            self._item(ImageSpec(width, height, seed + i, prompt, fmt, expires_at=expires), as_url)
            for i in range(count)
        ]
        if model == "dall-e-3":
            for item in data:
                item["revised_prompt"] = prompt
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if model.startswith("gpt-image"):
            answer.update(
                background="opaque",
                output_format=fmt.lower(),
                size=f"{width}x{height}",
                quality=body.get("quality") or "high",
                usage={"total_tokens": 100, "input_tokens": 50, "output_tokens": 50},
            )
        return json_response(200, answer)

    def _item(self, spec: ImageSpec, as_url: bool) -> dict[str, Any]:
        if as_url:
            return {"url": self.rt.file_url(self.rt.files.register(spec))}
        # Inline images are never fetched again, so they are not kept in the file store.
        return {"b64_json": base64.b64encode(render_image(spec)).decode("ascii")}


def _job_fault_answer(fault: Fault) -> Response | None:
    """A synchronous API has no job to fail: job faults become the error answer itself."""
    if fault.name == "fail_job":
        return provider_error("openai", 500, fault_message("openai", 500))
    if fault.name == "nsfw":
        error = {
            "message": "Your request was rejected as a result of our safety system.",
            "type": "invalid_request_error",
            "param": None,
            "code": "content_policy_violation",
        }
        return json_response(400, {"error": error})
    return None


def _invalid(message: str, param: str | None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return json_response(400, {"error": error})


def _parse(body: dict[str, Any]) -> tuple[str, str, int, tuple[int, int], bool, str]:
    model = str(body.get("model") or DEFAULT_MODEL)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise InputError("'prompt' is a required property", "prompt")
    count = body.get("n", 1)
    limit = 1 if model == "dall-e-3" else 10
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= limit:
        raise InputError(f"'n' must be between 1 and {limit} for {model}", "n")
    size = str(body.get("size") or "auto")
    match = _SIZE.fullmatch(size)
    if size == "auto":
        dimensions = (1024, 1024)
    elif match and all(1 <= int(side) <= MAX_SIDE for side in match.groups()):
        dimensions = (int(match.group(1)), int(match.group(2)))
    else:
        raise InputError(f"Invalid value: '{size}'. Expected a size like '1024x1024'.", "size")
    gpt_image = model.startswith("gpt-image")
    response_format = body.get("response_format") or ("b64_json" if gpt_image else "url")
    if response_format not in ("url", "b64_json"):
        raise InputError("'response_format' must be 'url' or 'b64_json'", "response_format")
    # GPT image models always answer base64, whatever response_format says.
    as_url = response_format == "url" and not gpt_image
    fmt = image_format(body.get("output_format"), "png") if gpt_image else "PNG"
    return model, prompt, count, dimensions, as_url, fmt
