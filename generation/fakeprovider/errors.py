"""Provides error answers in each provider's own format (fal, Replicate, OpenAI, the CDN)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from generation.fakeprovider.http import Response, json_response

# fal's ingress answers 502-504 with an nginx page and no x-fal-request-id; fal_client retries
# exactly those, so the fake's outages look the same.
_NGINX_PAGE = (
    "<html>\r\n<head><title>{code} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{code} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
FAULT_STATUS = {"rate_limit": 429, "server_error": 500, "unavailable": 503}


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def retry_after_value(seconds: float) -> str:
    """Delta-seconds; a fraction is kept (not standard HTTP) so tests can use short waits."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def provider_error(
    provider: str,
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    body: Any = None,
) -> Response:
    """An error answer shaped like ``provider``'s; ``body`` overrides the JSON body."""
    message = message or phrase(status)
    headers = {"Retry-After": retry_after_value(retry_after)} if retry_after is not None else {}
    if body is not None:
        response = json_response(status, body, headers)
    elif provider == "fal":
        response = _fal_error(status, message, headers)
    elif provider == "replicate":
        response = _replicate_error(status, message, headers, retry_after)
    elif provider == "openai":
        response = json_response(status, {"error": _openai_error(status, message)}, headers)
    elif provider in ("files", "other"):
        response = Response(status, message.encode(), headers, content_type="text/plain")
    else:
        response = json_response(status, {"detail": message}, headers)
    return response


def _fal_error(status: int, message: str, headers: dict[str, str]) -> Response:
    if status in (502, 503, 504):
        page = _NGINX_PAGE.format(code=status, phrase=phrase(status))
        return Response(status, page.encode(), headers, content_type="text/html")
    return json_response(status, {"detail": message}, headers)


def _replicate_error(
    status: int, message: str, headers: dict[str, str], retry_after: float | None
) -> Response:
    if status == 429:
        wait = max(1, round(retry_after or 1))
        detail = f"Request was throttled. Your rate limit resets in ~{wait}s."
        return json_response(status, {"detail": detail}, {**headers, "ratelimit-remaining": "0"})
    return json_response(
        status, {"title": phrase(status), "detail": message, "status": status}, headers
    )


def _openai_error(status: int, message: str) -> dict[str, Any]:
    kinds = {
        401: ("invalid_request_error", "invalid_api_key"),
        429: ("requests", "rate_limit_exceeded"),
        500: ("server_error", None),
        503: ("server_error", None),
    }
    kind, code = kinds.get(status, ("invalid_request_error", None))
    return {"message": message, "type": kind, "param": None, "code": code}


def fault_message(provider: str, status: int) -> str:
    messages = {
        ("fal", 429): "Rate limit exceeded",
        ("fal", 401): "Invalid or missing fal API key (expected 'Authorization: Key <key>')",
        ("replicate", 401): "You did not pass a valid authentication token",
        ("openai", 401): "Incorrect API key provided.",
        ("openai", 429): "Rate limit reached for images per minute. Please try again later.",
        ("openai", 500): "The server had an error while processing your request.",
        ("openai", 503): "The engine is currently overloaded, please try again later.",
    }
    return messages.get((provider, status), phrase(status))


def malformed(body: bytes) -> bytes:
    """The first half of a JSON body: syntactically invalid whatever the original was."""
    half = body[: len(body) // 2]
    try:
        json.loads(half)
    except ValueError:
        return half
    return b'{"status": '
