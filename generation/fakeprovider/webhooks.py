"""Provides outbound webhook delivery: signed per attempt, retried with backoff, ordered per job."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.scheduler import Scheduler
from generation.fakeprovider.stats import Stats

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = 60.0


@dataclass
class Delivery:
    """One webhook event; the body is built once (lazily, off the timer thread) and kept.

    ``sign`` returns fresh signature headers per attempt (a new timestamp each time), while
    ``msg_id`` stays the same across retries of this event.
    """

    job_id: str
    event: str
    url: str
    build: Callable[[], bytes]
    sign: Callable[[bytes], dict[str, str]]
    msg_id: str = ""
    body: bytes | None = None
    attempt: int = 0


class WebhookSender:
    """Delivers webhooks from a small thread pool; retries are timers, not sleeping threads.

    Events of one job go out one after another (start before completed), as a provider's
    per-prediction sender would; a retrying event holds back the later ones of its job.
    """

    def __init__(
        self, config: Callable[[], FakeConfig], scheduler: Scheduler, stats: Stats
    ) -> None:
        self._config = config
        self._scheduler = scheduler
        self._stats = stats
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Delivery]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._client: httpx.Client | None = None
        self._stopped = False

    def start(self) -> None:
        workers = self._config().webhook_workers
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="fakeprovider-webhook")
        limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers)
        # Redirects are not followed: Replicate treats a 301 from the receiver as a failure.
        self._client = httpx.Client(limits=limits, follow_redirects=False)

    def stop(self) -> None:
        self._stopped = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()

    def send(self, delivery: Delivery) -> None:
        with self._lock:
            queue = self._queues.get(delivery.job_id)
            if queue is not None:
                queue.append(delivery)
                return
            self._queues[delivery.job_id] = deque()
        self._submit(delivery)

    def pending(self) -> int:
        with self._lock:
            return sum(len(queue) + 1 for queue in self._queues.values())

    def _submit(self, delivery: Delivery) -> None:
        if self._stopped or self._executor is None:
            return
        try:
            self._executor.submit(self._attempt, delivery)
        except RuntimeError:  # the executor shut down between the check and the submit
            return

    def _attempt(self, delivery: Delivery) -> None:
        config = self._config()
        try:
            if delivery.body is None:
                delivery.body = delivery.build()
            status, error, retry_after = self._post(delivery, config)
        except Exception:  # building or signing failed: a fake-provider bug, not a retry case
            logger.exception("fake provider could not deliver %s webhook", delivery.event)
            self._finish(delivery)
            return
        ok = status is not None and 200 <= status < 300
        self._stats.record_delivery(
            "succeeded" if ok else "failed_attempt",
            {
                "t": time.time(),
                "job_id": delivery.job_id,
                "event": delivery.event,
                "url": delivery.url,
                "attempt": delivery.attempt,
                "msg_id": delivery.msg_id,
                "status": status,
                "error": error,
            },
        )
        # 410 Gone means the receiver wants no more deliveries (Standard Webhooks).
        if ok or status == 410 or delivery.attempt >= config.webhook_retries:
            if not ok:
                self._stats.record_delivery("gave_up")
            self._finish(delivery)
            return
        delay = config.webhook_backoff * (2**delivery.attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        delivery.attempt += 1
        self._scheduler.call_later(min(delay, MAX_RETRY_DELAY), self._submit, delivery)

    def _post(self, delivery: Delivery, config: FakeConfig) -> tuple[int | None, str, float | None]:
        assert self._client is not None and delivery.body is not None
        headers = {"Content-Type": "application/json", "User-Agent": "fakeprovider-webhook/1.0"}
        headers.update(delivery.sign(delivery.body))
        self._stats.record_delivery("attempted")
        try:
            response = self._client.post(
                delivery.url, content=delivery.body, headers=headers, timeout=config.webhook_timeout
            )
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}", None
        return response.status_code, "", _retry_after(response.headers.get("retry-after"))

    def _finish(self, delivery: Delivery) -> None:
        with self._lock:
            queue = self._queues.get(delivery.job_id)
            following = queue.popleft() if queue else None
            if following is None:
                self._queues.pop(delivery.job_id, None)
        if following is not None:
            self._submit(following)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
