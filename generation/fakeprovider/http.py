"""Provides the fake's HTTP plumbing: request and response values, routing and the server."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

Stream = Callable[[BinaryIO, threading.Event], None]


class BadRequest(Exception):
    """The request body is not what the endpoint accepts."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"body is not valid JSON: {exc}") from exc


@dataclass
class Response:
    """An answer; ``stream`` writes the body itself (its builder sets the framing headers).

    ``action`` is ``hang`` (hold the connection ``hold`` seconds, then close it unanswered)
    or ``drop`` (close at once without answering).
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"
    stream: Stream | None = None
    action: str = ""
    hold: float = 0.0
    close: bool = False


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(payload).encode("utf-8"), dict(headers or {}))


Handler = Callable[..., Response]


@dataclass
class _Route:
    pattern: re.Pattern[str]
    methods: dict[str, tuple[str, Handler]]


class Router:
    """Maps method and path to ``(endpoint name, handler, path params)``.

    A path that matches some route but not for this method resolves to ``method_not_allowed``,
    as a real service answers 405 (fal does, for a status URL polled with the model subpath).
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, pattern: str, method: str, endpoint: str, handler: Handler) -> None:
        for route in self._routes:
            if route.pattern.pattern == pattern:
                route.methods[method] = (endpoint, handler)
                return
        self._routes.append(_Route(re.compile(pattern), {method: (endpoint, handler)}))

    def resolve(self, method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
        path_matched = False
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            path_matched = True
            lookup = "GET" if method == "HEAD" else method
            if lookup in route.methods:
                endpoint, handler = route.methods[lookup]
                return endpoint, handler, match.groupdict()
        return ("method_not_allowed" if path_matched else "not_found"), None, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeprovider/1.0"
    # Idle keep-alive connections are closed after this, so their threads end.
    timeout = 120
    server: FakeHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
        # would add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        try:
            request = self._read_request()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            response = self.server.app(request)
        except Exception:  # a fake-provider bug must still answer, or the client hangs
            logger.exception("fake provider handler failed for %s %s", self.command, self.path)
            response = json_response(500, {"detail": "fake provider internal error"})
        try:
            self._write(response)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    def _read_request(self) -> Request:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: Response) -> None:
        if response.action == "hang":
            self.server.stop_event.wait(response.hold)
            self.close_connection = True
            return
        if response.action == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
        close = response.close or response.stream is not None
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.stream is not None:
            response.stream(self.wfile, self.server.stop_event)
        else:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class FakeHTTPServer(ThreadingHTTPServer):
    """A thread per connection; waiting jobs hold none (their state is read off the clock)."""

    daemon_threads = True
    allow_reuse_address = True
    # Thousands of clients may connect at once in load tests; the default backlog is 5.
    request_queue_size = 4096

    def __init__(
        self,
        address: tuple[str, int],
        app: Callable[[Request], Response],
        stop_event: threading.Event,
        *,
        verbose: bool = False,
    ) -> None:
        self.app = app
        self.stop_event = stop_event
        self.verbose = verbose
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are expected here (timeouts, aborted downloads).
        if self.verbose:
            super().handle_error(request, client_address)
