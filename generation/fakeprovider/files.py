"""Provides the fake CDN endpoint for output images, and its download-hardening faults."""

from __future__ import annotations

import threading
import time
from typing import BinaryIO

from generation.fakeprovider.errors import provider_error
from generation.fakeprovider.faults import Fault
from generation.fakeprovider.http import Request, Response, Router, Stream
from generation.fakeprovider.images import gzip_bomb, huge_png, truncated
from generation.fakeprovider.runtime import Runtime

CHUNK = 64 * 1024
DRIP_TICK = 0.1


class FilesApi:
    """``GET /files/{name}``: rendered images, unless a file fault says otherwise."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def register(self, router: Router) -> None:
        name = r"(?P<name>[A-Za-z0-9_-]+\.(?:png|jpg|webp))"
        router.add(rf"^/files/{name}$", "GET", "files.file", self.file)
        router.add(r"^/files/_loop/(?P<hop>\d+)$", "GET", "files.loop", self.loop)

    def loop(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        """An endless redirect chain (each hop points at the next)."""
        target = f"{self.rt.public_url}/files/_loop/{int(params['hop']) + 1}"
        return Response(302, b"", {"Location": target}, content_type=None)

    def file(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        name = params["name"]
        spec = self.rt.files.spec(name)
        if spec is None or (spec.expires_at is not None and self.rt.now() > spec.expires_at):
            return provider_error("files", 404, "Not Found")
        early = self._payload_fault(fault)
        if early is not None:
            return early
        content = self.rt.files.content(name) or b""
        headers = {"Cache-Control": "public, max-age=3600"}
        if fault.name == "truncated_image":
            return Response(200, truncated(content), headers, content_type=spec.content_type)
        if fault.name == "short_body":
            half = content[: len(content) // 2]
            return _streamed(spec.content_type, len(content), lambda out, stop: out.write(half))
        if fault.name == "slow_drip":
            rate, cap = self.rt.config.drip_rate, self.rt.config.hang_seconds

            def drip(out: BinaryIO, stop: threading.Event) -> None:
                _drip(out, stop, content, rate, cap)

            return _streamed(spec.content_type, len(content), drip)
        return Response(200, content, headers, content_type=spec.content_type)

    def _payload_fault(self, fault: Fault) -> Response | None:
        """Faults that do not need the real image bytes at all."""
        config = self.rt.config
        if fault.name == "redirect":
            target = fault.target or config.redirect_target
            return Response(302, b"", {"Location": target}, content_type=None)
        if fault.name == "redirect_loop":
            target = f"{self.rt.public_url}/files/_loop/1"
            return Response(302, b"", {"Location": target}, content_type=None)
        if fault.name == "huge_stream":
            size = config.huge_bytes
            return Response(
                200,
                headers={"Transfer-Encoding": "chunked"},
                content_type="image/png",
                stream=lambda out, stop: _chunked_zeros(out, stop, size),
            )
        if fault.name == "gzip_bomb":
            body = gzip_bomb(config.bomb_bytes)
            return Response(200, body, {"Content-Encoding": "gzip"}, content_type="image/png")
        if fault.name == "length_mismatch":
            size = config.mismatch_bytes
            return _streamed("image/png", 100, lambda out, stop: _zeros(out, stop, size))
        if fault.name == "huge_image":
            return Response(200, huge_png(config.bomb_image_side), content_type="image/png")
        return None


def _streamed(content_type: str, declared: int, stream: Stream) -> Response:
    return Response(
        200, headers={"Content-Length": str(declared)}, content_type=content_type, stream=stream
    )


def _zeros(out: BinaryIO, stop: threading.Event, size: int) -> None:
    chunk = bytes(CHUNK)
    sent = 0
    while sent < size and not stop.is_set():
        piece = chunk[: min(CHUNK, size - sent)]
        out.write(piece)
        sent += len(piece)


def _chunked_zeros(out: BinaryIO, stop: threading.Event, size: int) -> None:
    chunk = bytes(CHUNK)
    sent = 0
    while sent < size and not stop.is_set():
        piece = chunk[: min(CHUNK, size - sent)]
        out.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        sent += len(piece)
    out.write(b"0\r\n\r\n")


def _drip(out: BinaryIO, stop: threading.Event, content: bytes, rate: float, cap: float) -> None:
    """Send ``rate`` bytes per second until done or ``cap`` seconds have passed."""
    deadline = time.monotonic() + cap
    per_tick = max(1, int(rate * DRIP_TICK))
    tick = per_tick / rate
    sent = 0
    while sent < len(content) and time.monotonic() < deadline:
        out.write(content[sent : sent + per_tick])
        out.flush()
        sent += per_tick
        if stop.wait(tick):
            return
