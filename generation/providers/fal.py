"""Provides the fal.ai queue adapter: submit, poll, cancel and verify webhooks for FLUX models."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from generation.providers.base import (
    AsyncImageProvider,
    EditRequest,
    GenerationRequest,
    JobState,
    Outcome,
    OutputRef,
    ProviderError,
    Submission,
    WebhookDelivery,
    WebhookVerificationError,
)
from generation.providers.http import (
    apply_params,
    default_client,
    detail_from,
    error_detail,
    json_object,
    raise_for_provider,
    redact_data_uris,
    request_json,
    send,
)
from generation.providers.webhooks import jwks_cache_for, lower_headers, verify_fal_webhook

DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"

# FLUX [dev] defaults from fal's schema (FluxDevInput / FluxLoraInput).
FLUX_DEFAULTS: Mapping[str, Any] = {
    "num_inference_steps": 28,
    "guidance_scale": 3.5,
    "num_images": 1,
    "output_format": "jpeg",
    "enable_safety_checker": True,
}
# Body fields derived from the request itself; a param may not replace them.
PROTECTED_FIELDS = frozenset({"prompt", "image_size", "seed", "loras"})
# ``sync_mode`` returns data URIs and keeps nothing in request history, so the result
# could not be fetched from response_url later; it is never sent.
REFUSED_PARAMS = frozenset({"sync_mode"})

_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)+")
_URL_KEYS = ("status_url", "response_url", "cancel_url")
# Models for the remote refinement steps, when a step names none.
EDIT_MODELS = {
    "upscale": "fal-ai/esrgan",
    "face_restore": "fal-ai/codeformer",
    "outpaint": "fal-ai/bria/expand",
}
_DONE_CANCEL_STATUSES = frozenset(
    {"OK", "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"}
)


class FalImageProvider(AsyncImageProvider):
    """Runs FLUX models on fal.ai's queue API; completion comes by webhook or ``poll``.

    Options: ``api_key`` (sent as ``Authorization: Key <api_key>``), ``queue_url``,
    ``jwks_url``, ``user_id`` (pins the ``X-Fal-Webhook-User-Id`` of inbound webhooks),
    ``jwks`` (a static JWKS that replaces fetching, for tests) and ``jwks_max_age``
    (seconds, at most 24 h).

    The submit body is built from the request: ``prompt``, ``image_size`` as
    ``{"width", "height"}``, ``seed``, the FLUX defaults overridden by ``params`` (a
    ``None`` value removes a key), and ``loras`` as ``[{"path", "scale"}]`` only for models
    whose id contains ``lora``. What is not sent is recorded in ``sent["not_sent"]``: the
    negative prompt (FLUX has no such field), the palette (the prompt carries the brand),
    LoRAs for a model that cannot take them, and params that would replace a field derived
    from the request or that break the queue flow (``sync_mode``). We choose recording over
    raising for LoRAs so a route to a non-LoRA model still works and the recipe says so.

    The status, result and cancel URLs are kept from the submit response and never rebuilt:
    fal serves them without the model's subpath.
    """

    name = "fal"
    default_model = "fal-ai/flux/dev"

    def __init__(self, *, client: httpx.Client | None = None, **options: Any) -> None:
        super().__init__(client=client, **options)
        self.queue_url = str(options.get("queue_url") or DEFAULT_QUEUE_URL).rstrip("/")
        self.jwks_url = str(options.get("jwks_url") or DEFAULT_JWKS_URL)
        self.user_id: str | None = options.get("user_id") or None
        self.jwks: Mapping[str, Any] | None = options.get("jwks")
        self.jwks_max_age = float(options.get("jwks_max_age", 3600))

    @property
    def http(self) -> httpx.Client:
        if self.client is None:
            self.client = default_client()
        return self.client

    def submit(self, request: GenerationRequest, *, webhook_url: str | None) -> Submission:
        model = request.model or self.default_model
        body, not_sent = submit_body(request, model)
        return self._enqueue(model, body, not_sent, webhook_url)

    def submit_edit(self, request: EditRequest, *, webhook_url: str | None) -> Submission:
        model = request.model or self.edit_model(request.task)
        body, not_sent = edit_body(request)
        return self._enqueue(model, body, not_sent, webhook_url)

    def edit_model(self, task: str) -> str:
        return EDIT_MODELS.get(task, "")

    def _enqueue(
        self, model: str, body: dict[str, Any], not_sent: dict[str, Any], webhook_url: str | None
    ) -> Submission:
        if not _MODEL_ID.fullmatch(model) or ".." in model:
            raise ProviderError(
                f"fal: {model!r} is not a fal model id", retryable=False, reached=False
            )
        url = f"{self.queue_url}/{model}"
        if webhook_url:
            url = f"{url}?{urlencode({'fal_webhook': webhook_url})}"
        answer = request_json(
            self.http,
            "POST",
            url,
            provider=self.name,
            submit=True,
            headers=self._auth(),
            json=body,
        )
        request_id = answer.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            # The job may exist, but without its id there is nothing to reconcile with.
            raise ProviderError(
                f"fal: submit answer has no request_id: {answer!r}", retryable=True, reached=True
            )
        urls = {key: answer[key] for key in _URL_KEYS if isinstance(answer.get(key), str)}
        sent = {"method": "POST", "url": url, "body": redact_data_uris(body), "not_sent": not_sent}
        return Submission(request_id=request_id, urls=urls, sent=sent, raw=answer)

    def poll(self, submission: Submission) -> Outcome:
        status_url = self._url(submission, "status_url")
        status = request_json(
            self.http, "GET", status_url, provider=self.name, headers=self._auth()
        )
        state = status.get("status")
        request_id = submission.request_id
        if state == "IN_QUEUE":
            return Outcome(request_id=request_id, state=JobState.QUEUED, raw=status)
        if state == "IN_PROGRESS":
            return Outcome(request_id=request_id, state=JobState.RUNNING, raw=status)
        if state != "COMPLETED":
            raise ProviderError(f"fal: unknown queue status {state!r}", retryable=False)

        response_url = self._url(submission, "response_url")
        if status.get("error"):
            # A failed request still reaches COMPLETED; the result URL answers with the
            # error's detail (a 422's field list, say), which the status lacks.
            error = _join(status.get("error_type"), status.get("error"))
            detail = self._result_error(response_url)
            if detail and detail not in error:
                error = f"{error}: {detail}"
            return Outcome(request_id=request_id, state=JobState.FAILED, error=error, raw=status)

        response = send(
            self.http,
            "GET",
            response_url,
            provider=self.name,
            submit=False,
            headers=self._auth(),
        )
        if not response.is_success:
            if _is_transient_or_ours(response.status_code):
                raise_for_provider(response, provider=self.name)
            error = f"HTTP {response.status_code}: {error_detail(response)}"
            return Outcome(request_id=request_id, state=JobState.FAILED, error=error, raw=status)
        return outcome_from_result(request_id, json_object(response, provider=self.name))

    def cancel(self, submission: Submission) -> None:
        response = send(
            self.http,
            "PUT",
            self._url(submission, "cancel_url"),
            provider=self.name,
            submit=False,
            headers=self._auth(),
        )
        if response.status_code == 404:
            return
        body = _json_or_empty(response)
        if body.get("status") in _DONE_CANCEL_STATUSES:
            return  # including a 400 ALREADY_COMPLETED: there is nothing left to stop
        raise_for_provider(response, provider=self.name)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Verify the Ed25519 signature, then read the delivery.

        ``delivery_id`` is ``<request id>:<status>``: fal delivers the same webhook up to ten
        times. Failing to fetch the JWKS raises ``ProviderError`` (answer 5xx, fal retries).
        """
        if self.jwks is not None:
            verify_fal_webhook(headers, body, jwks=self.jwks, user_id=self.user_id)
        else:
            cache = jwks_cache_for(self.jwks_url, max_age=self.jwks_max_age)
            cache.verify(headers, body, client=self.http, user_id=self.user_id)

        request_id = lower_headers(headers)["x-fal-webhook-request-id"]
        try:
            delivery = json.loads(body)
        except ValueError:
            raise WebhookVerificationError("fal webhook: body is not JSON") from None
        if not isinstance(delivery, dict):
            raise WebhookVerificationError("fal webhook: body is not a JSON object")
        if delivery.get("request_id") != request_id:
            raise WebhookVerificationError(
                "fal webhook: body request_id does not match the signed header"
            )
        status = delivery.get("status")
        outcome = outcome_from_webhook(request_id, status, delivery)
        return WebhookDelivery(delivery_id=f"{request_id}:{status}", outcome=outcome)

    def _auth(self) -> dict[str, str]:
        api_key = self.options.get("api_key")
        if not api_key:
            raise ProviderError(
                "fal: the api_key option is not configured", retryable=False, reached=False
            )
        return {"Authorization": f"Key {api_key}"}

    def _url(self, submission: Submission, key: str) -> str:
        url = submission.urls.get(key)
        if not url:
            raise ProviderError(f"fal: the submission has no {key}", retryable=False)
        # The API key goes to this URL: only over TLS, unless the queue itself is plain HTTP
        # (a local stand-in).
        if urlsplit(url).scheme != "https" and urlsplit(self.queue_url).scheme == "https":
            raise ProviderError(f"fal: refusing non-https {key} {url!r}", retryable=False)
        return url

    def _result_error(self, response_url: str) -> str:
        try:
            response = send(
                self.http,
                "GET",
                response_url,
                provider=self.name,
                submit=False,
                headers=self._auth(),
            )
        except ProviderError:
            return ""
        return "" if response.is_success else error_detail(response)


def submit_body(request: GenerationRequest, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the JSON body for ``request`` and what was deliberately left out of it."""
    base: dict[str, Any] = {
        "prompt": request.prompt,
        "image_size": {"width": request.width, "height": request.height},
        "seed": request.seed,
        **FLUX_DEFAULTS,
    }
    params = {key: value for key, value in request.params.items() if key not in REFUSED_PARAMS}
    body, refused = apply_params(base, params, protected=PROTECTED_FIELDS)
    refused.update({key: request.params[key] for key in REFUSED_PARAMS & request.params.keys()})
    not_sent: dict[str, Any] = {}
    loras = [{"path": lora.path, "scale": lora.scale} for lora in request.loras]
    if loras and "lora" in model.lower():
        body["loras"] = loras
    elif loras:
        not_sent["loras"] = loras
    if request.negative_prompt:
        not_sent["negative_prompt"] = request.negative_prompt
    if request.palette:
        not_sent["palette"] = list(request.palette)
    if refused:
        not_sent["params"] = refused
    return body, not_sent


def edit_body(request: EditRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the input of fal's edit models (ESRGAN, CodeFormer, Bria expand) for ``request``."""
    params = dict(request.params)
    body: dict[str, Any] = {"image_url": request.image_url}
    if request.task == "upscale":
        body["scale"] = params.pop("scale", 2)
    elif request.task == "face_restore":
        body["fidelity"] = params.pop("fidelity", 0.5)
    elif request.task == "outpaint":
        body["aspect_ratio"] = params.pop("aspect", "1:1")
        body["seed"] = request.seed
        if params.get("prompt"):
            body["prompt"] = params.pop("prompt")
    else:
        raise ProviderError(f"fal: unknown edit task {request.task!r}", retryable=False)
    return body, ({"params": params} if params else {})


def outcome_from_result(request_id: str, result: Mapping[str, Any]) -> Outcome:
    """Return the outcome for a finished model output (``images``, ``seed``, NSFW flags)."""
    outputs = []
    for image in result.get("images") or []:
        if isinstance(image, Mapping) and isinstance(image.get("url"), str) and image["url"]:
            outputs.append(
                OutputRef(
                    url=image["url"],
                    content_type=_str(image.get("content_type")),
                    width=_int(image.get("width")),
                    height=_int(image.get("height")),
                )
            )
    flags = result.get("has_nsfw_concepts")
    nsfw = any(bool(flag) for flag in flags) if isinstance(flags, list) and flags else None
    if not outputs:
        return Outcome(
            request_id=request_id,
            state=JobState.FAILED,
            error="fal: the result has no images",
            nsfw=nsfw,
            raw=dict(result),
        )
    return Outcome(
        request_id=request_id,
        state=JobState.SUCCEEDED,
        outputs=tuple(outputs),
        seed=_int(result.get("seed")),
        nsfw=nsfw,
        raw=dict(result),
    )


def outcome_from_webhook(request_id: str, status: Any, delivery: Mapping[str, Any]) -> Outcome:
    payload = delivery.get("payload")
    if status == "OK" and isinstance(payload, Mapping):
        return dataclasses.replace(outcome_from_result(request_id, payload), raw=dict(delivery))
    if status == "OK":
        # fal could not serialise the result into the webhook: fetch it from response_url.
        return Outcome(
            request_id=request_id,
            state=JobState.SUCCEEDED,
            needs_fetch=True,
            raw=dict(delivery),
        )
    if status == "ERROR":
        error = _str(delivery.get("error")) or "fal reported an error"
        detail = _payload_detail(payload)
        if detail:
            error = f"{error}: {detail}"
        elif delivery.get("payload_error"):
            error = f"{error}: {delivery['payload_error']}"
        return Outcome(
            request_id=request_id, state=JobState.FAILED, error=error, raw=dict(delivery)
        )
    raise WebhookVerificationError(f"fal webhook: unknown status {status!r}")


def _payload_detail(payload: Any) -> str:
    return detail_from(dict(payload)) if isinstance(payload, Mapping) else ""


def _is_transient_or_ours(status_code: int) -> bool:
    # Worth another poll (rate limit, outage) or a misconfiguration that must surface as an
    # error rather than blaming the job (bad key).
    return status_code in (401, 403, 408, 429) or status_code >= 500


def _join(error_type: Any, error: Any) -> str:
    error_text = _str(error) or "failed"
    kind = _str(error_type)
    return f"{kind}: {error_text}" if kind else error_text


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(value: Any) -> int | None:
    # fal seeds exceed 2**53: keep Python ints exact and never route them through float.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
