"""Provides ``/_control``: change the config, push scripted faults, read stats, reset."""

from __future__ import annotations

from collections.abc import Callable

from generation.fakeprovider.config import ConfigError
from generation.fakeprovider.faults import Fault
from generation.fakeprovider.http import BadRequest, Request, Response, Router, json_response
from generation.fakeprovider.runtime import Runtime


class ControlApi:
    """Never faulted, never authenticated, never counted: it is the test harness's handle."""

    def __init__(self, runtime: Runtime, reset: Callable[[], None]) -> None:
        self.rt = runtime
        self._reset = reset

    def register(self, router: Router) -> None:
        router.add("^/_control/health$", "GET", "control.health", self.health)
        router.add("^/_control/config$", "GET", "control.config", self.get_config)
        router.add("^/_control/config$", "POST", "control.config", self.set_config)
        router.add("^/_control/script$", "GET", "control.script", self.get_script)
        router.add("^/_control/script$", "POST", "control.script", self.push_script)
        router.add("^/_control/stats$", "GET", "control.stats", self.stats)
        router.add("^/_control/reset$", "POST", "control.reset", self.reset)
        router.add("^/_control/sign$", "POST", "control.sign", self.sign)

    def health(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        return json_response(200, {"ok": True})

    def get_config(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        return json_response(200, self.rt.config.to_dict())

    def set_config(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        try:
            changes = request.json()
            if not isinstance(changes, dict):
                raise BadRequest("send a JSON object of config fields")
            config = self.rt.update_config(changes)
        except (BadRequest, ConfigError) as exc:
            return json_response(400, {"detail": str(exc)})
        return json_response(200, config.to_dict())

    def get_script(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        return json_response(200, {"script": self.rt.faults.pending()})

    def push_script(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        """Append entries (a list, or ``{"script": [...]}``) behind those still pending."""
        try:
            entries = request.json()
            if isinstance(entries, dict):
                entries = entries.get("script", [])
            if not isinstance(entries, list):
                raise BadRequest("send a list of script entries")
            self.rt.faults.push(entries)
        except (BadRequest, ConfigError, TypeError) as exc:
            return json_response(400, {"detail": str(exc)})
        return json_response(200, {"script": self.rt.faults.pending()})

    def stats(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        with_log = (request.arg("log") or "1") not in ("0", "false")
        snapshot = self.rt.stats.snapshot(log=with_log)
        snapshot["jobs"] = self.rt.jobs.counts(self.rt.now())
        snapshot["timers_pending"] = self.rt.scheduler.pending()
        snapshot["webhooks"]["pending"] = self.rt.webhooks.pending()
        return json_response(200, snapshot)

    def sign(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        """Sign an arbitrary body, so an out-of-process harness can forge webhook variants.

        JSON: ``provider`` (fal|replicate), ``body`` (string, signed as UTF-8), ``id`` (fal
        request id or Replicate webhook-id), optional ``timestamp`` and fal ``user_id``.
        """
        try:
            spec = request.json()
            body = str(spec["body"]).encode("utf-8")
            stamp = int(spec["timestamp"]) if spec.get("timestamp") is not None else None
            if spec.get("provider") == "replicate":
                headers = self.rt.keys.replicate_headers(body, str(spec["id"]), stamp)
            else:
                user = str(spec.get("user_id") or self.rt.config.fal_user_id)
                headers = self.rt.keys.fal_headers(body, str(spec["id"]), user, stamp)
        except (BadRequest, KeyError, TypeError, ValueError) as exc:
            return json_response(400, {"detail": f"cannot sign: {exc!r}"})
        return json_response(200, {"headers": headers})

    def reset(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        self._reset()
        return json_response(200, {"ok": True})
