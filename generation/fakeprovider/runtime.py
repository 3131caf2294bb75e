"""Provides the state every fake endpoint shares: config, clock, jobs, files, keys and timers."""

from __future__ import annotations

import math
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from generation.fakeprovider.config import FakeConfig
from generation.fakeprovider.faults import FaultPlan
from generation.fakeprovider.http import Request
from generation.fakeprovider.images import FileStore
from generation.fakeprovider.jobs import JobTable
from generation.fakeprovider.scheduler import Scheduler
from generation.fakeprovider.signing import Keys
from generation.fakeprovider.stats import Stats
from generation.fakeprovider.webhooks import WebhookSender


class Runtime:
    """Shared state of one fake server. Internal times are ``time.monotonic()``."""

    def __init__(self, config: FakeConfig) -> None:
        config.validate()
        self._config = config
        self._lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self._wall_offset = time.time() - time.monotonic()
        self.base_url = ""
        self.keys = Keys(config.seed)
        self.jobs = JobTable()
        self.files = FileStore(config.image_cache)
        self.stats = Stats(config.stats_log_size)
        self.faults = FaultPlan(config.seed)
        self.faults.replace_script(config.script)
        self.scheduler = Scheduler()
        self.webhooks = WebhookSender(lambda: self.config, self.scheduler, self.stats)
        self.stop_event = threading.Event()

    @property
    def config(self) -> FakeConfig:
        return self._config

    def update_config(self, changes: dict[str, Any]) -> FakeConfig:
        """Apply a partial change at runtime; ``script`` replaces the pending script."""
        with self._lock:
            config = self._config.updated(changes)
            if "script" in changes:
                self.faults.replace_script(config.script)
            if "seed" in changes:
                self._rng = random.Random(config.seed)
                self.faults.reset(config.seed, self.faults.pending())
            self.files.cache_size = config.image_cache
            self._config = config
            return config

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self._config.seed)

    @property
    def public_url(self) -> str:
        return (self._config.public_url or self.base_url).rstrip("/")

    def now(self) -> float:
        return time.monotonic()

    def wall(self, mono: float) -> float:
        return mono + self._wall_offset

    def iso(self, mono: float) -> str:
        """Replicate's timestamp style: ``2024-10-04T18:15:00.077Z``."""
        moment = datetime.fromtimestamp(self.wall(mono), tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def sample_latency(self) -> float:
        config = self._config
        mean, jitter = config.latency, config.latency_jitter
        with self._lock:
            if config.latency_dist == "fixed" or mean <= 0:
                return mean
            if config.latency_dist == "uniform":
                return max(0.0, mean * (1 + jitter * self._rng.uniform(-1, 1)))
            # Lognormal with the requested mean: mu = ln(mean) - sigma^2 / 2.
            sigma = jitter or 0.5
            return self._rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def random_seed(self) -> int:
        """A seed as providers pick one when none is given; fal's exceed 2**53."""
        with self._lock:
            return self._rng.getrandbits(63)

    def timeline(self, *, stall: bool = False) -> tuple[float, float]:
        """Draw ``(start_at, done_at)`` for a new job from the latency and queue settings."""
        config = self._config
        now = self.now()
        duration = self.sample_latency()
        start = self.jobs.reserve(now, config.queue_delay, duration, config.concurrency)
        return start, (math.inf if stall else start + duration)

    def authorized(self, request: Request, scheme: str) -> bool:
        prefix, _, token = (request.header("authorization") or "").partition(" ")
        token = token.strip()
        if prefix.lower() != scheme.lower() or not token:
            return False
        keys = self._config.auth_keys
        return not keys or token in keys

    def file_url(self, name: str) -> str:
        return f"{self.public_url}/files/{name}"

    def hold(self, seconds: float) -> None:
        """Wait without busy-looping; returns early when the server stops."""
        if seconds > 0:
            self.stop_event.wait(seconds)
