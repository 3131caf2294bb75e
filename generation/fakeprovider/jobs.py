"""Provides the fake's jobs: timelines fixed at submit, so their state is read off the clock."""

from __future__ import annotations

import bisect
import heapq
import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
CANCELLED = "cancelled"


@dataclass
class Failure:
    """How a failed job answers: the result endpoint's HTTP status and body, and its message."""

    status: int
    body: Any
    error: str
    error_type: str | None = None


@dataclass
class Job:
    """One queued request; every time is ``time.monotonic()``.

    The whole timeline (queued until ``start_at``, running until ``done_at``) is drawn at
    submit, so no thread waits on a job: its phase is computed whenever someone asks.
    A cancel sets ``cancel_at``; a stalled job has ``done_at = inf``.
    """

    id: str
    provider: str
    app: str
    input: dict[str, Any]
    seed: int
    created: float
    start_at: float
    done_at: float
    images: list[str] = field(default_factory=list)
    failure: Failure | None = None
    nsfw: bool = False
    payload_error: bool = False
    duplicate_webhooks: bool = False
    webhook: str | None = None
    events: tuple[str, ...] = ()
    cancel_at: float | None = None
    cancel_status: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    notified: set[str] = field(default_factory=set)

    @property
    def end_at(self) -> float:
        """When the job reaches its terminal state (inf while it never will)."""
        if self.cancel_at is not None and self.cancel_at < self.done_at:
            return self.cancel_at
        return self.done_at

    @property
    def cancelled(self) -> bool:
        return self.cancel_at is not None and self.cancel_at < self.done_at

    def phase(self, now: float) -> str:
        if self.cancelled and now >= self.end_at:
            return CANCELLED
        if now < self.start_at:
            return QUEUED
        if now < self.done_at:
            return RUNNING
        return DONE

    def started(self) -> bool:
        """Whether it ever left the queue (a job cancelled while queued never started)."""
        return self.start_at < self.end_at

    def progress(self, now: float) -> float:
        """Fraction of the running time elapsed, 0..1."""
        if now <= self.start_at:
            return 0.0
        if math.isinf(self.done_at):
            return 0.5
        span = max(self.done_at - self.start_at, 1e-9)
        return min(1.0, (min(now, self.end_at) - self.start_at) / span)

    def run_time(self, now: float) -> float:
        """Seconds spent running so far (the inference time once finished)."""
        if not self.started() or now <= self.start_at:
            return 0.0
        return max(0.0, min(now, self.end_at) - self.start_at)


class JobTable:
    """All jobs by id, the runner slots, and a sorted list of start times for queue positions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._starts: list[float] = []
        self._slots: list[float] = []

    def reserve(self, now: float, queue_delay: float, duration: float, concurrency: int) -> float:
        """Return the start time of a new job, taking a runner slot when slots are limited."""
        earliest = now + queue_delay
        if concurrency <= 0:
            return earliest
        with self._lock:
            if len(self._slots) < concurrency:
                start = earliest
            else:
                start = max(earliest, heapq.heappop(self._slots))
            heapq.heappush(self._slots, start + duration)
            return start

    def add(self, job: Job, now: float) -> None:
        with self._lock:
            self._jobs[job.id] = job
            if job.start_at > now:
                bisect.insort(self._starts, job.start_at)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def of_provider(self, provider: str) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.provider == provider]

    def cancel(self, job: Job, at: float, status: str) -> None:
        """Mark ``job`` to end as ``status`` at ``at``, and free its place in the queue."""
        with self._lock:
            if job.start_at > at:
                index = bisect.bisect_left(self._starts, job.start_at)
                if index < len(self._starts) and self._starts[index] == job.start_at:
                    del self._starts[index]
            job.cancel_at = at
            job.cancel_status = status

    def queue_position(self, job: Job, now: float) -> int:
        with self._lock:
            del self._starts[: bisect.bisect_right(self._starts, now)]
            return bisect.bisect_left(self._starts, job.start_at)

    def counts(self, now: float) -> dict[str, dict[str, int]]:
        with self._lock:
            jobs = list(self._jobs.values())
        counts: dict[str, Counter[str]] = {}
        for job in jobs:
            counts.setdefault(job.provider, Counter())[job.phase(now)] += 1
        return {provider: dict(counter) for provider, counter in counts.items()}

    def prune(self, now: float, retention: float) -> list[Job]:
        """Drop jobs that ended more than ``retention`` seconds ago; return them."""
        with self._lock:
            old = [job for job in self._jobs.values() if now - job.end_at > retention]
            for job in old:
                del self._jobs[job.id]
        return old

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._starts.clear()
            self._slots.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)
