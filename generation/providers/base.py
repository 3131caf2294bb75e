"""Provides the contract every image provider implements, and the values it exchanges."""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class LoraSpec:
    path: str
    scale: float = 1.0
    trigger: str = ""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str
    width: int
    height: int
    seed: int
    model: str
    palette: tuple[str, ...]
    loras: tuple[LoraSpec, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EditRequest:
    """Work on an existing image (a remote refinement step): upscale, face restore, outpaint.

    ``image_url`` is where the provider reads the input (a ``data:`` URI or an https URL);
    ``params`` are the step's task parameters (``scale``, ``fidelity``, ``aspect``...), which
    each adapter maps onto its model's input.
    """

    task: str
    image_url: str
    model: str
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationResult:
    image_bytes: bytes
    content_type: str
    width: int
    height: int
    provider: str
    model: str
    sent: Mapping[str, Any]
    request_id: str = ""
    cost: Decimal = Decimal("0")
    nsfw: bool | None = None


class ProviderError(Exception):
    """A provider could not produce an image.

    ``retryable`` tells the caller whether the same request may succeed later (timeouts,
    rate limits, 5xx) or will fail again (bad input, content refused, misconfiguration).
    ``retry_after`` is the provider's own wait in seconds (``Retry-After``), if it gave one.
    ``reached`` says whether the request may have reached the provider: a submit that failed
    with ``reached=False`` (connection refused, 429) can be sent again safely; one with
    ``reached=True`` (a timeout after sending) must be reconciled by request id instead.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        reached: bool = True,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.reached = reached
        self.status_code = status_code


class WebhookVerificationError(Exception):
    """An inbound webhook is not authentic or not fresh; the message says why."""


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class OutputRef:
    """Where a finished image can be fetched: an https URL or a ``data:`` URI."""

    url: str
    content_type: str = ""
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Submission:
    """What a provider answered to a submit; persisted before anything else happens.

    ``urls`` keeps the provider's own status/result/cancel URLs exactly as returned (fal says
    never to rebuild them). ``sent`` is ``{"method", "url", "body", "not_sent"}``: the exact
    request (without credentials) and what the request asked for that the model cannot take.
    """

    request_id: str
    urls: Mapping[str, str]
    sent: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """The state of a submitted request, from a poll or a webhook."""

    request_id: str
    state: JobState
    outputs: tuple[OutputRef, ...] = ()
    error: str = ""
    seed: int | None = None
    nsfw: bool | None = None
    # True when the state is final but the outputs must still be fetched with ``poll`` (fal
    # webhooks with ``payload_error``, say).
    needs_fetch: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified inbound webhook: ``delivery_id`` is the provider's id for deduplication."""

    delivery_id: str
    outcome: Outcome


class ImageProvider(abc.ABC):
    """Base class for image providers, chosen by name through ``BRANDFORGE_PROVIDERS``.

    Subclasses set ``name`` (the registry key recorded on each asset) and
    ``default_model`` (used when a request names no model), and implement ``generate``.
    Instances are created per call by the registry with the options configured for the
    provider and an injected ``httpx.Client`` (``client``); adapters never touch the
    database and never create their own HTTP client when one is given.
    """

    name: ClassVar[str]
    default_model: ClassVar[str]
    is_async: ClassVar[bool] = False

    def __init__(self, *, client: httpx.Client | None = None, **options: Any) -> None:
        self.client = client
        self.options = options

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Return the image for ``request``, or raise ``ProviderError``.

        Synchronous providers implement this and return when the image bytes are in hand.
        It must not touch the database: callers persist the result. ``sent`` on the result
        must be exactly what the provider was asked (the payload a remote API received),
        because it is recorded verbatim in the asset's recipe.
        """
        raise NotImplementedError(".generate() must be overridden")


class AsyncImageProvider(ImageProvider):
    """A provider with a queue: submit returns at once, completion comes later.

    The engine calls ``submit`` (then persists the ``Submission``), learns of completion from a
    webhook verified by ``verify_webhook`` or from ``poll``, and downloads the outputs itself
    through the SSRF-safe client. Every method raises ``ProviderError`` on failure.
    """

    is_async = True

    def generate(self, request: GenerationRequest) -> GenerationResult:
        raise ProviderError(f"{self.name} is asynchronous: use submit() and poll()")

    @abc.abstractmethod
    def submit(self, request: GenerationRequest, *, webhook_url: str | None) -> Submission:
        """Send ``request``; return the provider's id and URLs for it."""

    def submit_edit(self, request: EditRequest, *, webhook_url: str | None) -> Submission:
        """Send an edit of an existing image; providers without edit models refuse it."""
        raise ProviderError(
            f"{self.name} has no {request.task} model", retryable=False, reached=False
        )

    def edit_model(self, task: str) -> str:
        """The model used for ``task`` when a step names none ("" when there is none)."""
        return ""

    @abc.abstractmethod
    def poll(self, submission: Submission) -> Outcome:
        """Return the current state; for a finished request, with its outputs."""

    @abc.abstractmethod
    def cancel(self, submission: Submission) -> None:
        """Ask the provider to stop the request (best effort)."""

    @abc.abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check the signature over the raw ``body``; raise ``WebhookVerificationError``.

        Raises ``ProviderError`` when the keys or secret needed to verify could not be fetched
        (the caller answers 503 so that the provider delivers again).
        """
