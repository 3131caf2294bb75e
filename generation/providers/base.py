"""Provides the contract every image provider implements, and the values it exchanges."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar


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
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ImageProvider(abc.ABC):
    """Base class for image providers, chosen by name through ``BRANDFORGE_PROVIDERS``.

    Subclasses set ``name`` (the registry key recorded on each asset) and
    ``default_model`` (used when a request names no model), and implement ``generate``.
    Instances are created per call by the registry, so a constructor must take no
    required arguments.
    """

    name: ClassVar[str]
    default_model: ClassVar[str]

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Return the image for ``request``, or raise ``ProviderError``.

        Synchronous providers implement this and return when the image bytes are in hand.
        It must not touch the database: callers persist the result. ``sent`` on the result
        must be exactly what the provider was asked (the payload a remote API received),
        because it is recorded verbatim in the asset's recipe.
        """
        raise NotImplementedError(".generate() must be overridden")
