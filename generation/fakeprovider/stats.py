"""Provides the fake's counters and request log, for assertions and load reports."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from typing import Any


class Stats:
    """Thread-safe counters: per endpoint, per status, per fault, submits and webhook deliveries.

    Every request is logged with its arrival time (wall ``t`` and ``mono``), so tests can
    assert, say, that no request arrived before a ``Retry-After`` had elapsed.
    """

    def __init__(self, log_size: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._log_size = log_size
        self.reset()

    def reset(self, log_size: int | None = None) -> None:
        with self._lock:
            if log_size is not None:
                self._log_size = log_size
            self._requests: Counter[str] = Counter()
            self._statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._faults: Counter[str] = Counter()
            self._log: deque[dict[str, Any]] = deque(maxlen=self._log_size)
            self._submits: Counter[str] = Counter()
            self._webhooks: Counter[str] = Counter()
            self._deliveries: deque[dict[str, Any]] = deque(maxlen=self._log_size)
            self._started = time.monotonic()

    def record_request(
        self,
        *,
        endpoint: str,
        method: str,
        path: str,
        status: int | None,
        fault: str,
        arrived_mono: float,
        arrived_wall: float,
        duration: float,
    ) -> None:
        entry = {
            "t": arrived_wall,
            "mono": arrived_mono,
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "status": status,
            "fault": fault,
            "duration": round(duration, 6),
        }
        with self._lock:
            self._requests[endpoint] += 1
            self._statuses[endpoint][str(status)] += 1
            if fault:
                self._faults[fault] += 1
            self._log.append(entry)

    def record_submit(self, provider: str, prompt: str, seed: Any) -> None:
        """Count an accepted job under its prompt and seed, which exposes duplicate submits."""
        with self._lock:
            self._submits[f"{provider}|{seed}|{prompt}"] += 1

    def record_delivery(self, outcome: str, entry: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._webhooks[outcome] += 1
            if entry is not None:
                self._deliveries.append(entry)

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(e) for e in self._log if endpoint is None or _endpoint_matches(endpoint, e)
            ]

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._deliveries]

    def snapshot(self, *, log: bool = True) -> dict[str, Any]:
        with self._lock:
            total = sum(self._submits.values())
            data: dict[str, Any] = {
                "uptime": time.monotonic() - self._started,
                "requests": dict(self._requests),
                "statuses": {name: dict(counts) for name, counts in self._statuses.items()},
                "faults": dict(self._faults),
                "submits": {
                    "total": total,
                    "unique": len(self._submits),
                    "duplicates": total - len(self._submits),
                    "duplicated_keys": {k: n for k, n in self._submits.items() if n > 1},
                },
                "webhooks": {
                    "attempted": self._webhooks["attempted"],
                    "succeeded": self._webhooks["succeeded"],
                    "failed_attempts": self._webhooks["failed_attempt"],
                    "gave_up": self._webhooks["gave_up"],
                },
            }
            if log:
                data["log"] = [dict(entry) for entry in self._log]
                data["deliveries"] = [dict(entry) for entry in self._deliveries]
        return data


def _endpoint_matches(pattern: str, entry: dict[str, Any]) -> bool:
    provider, _, op = entry["endpoint"].partition(".")
    return pattern in (entry["endpoint"], provider, op)
