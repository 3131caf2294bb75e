"""Provides the OpenAI Images adapter: one synchronous ``images/generations`` call per image."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx
from django.core.exceptions import ValidationError

from brandforge.images import CONTENT_TYPES, open_untrusted_image, sniff_format
from generation.providers.base import (
    GenerationRequest,
    GenerationResult,
    ImageProvider,
    ProviderError,
)
from generation.providers.http import (
    apply_params,
    default_client,
    json_object,
    raise_for_provider,
    send,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# GPT image models take a minute or more at high quality; the call is synchronous, so the
# read timeout must cover the whole render.
DEFAULT_READ_TIMEOUT = 180.0
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
# Fields derived from the request (or fixed by this adapter); a param may not replace them.
PROTECTED_FIELDS = frozenset({"model", "prompt", "n", "size", "response_format"})
# Streaming answers with server-sent events, which this adapter does not read.
REFUSED_PARAMS = frozenset({"stream", "partial_images"})


class OpenAIImageProvider(ImageProvider):
    """Generates one image with ``POST {base_url}/images/generations`` and returns its bytes.

    Options: ``api_key`` (sent as ``Authorization: Bearer``), ``base_url``,
    ``response_format`` (DALL·E only; must be ``b64_json``, the default) and
    ``read_timeout`` (seconds, default 180; overrides the injected client's read timeout
    for this one call because a render can take that long).

    The body is ``model``, ``prompt``, ``n: 1``, ``size: "<width>x<height>"``, then
    ``params`` (``quality``, ``output_format``, ``background``...) except the fields above
    and ``stream``/``partial_images``; ``response_format: "b64_json"`` is added for
    ``dall-e-*`` models only (GPT image models reject it and always answer base64). The API
    has no negative prompt, seed or LoRAs: they, the palette and refused params are
    recorded in ``sent["not_sent"]``. URL answers are not supported: downloading is the
    engine's job, behind its SSRF guard, and a sync result must carry the bytes.
    """

    name = "openai"
    default_model = "gpt-image-1"

    def __init__(self, *, client: httpx.Client | None = None, **options: Any) -> None:
        super().__init__(client=client, **options)
        self.base_url = str(options.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self.response_format = str(options.get("response_format") or "b64_json")
        self.read_timeout = float(options.get("read_timeout") or DEFAULT_READ_TIMEOUT)

    @property
    def http(self) -> httpx.Client:
        if self.client is None:
            self.client = default_client()
        return self.client

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.response_format != "b64_json":
            raise ProviderError(
                f"openai: response_format {self.response_format!r} is not supported; "
                "only b64_json (the engine downloads nothing for a sync provider)",
                retryable=False,
                reached=False,
            )
        model = request.model or self.default_model
        body, not_sent = generation_body(request, model)
        url = f"{self.base_url}/images/generations"
        timeout = self.http.timeout
        response = send(
            self.http,
            "POST",
            url,
            provider=self.name,
            submit=True,
            headers=self._auth(),
            json=body,
            timeout=httpx.Timeout(
                connect=timeout.connect,
                read=self.read_timeout,
                write=timeout.write,
                pool=timeout.pool,
            ),
        )
        raise_for_provider(response, provider=self.name)
        image_bytes = _image_bytes(json_object(response, provider=self.name))
        try:
            image = open_untrusted_image(image_bytes, formats=IMAGE_FORMATS)
        except ValidationError as exc:
            raise ProviderError(
                f"openai: the returned image is unusable: {exc.messages[0]}", retryable=True
            ) from exc
        fmt = sniff_format(image_bytes) or "PNG"
        return GenerationResult(
            image_bytes=image_bytes,
            content_type=CONTENT_TYPES.get(fmt, "application/octet-stream"),
            width=image.width,
            height=image.height,
            provider=self.name,
            model=model,
            sent={"method": "POST", "url": url, "body": body, "not_sent": not_sent},
            request_id=response.headers.get("x-request-id", ""),
        )

    def _auth(self) -> dict[str, str]:
        api_key = self.options.get("api_key")
        if not api_key:
            raise ProviderError(
                "openai: the api_key option is not configured", retryable=False, reached=False
            )
        return {"Authorization": f"Bearer {api_key}"}


def generation_body(
    request: GenerationRequest, model: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the JSON body for ``request`` and what the API cannot take from it."""
    base: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "n": 1,
        "size": f"{request.width}x{request.height}",
    }
    if model.startswith("dall-e"):
        base["response_format"] = "b64_json"
    params = {key: value for key, value in request.params.items() if key not in REFUSED_PARAMS}
    body, refused = apply_params(base, params, protected=PROTECTED_FIELDS)
    refused.update({key: request.params[key] for key in REFUSED_PARAMS & request.params.keys()})
    not_sent: dict[str, Any] = {"seed": request.seed}
    if request.negative_prompt:
        not_sent["negative_prompt"] = request.negative_prompt
    if request.loras:
        not_sent["loras"] = [{"path": lora.path, "scale": lora.scale} for lora in request.loras]
    if request.palette:
        not_sent["palette"] = list(request.palette)
    if refused:
        not_sent["params"] = refused
    return body, not_sent


def _image_bytes(answer: dict[str, Any]) -> bytes:
    data = answer.get("data")
    first = data[0] if isinstance(data, list) and data else None
    if not isinstance(first, dict):
        raise ProviderError("openai: the answer has no data[0]", retryable=True)
    encoded = first.get("b64_json")
    if not isinstance(encoded, str) or not encoded:
        if first.get("url"):
            raise ProviderError(
                "openai: the answer carries a URL, not b64_json; URL answers are not supported",
                retryable=False,
            )
        raise ProviderError("openai: data[0] has no b64_json", retryable=True)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProviderError("openai: data[0].b64_json is not base64", retryable=True) from exc
