"""Provides the fake provider's settings: latency, fault mix, keys, webhooks and limits."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LATENCY_DISTS = ("fixed", "uniform", "lognormal")
REPLICATE_OUTPUTS = ("urls", "data_uri")
REPLICATE_EVENTS = ("start", "output", "logs", "completed")

# Faults that replace or spoil the HTTP answer of an API call.
HTTP_FAULTS = ("rate_limit", "server_error", "unavailable", "hang", "drop", "malformed")
# Faults decided at submit that change how the job itself ends or is reported.
JOB_FAULTS = ("fail_job", "payload_error", "nsfw", "stall", "webhook_duplicate")
# Faults of the file (CDN) endpoint, for download hardening tests.
FILE_FAULTS = (
    "truncated_image",
    "short_body",
    "redirect",
    "slow_drip",
    "huge_stream",
    "gzip_bomb",
    "length_mismatch",
    "redirect_loop",
    "huge_image",
)
ALL_FAULTS = HTTP_FAULTS + JOB_FAULTS + FILE_FAULTS
# The transient errors that ``error_rate`` spreads evenly over.
TRANSIENT_FAULTS = ("rate_limit", "server_error", "unavailable")
OPS = ("submit", "status", "result", "cancel", "jwks", "secret", "file")


class ConfigError(ValueError):
    """A configuration change names an unknown field or holds an invalid value."""


@dataclass(frozen=True)
class FakeConfig:
    """Everything that shapes the fake's behaviour; replaced whole, never mutated in place.

    Times are seconds. Probabilities are 0..1 per request. ``seed`` makes the latency and
    fault draws (and the signing keys) reproducible for a sequential client.
    """

    host: str = "127.0.0.1"
    port: int = 0
    # Base URL written into responses (status/result URLs, image URLs); default: bound address.
    public_url: str = ""
    seed: int | None = None

    latency: float = 1.0
    latency_jitter: float = 0.0
    latency_dist: str = "uniform"
    queue_delay: float = 0.0
    # Runner slots; 0 means every job starts after ``queue_delay``.
    concurrency: int = 0

    error_rate: float = 0.0
    faults: Mapping[str, float] = field(default_factory=dict)
    fault_ops: tuple[str, ...] = ("submit", "status", "result", "cancel")
    script: tuple[Mapping[str, Any], ...] = ()
    down: bool = False
    # Accepted API keys/tokens; empty accepts any non-empty credential.
    auth_keys: tuple[str, ...] = ()

    retry_after: float = 2.0
    retry_after_header: bool = True
    hang_seconds: float = 120.0
    redirect_target: str = "http://169.254.169.254/latest/meta-data/"
    drip_rate: float = 1.0
    huge_bytes: int = 1 << 30
    bomb_bytes: int = 1 << 30
    mismatch_bytes: int = 50 << 20
    bomb_image_side: int = 20_000

    # Longest side of every rendered image; None renders at the requested size.
    image_size: int | None = None
    image_cache: int = 256

    fal_user_id: str = "fake-fal-user"
    fal_cancel_delay: float = 0.0
    replicate_output: str = "urls"
    replicate_default_events: tuple[str, ...] = ("start", "completed")
    data_retention: float = 3600.0
    job_retention: float = 7200.0

    webhook_retries: int = 3
    webhook_backoff: float = 0.25
    webhook_timeout: float = 15.0
    webhook_workers: int = 8

    stats_log_size: int = 100_000

    def updated(self, changes: Mapping[str, Any]) -> FakeConfig:
        """Return a copy with ``changes`` applied (JSON-style values are coerced)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        hints = typing.get_type_hints(FakeConfig)
        coerced = {name: _coerce(name, value, hints[name]) for name, value in changes.items()}
        config = dataclasses.replace(self, **coerced)
        config.validate()
        return config

    def validate(self) -> None:
        _check(self.latency_dist in LATENCY_DISTS, f"latency_dist must be one of {LATENCY_DISTS}")
        _check(self.replicate_output in REPLICATE_OUTPUTS, "replicate_output: urls or data_uri")
        _check(
            set(self.replicate_default_events) <= set(REPLICATE_EVENTS),
            f"replicate_default_events must be a subset of {REPLICATE_EVENTS}",
        )
        _check(set(self.fault_ops) <= set(OPS), f"fault_ops must be a subset of {OPS}")
        for name, rate in self.faults.items():
            _check(name in ALL_FAULTS, f"unknown fault {name!r}; known: {', '.join(ALL_FAULTS)}")
            _check(0.0 <= rate <= 1.0, f"fault {name!r} rate must be within 0..1")
        _check(0.0 <= self.error_rate <= 1.0, "error_rate must be within 0..1")
        for name in ("latency", "latency_jitter", "queue_delay", "retry_after", "hang_seconds"):
            _check(getattr(self, name) >= 0, f"{name} must not be negative")
        _check(self.drip_rate > 0, "drip_rate must be positive")
        _check(self.webhook_workers >= 1, "webhook_workers must be at least 1")
        _check(self.image_size is None or self.image_size >= 1, "image_size must be >= 1")

    def fault_rates(self) -> dict[str, float]:
        """The random fault mix: ``faults`` plus ``error_rate`` spread over the transients."""
        rates = dict(self.faults)
        for name in TRANSIENT_FAULTS:
            rates[name] = rates.get(name, 0.0) + self.error_rate / len(TRANSIENT_FAULTS)
        return {name: rate for name, rate in rates.items() if rate > 0}

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["faults"] = dict(self.faults)
        data["script"] = [dict(entry) for entry in self.script]
        return data


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert a JSON value to the field's declared type, or raise ``ConfigError``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(arg for arg in args if arg is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if origin is tuple:
            if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
                raise TypeError("expected a list")
            return tuple(dict(item) if args[0] is not str else str(item) for item in value)
        if origin in (Mapping, dict):
            return {str(key): float(rate) for key, rate in dict(value).items()}
        if hint is bool:
            if not isinstance(value, bool):
                raise TypeError("expected true or false")
            return value
        if hint in (int, float):
            if isinstance(value, bool):
                raise TypeError("expected a number")
            return hint(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    return value
