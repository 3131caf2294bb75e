"""Provides the Replicate predictions adapter: submit, poll, cancel and verify webhooks."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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
    raise_for_provider,
    redact_data_uris,
    request_json,
    send,
)
from generation.providers.webhooks import lower_headers, verify_standard_webhook

DEFAULT_BASE_URL = "https://api.replicate.com"
# Input fields derived from the request's prompt and seed; a param may not replace them, or
# the recipe would contradict what was sent. Everything else is model-specific and may be
# overridden (or removed with None) by params.
PROTECTED_FIELDS = frozenset({"prompt", "seed"})
# Models for the remote refinement steps, when a step names none.
EDIT_MODELS = {"upscale": "nightmareai/real-esrgan", "face_restore": "sczhou/codeformer"}
SECRET_CACHE_SECONDS = 3600.0

_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_MODEL_NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)/([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTENSION_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".avif": "image/avif",
}
_STATES = {
    "starting": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "canceled": JobState.CANCELLED,
    # Set when a Cancel-After deadline passes before the prediction starts.
    "aborted": JobState.CANCELLED,
}

_secret_cache: dict[tuple[str, str], tuple[str, float]] = {}
_secret_cache_lock = threading.Lock()


class ReplicateImageProvider(AsyncImageProvider):
    """Runs models on Replicate's predictions API; completion comes by webhook or ``poll``.

    Options: ``api_token`` (sent as ``Authorization: Bearer``), ``base_url`` and
    ``webhook_secret`` (``whsec_...``; when absent it is fetched once from
    ``GET /v1/webhooks/default/secret`` and kept for an hour per process and token, because
    the registry makes a new adapter per call).

    ``model`` is ``owner/name`` (``POST /v1/models/{owner}/{name}/predictions``), a 64-hex
    version id or ``owner/name:<version id>`` (``POST /v1/predictions`` with ``version``).
    The input is ``prompt``, ``width``, ``height``, ``seed``, ``num_outputs: 1``, the first
    LoRA as ``lora_weights``/``lora_scale`` (the convention of ``flux-dev-lora`` and of
    trained FLUX LoRAs), then ``params`` over all of it except ``prompt`` and ``seed``. These
    names are model-specific and Replicate silently drops inputs a model does not declare:
    a rule for a model that takes ``aspect_ratio`` rather than a size should set params
    ``{"width": None, "height": None, "aspect_ratio": "1:1"}``. Further LoRAs, the negative
    prompt and the palette are recorded in ``sent["not_sent"]``. ``Prefer: wait`` is never
    sent: workers rely on webhooks (``completed`` events only) and polling.
    """

    name = "replicate"
    default_model = "black-forest-labs/flux-dev"

    def __init__(self, *, client: httpx.Client | None = None, **options: Any) -> None:
        super().__init__(client=client, **options)
        self.base_url = str(options.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        self._webhook_secret: str | None = options.get("webhook_secret") or None

    @property
    def http(self) -> httpx.Client:
        if self.client is None:
            self.client = default_client()
        return self.client

    def submit(self, request: GenerationRequest, *, webhook_url: str | None) -> Submission:
        input_, not_sent = prediction_input(request)
        return self._create(request.model or self.default_model, input_, not_sent, webhook_url)

    def submit_edit(self, request: EditRequest, *, webhook_url: str | None) -> Submission:
        model = request.model or self.edit_model(request.task)
        if not model:
            raise ProviderError(
                f"replicate: no default model for {request.task}; name one in the step",
                retryable=False,
                reached=False,
            )
        input_, not_sent = edit_input(request)
        return self._create(model, input_, not_sent, webhook_url)

    def edit_model(self, task: str) -> str:
        return EDIT_MODELS.get(task, "")

    def _create(
        self, model: str, input_: dict[str, Any], not_sent: dict[str, Any], webhook_url: str | None
    ) -> Submission:
        path, version = self._create_target(model)
        body: dict[str, Any] = {"input": input_}
        if version:
            body = {"version": version, **body}
        if webhook_url:
            body["webhook"] = webhook_url
            body["webhook_events_filter"] = ["completed"]
        url = f"{self.base_url}{path}"
        prediction = request_json(
            self.http,
            "POST",
            url,
            provider=self.name,
            submit=True,
            headers=self._auth(),
            json=body,
        )
        prediction_id = prediction.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise ProviderError(
                f"replicate: create answer has no id: {prediction!r}", retryable=True
            )
        urls = prediction.get("urls")
        urls = (
            {k: v for k, v in urls.items() if isinstance(v, str)} if isinstance(urls, dict) else {}
        )
        sent = {"method": "POST", "url": url, "body": redact_data_uris(body), "not_sent": not_sent}
        return Submission(request_id=prediction_id, urls=urls, sent=sent, raw=prediction)

    def poll(self, submission: Submission) -> Outcome:
        prediction = request_json(
            self.http,
            "GET",
            self._url(submission, "get"),
            provider=self.name,
            headers=self._auth(),
        )
        return outcome_from_prediction(prediction, request_id=submission.request_id)

    def cancel(self, submission: Submission) -> None:
        response = send(
            self.http,
            "POST",
            self._url(submission, "cancel"),
            provider=self.name,
            submit=False,
            headers=self._auth(),
        )
        if response.status_code == 404:
            return
        raise_for_provider(response, provider=self.name)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Verify the Standard Webhooks signature, then read the prediction it carries.

        ``delivery_id`` is ``<webhook-id>:<status>``: the ``webhook-id`` stays the same when
        Replicate retries a delivery. Failing to fetch the signing secret raises
        ``ProviderError`` (the webhook view should answer 5xx so Replicate retries).
        """
        verify_standard_webhook(headers, body, secret=self.webhook_secret())
        try:
            prediction = json.loads(body)
        except ValueError:
            raise WebhookVerificationError("replicate webhook: body is not JSON") from None
        if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
            raise WebhookVerificationError("replicate webhook: body is not a prediction")
        try:
            outcome = outcome_from_prediction(prediction, request_id=prediction["id"])
        except ProviderError as exc:
            raise WebhookVerificationError(f"replicate webhook: {exc}") from None
        webhook_id = lower_headers(headers)["webhook-id"]
        return WebhookDelivery(
            delivery_id=f"{webhook_id}:{prediction.get('status')}", outcome=outcome
        )

    def webhook_secret(self) -> str:
        """Return the ``whsec_`` signing secret: the option, or the account's default."""
        if self._webhook_secret:
            return self._webhook_secret
        token = self._token()
        key = (self.base_url, hashlib.sha256(token.encode()).hexdigest())
        with _secret_cache_lock:
            cached = _secret_cache.get(key)
            if cached and time.monotonic() - cached[1] < SECRET_CACHE_SECONDS:
                self._webhook_secret = cached[0]
                return cached[0]
        answer = request_json(
            self.http,
            "GET",
            f"{self.base_url}/v1/webhooks/default/secret",
            provider=self.name,
            headers=self._auth(),
        )
        secret = answer.get("key")
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            raise ProviderError("replicate: the webhook secret answer has no key", retryable=True)
        with _secret_cache_lock:
            _secret_cache[key] = (secret, time.monotonic())
        self._webhook_secret = secret
        return secret

    def _create_target(self, model: str) -> tuple[str, str | None]:
        """Return the create path and the version to put in the body (None for a model)."""
        name, _, version = model.partition(":")
        if _VERSION_ID.fullmatch(model):
            return "/v1/predictions", model
        match = _MODEL_NAME.fullmatch(name)
        if match and not version:
            owner, model_name = match.groups()
            return f"/v1/models/{owner}/{model_name}/predictions", None
        if match and _VERSION_ID.fullmatch(version):
            return "/v1/predictions", version
        raise ProviderError(
            f"replicate: model {model!r} is not owner/name, owner/name:<version> or a "
            "64-hex version id",
            retryable=False,
            reached=False,
        )

    def _token(self) -> str:
        token = self.options.get("api_token")
        if not token:
            raise ProviderError(
                "replicate: the api_token option is not configured", retryable=False, reached=False
            )
        return str(token)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"}

    def _url(self, submission: Submission, key: str) -> str:
        url = submission.urls.get(key)
        if not url:
            raise ProviderError(f"replicate: the submission has no {key} URL", retryable=False)
        # The token goes to this URL: only over TLS, unless the API itself is plain HTTP.
        if urlsplit(url).scheme != "https" and urlsplit(self.base_url).scheme == "https":
            raise ProviderError(f"replicate: refusing non-https {key} URL {url!r}")
        return url


def prediction_input(request: GenerationRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the prediction ``input`` for ``request`` and what was left out of it."""
    base: dict[str, Any] = {
        "prompt": request.prompt,
        "width": request.width,
        "height": request.height,
        "seed": request.seed,
        "num_outputs": 1,
    }
    not_sent: dict[str, Any] = {}
    if request.loras:
        first, *rest = request.loras
        base["lora_weights"] = first.path
        base["lora_scale"] = first.scale
        if rest:
            not_sent["loras"] = [{"path": lora.path, "scale": lora.scale} for lora in rest]
    input_, refused = apply_params(base, request.params, protected=PROTECTED_FIELDS)
    if request.negative_prompt:
        not_sent["negative_prompt"] = request.negative_prompt
    if request.palette:
        not_sent["palette"] = list(request.palette)
    if refused:
        not_sent["params"] = refused
    return input_, not_sent


def edit_input(request: EditRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the prediction input of the Real-ESRGAN and CodeFormer models for ``request``."""
    params = dict(request.params)
    input_: dict[str, Any] = {"image": request.image_url}
    if request.task == "upscale":
        input_["scale"] = params.pop("scale", 2)
        input_["face_enhance"] = False
    elif request.task == "face_restore":
        input_["codeformer_fidelity"] = params.pop("fidelity", 0.5)
        input_["upscale"] = 1
    else:
        raise ProviderError(
            f"replicate: no {request.task} model; use fal for it", retryable=False, reached=False
        )
    return input_, ({"params": params} if params else {})


def outcome_from_prediction(prediction: Mapping[str, Any], *, request_id: str) -> Outcome:
    """Return the outcome a prediction object describes; raise on an unknown status."""
    status = prediction.get("status")
    state = _STATES.get(status) if isinstance(status, str) else None
    if state is None:
        raise ProviderError(f"replicate: unknown prediction status {status!r}", retryable=False)
    raw = dict(prediction)
    if state is JobState.FAILED:
        error = prediction.get("error")
        message = error if isinstance(error, str) and error else json.dumps(error)
        return Outcome(
            request_id=request_id,
            state=state,
            error=message if error else "prediction failed",
            raw=raw,
        )
    if state is not JobState.SUCCEEDED:
        return Outcome(request_id=request_id, state=state, raw=raw)
    outputs = output_refs(prediction.get("output"))
    if not outputs:
        removed = " (data_removed)" if prediction.get("data_removed") else ""
        return Outcome(
            request_id=request_id,
            state=JobState.FAILED,
            error=f"replicate: the prediction succeeded without an image output{removed}",
            raw=raw,
        )
    input_ = prediction.get("input")
    seed = input_.get("seed") if isinstance(input_, Mapping) else None
    return Outcome(
        request_id=request_id,
        state=state,
        outputs=outputs,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        raw=raw,
    )


def output_refs(output: Any) -> tuple[OutputRef, ...]:
    """Return the image references in ``output``: a URL, a ``data:`` URI, or a list of them."""
    items = output if isinstance(output, list) else [output]
    refs = []
    for item in items:
        if not isinstance(item, str):
            continue
        if item.startswith("data:"):
            media_type = item[5:].split(";", 1)[0].split(",", 1)[0]
            refs.append(OutputRef(url=item, content_type=media_type))
        elif item.startswith(("https://", "http://")):
            path = urlsplit(item).path.lower()
            extension = path[path.rfind(".") :] if "." in path.rsplit("/", 1)[-1] else ""
            refs.append(OutputRef(url=item, content_type=_EXTENSION_TYPES.get(extension, "")))
    return tuple(refs)
