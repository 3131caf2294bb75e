"""Provides `manage.py fakeprovider`: the fake fal/Replicate/OpenAI server, until Ctrl-C."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generation.fakeprovider import FakeConfig, FakeProvider
from generation.fakeprovider.config import ALL_FAULTS, LATENCY_DISTS, ConfigError

# Flags that map one-to-one onto FakeConfig fields (dest name == field name).
_SIMPLE = (
    "host",
    "port",
    "public_url",
    "seed",
    "latency",
    "latency_jitter",
    "latency_dist",
    "queue_delay",
    "concurrency",
    "error_rate",
    "retry_after",
    "hang_seconds",
    "redirect_target",
    "drip_rate",
    "image_size",
    "fal_user_id",
    "replicate_output",
    "webhook_retries",
    "webhook_backoff",
    "webhook_timeout",
)


class Command(BaseCommand):
    help = (
        "Serve a protocol-faithful fake of the fal queue, Replicate predictions and OpenAI "
        "images APIs (with signed webhooks and fault injection) until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="Bind address (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=None, help="Port (default 8901).")
        parser.add_argument("--public-url", help="Base URL to write into responses.")
        parser.add_argument("--seed", type=int, help="Seed for latency/fault draws and keys.")
        parser.add_argument("--latency", type=float, help="Mean processing seconds per job.")
        parser.add_argument("--latency-jitter", type=float, help="Jitter fraction (or sigma).")
        parser.add_argument("--latency-dist", choices=LATENCY_DISTS)
        parser.add_argument("--queue-delay", type=float, help="Seconds queued before running.")
        parser.add_argument("--concurrency", type=int, help="Runner slots (0: unlimited).")
        parser.add_argument(
            "--error-rate", type=float, help="Chance of a transient 429/500/503 per API call."
        )
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="NAME=P",
            help=f"Random fault rate, repeatable. Names: {', '.join(ALL_FAULTS)}.",
        )
        parser.add_argument("--script", help="JSON file with a list of scripted faults.")
        parser.add_argument("--retry-after", type=float, help="Retry-After seconds on 429.")
        parser.add_argument("--hang-seconds", type=float, help="How long a hang lasts.")
        parser.add_argument("--redirect-target", help="Where the redirect fault points.")
        parser.add_argument("--drip-rate", type=float, help="Bytes per second for slow_drip.")
        parser.add_argument("--image-size", type=int, help="Longest side of rendered images.")
        parser.add_argument(
            "--auth-key", action="append", default=[], help="Accepted key/token (repeatable)."
        )
        parser.add_argument("--fal-user-id", help="X-Fal-Webhook-User-Id to send.")
        parser.add_argument("--replicate-output", choices=("urls", "data_uri"))
        parser.add_argument("--webhook-retries", type=int)
        parser.add_argument("--webhook-backoff", type=float)
        parser.add_argument("--webhook-timeout", type=float)
        parser.add_argument("--down", action="store_true", help="Answer every request 503.")
        parser.add_argument("--config", help="JSON file of FakeConfig fields (flags override).")
        parser.add_argument("--verbose", action="store_true", help="Log every request.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = FakeConfig(port=8901).updated(self._changes(options))
        except (ConfigError, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        provider = FakeProvider(config)
        try:
            base = provider.start(verbose=options["verbose"])
        except OSError as exc:
            raise CommandError(f"cannot bind {config.host}:{config.port}: {exc}") from exc
        self._announce(provider, base)
        stop = threading.Event()
        # Handle SIGINT explicitly too: a shell's background job inherits it ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            while not stop.wait(3600):
                pass
        finally:
            provider.stop()
            self.stdout.write("fake provider stopped")

    def _changes(self, options: dict[str, Any]) -> dict[str, Any]:
        """Settings first (BRANDFORGE_FAKEPROVIDER), then --config, then explicit flags."""
        changes: dict[str, Any] = dict(getattr(settings, "BRANDFORGE_FAKEPROVIDER", {}) or {})
        if options["config"]:
            changes.update(json.loads(Path(options["config"]).read_text()))
        changes.update({k: options[k] for k in _SIMPLE if options.get(k) is not None})
        if options["fault"]:
            faults = dict(changes.get("faults") or {})
            for item in options["fault"]:
                name, sep, rate = item.partition("=")
                if not sep:
                    raise ConfigError(f"--fault expects NAME=P, got {item!r}")
                faults[name.strip()] = float(rate)
            changes["faults"] = faults
        if options["script"]:
            changes["script"] = json.loads(Path(options["script"]).read_text())
        if options["auth_key"]:
            changes["auth_keys"] = options["auth_key"]
        if options["down"]:
            changes["down"] = True
        return changes

    def _announce(self, provider: FakeProvider, base: str) -> None:
        config = provider.config
        host_port = base.split("://", 1)[1]
        lines = [
            f"fake provider listening on {base}",
            f"  latency {config.latency}s ({config.latency_dist}, jitter {config.latency_jitter})"
            f", queue delay {config.queue_delay}s, faults {config.fault_rates() or 'none'}",
            "Point the adapters at it (environment):",
            f"  FAL_QUEUE_URL={provider.fal_url}",
            f"  FAL_JWKS_URL={provider.jwks_url}",
            f"  FAL_USER_ID={provider.fal_user_id}",
            f"  REPLICATE_BASE_URL={base}/replicate",
            f"  REPLICATE_WEBHOOK_SECRET={provider.replicate_secret}",
            f"  OPENAI_BASE_URL={provider.openai_url}",
            f"  BRANDFORGE_NET_ALLOW={host_port}",
            f"Control: {base}/_control/stats, POST {base}/_control/config, "
            f"POST {base}/_control/reset. Ctrl-C to stop.",
        ]
        self.stdout.write("\n".join(lines))
