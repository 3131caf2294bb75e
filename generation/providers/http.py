"""Provides the HTTP plumbing shared by the remote provider adapters: sending, error mapping."""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from generation.providers.base import ProviderError

# Used only when no client is injected. The engine always injects one (with its own
# timeouts and transport policy), so this matters for scripts and the shell.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)

# Statuses after which the same request may succeed later.
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
# Statuses that say the request was refused, not acted upon (``reached=False``): a timeout or
# rate limit before starting, and a gateway that found no healthy upstream (502) or an
# unavailable service (503). A 504 is different: the upstream may be working on it.
NOT_REACHED_STATUSES = frozenset({408, 429, 502, 503})

_DETAIL_LIMIT = 500

# Transport failures after which the request surely never reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def default_client() -> httpx.Client:
    """Return a plain client for adapters built without one (never the case in the engine)."""
    return httpx.Client(timeout=DEFAULT_TIMEOUT)


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    provider: str,
    submit: bool,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and return the response, whatever its status.

    Transport failures become ``ProviderError(retryable=True)``. ``reached`` is False only
    when the request surely never left (connection refused or timed out, no pooled
    connection). Any later failure (read timeout, dropped connection, write error) leaves
    ``reached=True``: on a submit (``submit=True``) the provider may have created the job,
    so the engine must reconcile by id instead of sending it again.
    """
    try:
        return client.request(method, url, **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ProviderError(
            f"{provider}: cannot send to {url!r}: {exc}", retryable=False, reached=False
        ) from exc
    except _NOT_SENT as exc:
        raise ProviderError(
            f"{provider}: could not connect ({type(exc).__name__}: {exc})",
            retryable=True,
            reached=False,
        ) from exc
    except httpx.RequestError as exc:
        # Read/write timeouts, dropped connections, undecodable bodies: all after sending.
        what = "the submit may have been received" if submit else "no answer"
        raise ProviderError(
            f"{provider}: {what} ({type(exc).__name__}: {exc})",
            retryable=True,
            reached=True,
        ) from exc


def raise_for_provider(response: httpx.Response, *, provider: str) -> None:
    """Raise ``ProviderError`` for any non-2xx response; return None for a 2xx one.

    408, 429, 502, 503, 504 and every other 5xx are retryable, with ``retry_after`` from the
    ``Retry-After`` header (seconds or an HTTP date); 408 and 429 also set ``reached=False``.
    Other statuses are not retryable. The message carries the provider's own explanation
    (fal ``detail``, Replicate problem details, OpenAI ``error.message``).
    """
    if response.is_success:
        return
    status = response.status_code
    body = _json_or_none(response)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    if status == 429 and _quota_exhausted(body):
        # OpenAI answers 429 when the account has no credit left; waiting will not help.
        retryable = False
    raise ProviderError(
        f"{provider}: HTTP {status}: {error_detail(response, body)}",
        retryable=retryable,
        retry_after=retry_after(response) if retryable else None,
        reached=status not in NOT_REACHED_STATUSES,
        status_code=status,
    )


def json_object(response: httpx.Response, *, provider: str) -> dict[str, Any]:
    """Return the body of a 2xx response as a JSON object.

    A body that is not a JSON object (an HTML page from a proxy, a truncated reply) is
    treated as a transient fault: ``ProviderError(retryable=True)``.
    """
    body = _json_or_none(response)
    if not isinstance(body, dict):
        raise ProviderError(
            f"{provider}: HTTP {response.status_code} answer is not a JSON object: "
            f"{_snippet(response.text)!r}",
            retryable=True,
            status_code=response.status_code,
        )
    return body


def request_json(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    provider: str,
    submit: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """``send``, then ``raise_for_provider``, then ``json_object``."""
    response = send(client, method, url, provider=provider, submit=submit, **kwargs)
    raise_for_provider(response, provider=provider)
    return json_object(response, provider=provider)


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Return ``Retry-After`` in seconds (never negative), or None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def error_detail(response: httpx.Response, body: Any = None) -> str:
    """Return the provider's explanation of an error response, as one line."""
    if body is None:
        body = _json_or_none(response)
    detail = detail_from(body) if body is not None else ""
    if not detail:
        detail = _snippet(response.text) or response.reason_phrase or "no detail"
    error_type = response.headers.get("x-fal-error-type") or (
        body.get("error_type") if isinstance(body, dict) else None
    )
    if isinstance(error_type, str) and error_type and error_type not in detail:
        detail = f"{detail} ({error_type})"
    return _snippet(detail)


def apply_params(
    base: Mapping[str, Any], params: Mapping[str, Any], *, protected: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge ``params`` over ``base``; return the merged body and the params refused.

    A ``None`` value removes the key (so a rule can drop a default the model does not take).
    Keys in ``protected`` are derived from the request's own fields (prompt, seed, size...):
    a param may not replace them, or the recipe would contradict what was sent.
    """
    protected = frozenset(protected)
    merged = dict(base)
    refused: dict[str, Any] = {}
    for key, value in params.items():
        if key in protected:
            refused[key] = value
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged, refused


def detail_from(body: Any) -> str:
    """Return the explanation in a parsed error body (fal, Replicate or OpenAI shape), or ""."""
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]  # OpenAI
    detail = body.get("detail")
    if isinstance(detail, list):
        return _validation_errors(detail)  # fal / FastAPI 422
    for key in ("detail", "title", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _validation_errors(items: list[Any]) -> str:
    parts = []
    for item in items:
        if isinstance(item, dict):
            loc = item.get("loc")
            where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
            message = str(item.get("msg", ""))
            parts.append(f"{where}: {message}" if where else message)
        else:
            parts.append(str(item))
    return "; ".join(parts)


def _quota_exhausted(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == "insufficient_quota"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def redact_data_uris(value: Any) -> Any:
    """Return ``value`` with every ``data:`` URI replaced by its type, size and digest.

    What was sent is kept in each asset's recipe; an inline input image would put megabytes of
    base64 there, while its digest still identifies it exactly.
    """
    if isinstance(value, str) and value.startswith("data:"):
        header, _, payload = value.partition(",")
        digest = hashlib.sha256(payload.encode()).hexdigest()
        return f"{header},<{len(payload)} characters, sha256 {digest}>"
    if isinstance(value, Mapping):
        return {key: redact_data_uris(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data_uris(item) for item in value]
    return value
