"""Provides signature checks for inbound provider webhooks: fal Ed25519, Standard Webhooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardWebhookError

from generation.providers.base import ProviderError, WebhookVerificationError
from generation.providers.http import json_object, raise_for_provider, send

FAL_HEADERS = (
    "x-fal-webhook-request-id",
    "x-fal-webhook-user-id",
    "x-fal-webhook-timestamp",
    "x-fal-webhook-signature",
)
# fal: "Do not cache longer than 24 hours since they can change".
JWKS_MAX_AGE_LIMIT = 24 * 3600
JWKS_REFETCH_INTERVAL = 60.0


class SignatureMismatchError(WebhookVerificationError):
    """The headers are well formed and fresh, but no known key produced the signature.

    Only this failure is worth a JWKS refetch: the sender may have rotated its key.
    """


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return the headers with lower-case names (Django's ``request.headers`` is Title-Case)."""
    return {str(name).lower(): value for name, value in headers.items()}


def verify_fal_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    jwks: Mapping[str, Any],
    user_id: str | None,
    now: float | None = None,
    tolerance: int = 300,
) -> None:
    """Check a fal webhook's Ed25519 signature over the raw ``body``; raise if it is not valid.

    The signed message is ``request id, user id, timestamp, sha256(body) hex`` joined by
    newlines; the ``X-Fal-Webhook-Signature`` header is its signature in hex, made with any
    one of the ``jwks`` keys. The timestamp must be within ``tolerance`` seconds of ``now``,
    and the user id must equal ``user_id`` when one is pinned. Raises
    ``WebhookVerificationError`` (``SignatureMismatchError`` when only the signature fails).
    """
    lowered = lower_headers(headers)
    missing = [name for name in FAL_HEADERS if not lowered.get(name)]
    if missing:
        raise WebhookVerificationError(f"fal webhook: missing header(s) {', '.join(missing)}")
    request_id, sender, timestamp, signature_hex = (lowered[name] for name in FAL_HEADERS)

    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError(
            f"fal webhook: timestamp {timestamp!r} is not an integer"
        ) from None
    skew = (time.time() if now is None else now) - sent_at
    if skew > tolerance:
        raise WebhookVerificationError(f"fal webhook: timestamp is {int(skew)} s old (stale)")
    if -skew > tolerance:
        raise WebhookVerificationError(f"fal webhook: timestamp is {int(-skew)} s in the future")

    if user_id is not None and sender != user_id:
        raise WebhookVerificationError(f"fal webhook: user id {sender!r} is not ours")

    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise WebhookVerificationError("fal webhook: signature is not hex") from None
    if len(signature) != 64:
        raise WebhookVerificationError("fal webhook: signature is not 64 bytes")

    keys = ed25519_keys(jwks)
    if not keys:
        raise SignatureMismatchError("fal webhook: the JWKS holds no usable Ed25519 key")
    message = "\n".join([request_id, sender, timestamp, hashlib.sha256(body).hexdigest()]).encode(
        "utf-8"
    )
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return
    raise SignatureMismatchError("fal webhook: signature does not match any JWKS key")


def ed25519_keys(jwks: Mapping[str, Any]) -> list[Ed25519PublicKey]:
    """Return the JWKS's Ed25519 public keys; malformed and foreign keys are skipped."""
    keys = []
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, Mapping):
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            continue
        try:
            # JWK base64url is unpadded (RFC 7515 §2); urlsafe_b64decode insists on padding.
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            continue
    return keys


class JwksCache:
    """Holds one JWKS document, fetched with the caller's client and kept at most ``max_age``.

    ``max_age`` is capped at 24 h. On a signature miss, ``verify`` refetches once (the key
    may have been rotated), but no more than once per ``refetch_interval`` seconds, so a
    flood of forged deliveries cannot turn into a flood of fetches. Safe to share between
    threads; ``jwks_cache_for`` keeps one per URL for the process.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age: float = 3600.0,
        refetch_interval: float = JWKS_REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.max_age = min(float(max_age), JWKS_MAX_AGE_LIMIT)
        self.refetch_interval = refetch_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks: dict[str, Any] | None = None
        self._fetched_at: float | None = None

    def get(self, client: httpx.Client) -> dict[str, Any]:
        """Return the cached JWKS, fetching it when there is none or it is too old."""
        with self._lock:
            if self._jwks is None or self._age() >= self.max_age:
                self._fetch(client)
            assert self._jwks is not None
            return self._jwks

    def refresh(self, client: httpx.Client) -> bool:
        """Fetch again unless the last fetch is too recent; return whether it fetched."""
        with self._lock:
            if self._fetched_at is not None and self._age() < self.refetch_interval:
                return False
            self._fetch(client)
            return True

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        client: httpx.Client,
        user_id: str | None,
        now: float | None = None,
        tolerance: int = 300,
    ) -> None:
        """``verify_fal_webhook`` with the cached keys, refetching once on a signature miss.

        A failed fetch raises ``ProviderError`` (retryable when the fault is), not
        ``WebhookVerificationError``: the delivery may be authentic, so the webhook view
        should answer 5xx and let fal deliver it again.
        """
        options = {"user_id": user_id, "now": now, "tolerance": tolerance}
        try:
            verify_fal_webhook(headers, body, jwks=self.get(client), **options)
        except SignatureMismatchError:
            if not self.refresh(client):
                raise
            verify_fal_webhook(headers, body, jwks=self.get(client), **options)

    def _age(self) -> float:
        return float("inf") if self._fetched_at is None else self._clock() - self._fetched_at

    def _fetch(self, client: httpx.Client) -> None:
        response = send(client, "GET", self.url, provider="fal jwks", submit=False)
        raise_for_provider(response, provider="fal jwks")
        jwks = json_object(response, provider="fal jwks")
        if not isinstance(jwks.get("keys"), list):
            raise ProviderError(f"fal jwks: {self.url} has no 'keys' list", retryable=True)
        self._jwks = jwks
        self._fetched_at = self._clock()


_jwks_caches: dict[str, JwksCache] = {}
_jwks_caches_lock = threading.Lock()


def jwks_cache_for(url: str, *, max_age: float = 3600.0) -> JwksCache:
    """Return the process-wide cache for ``url`` (adapter instances are made per call)."""
    with _jwks_caches_lock:
        cache = _jwks_caches.get(url)
        if cache is None:
            cache = _jwks_caches[url] = JwksCache(url, max_age=max_age)
        return cache


def verify_standard_webhook(headers: Mapping[str, str], body: bytes, *, secret: str) -> None:
    """Check a Standard Webhooks (HMAC-SHA256, ``v1,<base64>``) signature over the raw ``body``.

    Uses the ``standardwebhooks`` library, whose timestamp tolerance is fixed at ±5 minutes.
    Raises ``WebhookVerificationError``; a malformed ``secret`` raises a non-retryable
    ``ProviderError`` because it is our misconfiguration, not the sender's fault.
    """
    try:
        webhook = Webhook(secret)
    except (EmptyWebhookSecretError, ValueError):
        raise ProviderError("webhook secret is empty or not base64", retryable=False) from None
    try:
        webhook.verify(body, lower_headers(headers), json_parse=False)
    except StandardWebhookError as exc:
        raise WebhookVerificationError(f"standard webhook: {exc}") from None
    except ValueError as exc:
        # A signature entry without a comma breaks the library's tuple unpacking, bad base64
        # raises binascii.Error, a non-UTF-8 body UnicodeDecodeError: all ValueErrors.
        raise WebhookVerificationError(
            f"standard webhook: malformed signature header or body ({type(exc).__name__})"
        ) from None
