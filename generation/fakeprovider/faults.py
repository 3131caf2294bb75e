"""Provides the fault plan: scripted responses consumed in order, then seeded random faults."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from generation.fakeprovider.config import (
    ALL_FAULTS,
    FILE_FAULTS,
    HTTP_FAULTS,
    JOB_FAULTS,
    ConfigError,
    FakeConfig,
)

SCRIPT_KEYS = frozenset(
    {"match", "fault", "status", "retry_after", "delay", "body", "target", "times"}
)


@dataclass(frozen=True)
class Fault:
    """What to do to one request; the empty ``Fault()`` means answer normally.

    ``status`` alone (no ``name``) forces an error answer with that HTTP status in the
    provider's own error format; ``delay`` holds the request before it is handled.
    """

    name: str = ""
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    body: Any = None
    target: str = ""
    source: str = ""

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"status_{self.status}" if self.status else ("delay" if self.delay else "")


NO_FAULT = Fault()


def split_endpoint(endpoint: str) -> tuple[str, str]:
    provider, _, op = endpoint.partition(".")
    return provider, op


def matches(pattern: str, endpoint: str) -> bool:
    """``pattern`` is ``*``, a full endpoint (``fal.submit``), a provider or an operation."""
    return pattern in ("*", endpoint, *split_endpoint(endpoint))


def normalise_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Check one script entry and fill its defaults, or raise ``ConfigError``."""
    unknown = set(entry) - SCRIPT_KEYS
    if unknown:
        raise ConfigError(f"unknown script key(s): {', '.join(sorted(unknown))}")
    fault = entry.get("fault", "")
    if fault and fault not in ALL_FAULTS:
        raise ConfigError(f"unknown fault {fault!r} in script")
    status = entry.get("status")
    if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
        raise ConfigError(f"script status must be an HTTP status code, got {status!r}")
    if not (fault or status or entry.get("delay")):
        raise ConfigError("a script entry needs a fault, a status or a delay")
    times = int(entry.get("times", 1))
    if times < 1:
        raise ConfigError("script times must be at least 1")
    return {**entry, "match": str(entry.get("match", "*")), "times": times}


class FaultPlan:
    """Draws the fault for each request: the first matching script entry, else a random one."""

    def __init__(self, seed: int | None) -> None:
        self._lock = threading.Lock()
        self._script: list[dict[str, Any]] = []
        self._rng = random.Random(seed)

    def reset(self, seed: int | None, script: Iterable[Mapping[str, Any]] = ()) -> None:
        with self._lock:
            self._rng = random.Random(seed)
            self._script = [normalise_entry(entry) for entry in script]

    def replace_script(self, script: Iterable[Mapping[str, Any]]) -> None:
        entries = [normalise_entry(entry) for entry in script]
        with self._lock:
            self._script = entries

    def push(self, entries: Iterable[Mapping[str, Any]]) -> None:
        checked = [normalise_entry(entry) for entry in entries]
        with self._lock:
            self._script.extend(checked)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._script]

    def draw(self, endpoint: str, config: FakeConfig) -> Fault:
        with self._lock:
            scripted = self._take_scripted(endpoint)
            if scripted is not None:
                return scripted
            return self._draw_random(endpoint, config)

    def _take_scripted(self, endpoint: str) -> Fault | None:
        for index, entry in enumerate(self._script):
            if not matches(entry["match"], endpoint):
                continue
            entry["times"] -= 1
            if entry["times"] <= 0:
                del self._script[index]
            return Fault(
                name=entry.get("fault", ""),
                status=entry.get("status"),
                retry_after=entry.get("retry_after"),
                delay=float(entry.get("delay", 0.0)),
                body=entry.get("body"),
                target=entry.get("target", ""),
                source="script",
            )
        return None

    def _draw_random(self, endpoint: str, config: FakeConfig) -> Fault:
        candidates = _applicable(endpoint, config)
        if not candidates:
            return NO_FAULT
        rates = config.fault_rates()
        roll = self._rng.random()
        for name in candidates:
            roll -= rates.get(name, 0.0)
            if roll < 0:
                return Fault(name=name, source="random")
        return NO_FAULT


def _applicable(endpoint: str, config: FakeConfig) -> tuple[str, ...]:
    _, op = split_endpoint(endpoint)
    if op == "file":
        return FILE_FAULTS
    names: tuple[str, ...] = HTTP_FAULTS if op in config.fault_ops else ()
    if op == "submit":
        names += JOB_FAULTS
    return names
