"""Provides ``FakeProvider``: one local server speaking the fal, Replicate and OpenAI protocols."""

from __future__ import annotations

import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.control import ControlApi
from generation.fakeprovider.errors import FAULT_STATUS, fault_message, malformed, provider_error
from generation.fakeprovider.fal import FalApi
from generation.fakeprovider.faults import NO_FAULT, Fault
from generation.fakeprovider.files import FilesApi
from generation.fakeprovider.http import FakeHTTPServer, Handler, Request, Response, Router
from generation.fakeprovider.openai_images import OpenAIImagesApi
from generation.fakeprovider.replicate import ReplicateApi
from generation.fakeprovider.runtime import Runtime

AUTH_SCHEMES = {"fal": "Key", "replicate": "Bearer", "openai": "Bearer"}
# Public endpoints: the JWKS and the CDN need no credentials.
NO_AUTH = frozenset({"fal.jwks", "files.file", "files.loop"})
PRUNE_EVERY = 60.0


class FakeProvider:
    """A protocol-faithful stand-in for fal.ai, Replicate and OpenAI image generation.

    ``start()`` binds ``config.host:config.port`` (0 picks a free port) and returns the base
    URL; the fal API lives under ``/fal``, Replicate under ``/replicate``, OpenAI under
    ``/openai``, images under ``/files`` and the test harness under ``/_control``. Jobs hold
    no thread while they wait or "run": their timeline is fixed at submit and read off the
    clock, and webhooks go out from one timer thread and a small delivery pool.
    """

    def __init__(self, config: FakeConfig | None = None, **changes: Any) -> None:
        config = config or FakeConfig()
        self.runtime = Runtime(config.updated(changes) if changes else config)
        self.router = Router()
        self.fal = FalApi(self.runtime)
        self.replicate = ReplicateApi(self.runtime)
        for api in (
            ControlApi(self.runtime, self.reset),
            self.fal,
            self.replicate,
            OpenAIImagesApi(self.runtime),
            FilesApi(self.runtime),
        ):
            api.register(self.router)
        self._server: FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, *, verbose: bool = False) -> str:
        """Start serving in a background thread; return the base URL."""
        if self._server is not None:
            return self.base_url
        config = self.runtime.config
        self._server = FakeHTTPServer(
            (config.host, config.port), self, self.runtime.stop_event, verbose=verbose
        )
        host, port = self._server.server_address[:2]
        self.runtime.base_url = f"http://{_url_host(str(host))}:{port}"
        self.runtime.scheduler.start()
        self.runtime.webhooks.start()
        self.runtime.scheduler.call_later(PRUNE_EVERY, self._prune)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fakeprovider-http",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self.runtime.stop_event.set()
        self._server.shutdown()
        self._server.server_close()
        self.runtime.scheduler.stop()
        self.runtime.webhooks.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeProvider:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self, *, verbose: bool = False) -> None:
        """Start and block until interrupted (Ctrl-C), then stop."""
        self.start(verbose=verbose)
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    # -- addresses and keys --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.runtime.public_url

    @property
    def fal_url(self) -> str:
        return f"{self.base_url}/fal"

    @property
    def replicate_url(self) -> str:
        return f"{self.base_url}/replicate/v1"

    @property
    def openai_url(self) -> str:
        return f"{self.base_url}/openai/v1"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/fal/.well-known/jwks.json"

    def jwks(self) -> dict[str, Any]:
        return self.runtime.keys.jwks()

    @property
    def fal_public_key(self) -> Ed25519PublicKey:
        return self.runtime.keys.fal_public_key

    @property
    def fal_user_id(self) -> str:
        return self.runtime.config.fal_user_id

    @property
    def replicate_secret(self) -> str:
        return self.runtime.keys.replicate_secret

    def sign_fal_webhook(
        self,
        body: bytes,
        request_id: str,
        *,
        user_id: str | None = None,
        timestamp: int | None = None,
    ) -> dict[str, str]:
        """fal webhook headers for ``body``: lets tests forge stale, future or foreign variants."""
        user = self.fal_user_id if user_id is None else user_id
        return self.runtime.keys.fal_headers(body, request_id, user, timestamp)

    def sign_replicate_webhook(
        self, body: bytes, msg_id: str, *, timestamp: int | None = None
    ) -> dict[str, str]:
        return self.runtime.keys.replicate_headers(body, msg_id, timestamp)

    # -- harness -------------------------------------------------------------------------

    @property
    def config(self) -> FakeConfig:
        return self.runtime.config

    def configure(self, **changes: Any) -> FakeConfig:
        return self.runtime.update_config(changes)

    def push_script(self, *entries: dict[str, Any]) -> None:
        """Queue forced answers, e.g. ``{"match": "submit", "status": 429, "retry_after": 2}``."""
        self.runtime.faults.push(entries)

    def stats(self, *, log: bool = True) -> dict[str, Any]:
        snapshot = self.runtime.stats.snapshot(log=log)
        snapshot["jobs"] = self.runtime.jobs.counts(self.runtime.now())
        return snapshot

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Logged requests, oldest first; ``endpoint`` filters by name, provider or operation."""
        return self.runtime.stats.requests(endpoint)

    def deliveries(self) -> list[dict[str, Any]]:
        return self.runtime.stats.deliveries()

    def reset(self) -> None:
        """Forget jobs, files, stats and timers; reload the configured script and seed."""
        rt = self.runtime
        rt.scheduler.clear()
        rt.webhooks.clear()
        rt.jobs.clear()
        rt.files.clear()
        rt.stats.reset(rt.config.stats_log_size)
        rt.faults.reset(rt.config.seed, rt.config.script)
        rt.reseed()
        if self._server is not None:
            rt.scheduler.call_later(PRUNE_EVERY, self._prune)

    # -- request handling ----------------------------------------------------------------

    def __call__(self, request: Request) -> Response:
        arrived_mono, arrived_wall = time.monotonic(), time.time()
        endpoint, handler, params = self.router.resolve(request.method, request.path)
        if endpoint.startswith("control."):
            assert handler is not None
            return handler(request, params, NO_FAULT)
        provider = _provider_of(endpoint, request.path)
        response, label = self._answer(endpoint, provider, handler, request, params)
        self.runtime.stats.record_request(
            endpoint=endpoint if handler else f"{provider}.{endpoint}",
            method=request.method,
            path=request.path,
            status=response.status if not response.action else None,
            fault=label,
            arrived_mono=arrived_mono,
            arrived_wall=arrived_wall,
            duration=time.monotonic() - arrived_mono,
        )
        return response

    def _answer(
        self,
        endpoint: str,
        provider: str,
        handler: Handler | None,
        request: Request,
        params: dict[str, str],
    ) -> tuple[Response, str]:
        config = self.runtime.config
        if handler is None:
            status = 405 if endpoint == "method_not_allowed" else 404
            return provider_error(provider, status), ""
        if config.down:
            return provider_error(provider, 503, "Service Unavailable"), "down"
        scheme = AUTH_SCHEMES.get(provider)
        if scheme and endpoint not in NO_AUTH and not self.runtime.authorized(request, scheme):
            return provider_error(provider, 401, fault_message(provider, 401)), "unauthorized"
        fault = self.runtime.faults.draw(endpoint, config)
        return self._apply(fault, provider, handler, request, params), fault.label

    def _apply(
        self,
        fault: Fault,
        provider: str,
        handler: Handler,
        request: Request,
        params: dict[str, str],
    ) -> Response:
        config = self.runtime.config
        self.runtime.hold(fault.delay)
        status = FAULT_STATUS.get(fault.name) or (fault.status if not fault.name else None)
        if status is not None:
            retry_after = fault.retry_after
            if status == 429 and retry_after is None:
                retry_after = config.retry_after
            response = provider_error(
                provider,
                status,
                fault_message(provider, status),
                retry_after=retry_after,
                body=fault.body,
            )
            if not config.retry_after_header:
                response.headers.pop("Retry-After", None)
            return response
        if fault.name == "drop":
            return Response(0, action="drop")
        response = handler(request, params, fault)
        if fault.name == "hang":
            # Hang after the work is done: the request reached the provider, the answer never
            # comes back, so the client must reconcile rather than blindly resubmit.
            return Response(0, action="hang", hold=config.hang_seconds)
        if fault.name == "malformed":
            return Response(200, malformed(response.body), content_type="application/json")
        return response

    def _prune(self) -> None:
        rt = self.runtime
        for job in rt.jobs.prune(rt.now(), rt.config.job_retention):
            rt.files.forget(job.images)
        rt.files.prune(rt.now())
        rt.scheduler.call_later(PRUNE_EVERY, self._prune)


def _provider_of(endpoint: str, path: str) -> str:
    if "." in endpoint:
        return endpoint.split(".", 1)[0]
    first = path.strip("/").split("/", 1)[0]
    return first if first in ("fal", "replicate", "openai", "files") else "other"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - mapping a wildcard bind to a usable URL
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
