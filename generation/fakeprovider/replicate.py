"""Provides the fake Replicate predictions API with Standard Webhooks signed deliveries."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
from typing import Any

from generation.fakeprovider.config import REPLICATE_EVENTS
from generation.fakeprovider.edits import EDIT_MODELS, Edit, EditInputError, parse_edit
from generation.fakeprovider.errors import provider_error
from generation.fakeprovider.faults import Fault
from generation.fakeprovider.http import BadRequest, Request, Response, Router, json_response
from generation.fakeprovider.images import ImageSpec, image_format, scaled_size
from generation.fakeprovider.jobs import CANCELLED, DONE, QUEUED, RUNNING, Failure, Job
from generation.fakeprovider.runtime import Runtime
from generation.fakeprovider.webhooks import Delivery

ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
DEFAULT_SIDE = 1024
MAX_SIDE = 4096
MAX_OUTPUTS = 4
MAX_WAIT = 60
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
FAIL_ERROR = "Prediction failed: the model raised an error (fake provider fail_job)"


class InputError(Exception):
    """A create body Replicate would refuse with 422 before queueing anything."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


class ReplicateApi:
    """``/replicate/v1`` predictions: create (by version, model or deployment), get, cancel."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def register(self, router: Router) -> None:
        v1 = "^/replicate/v1"
        router.add(f"{v1}/predictions$", "POST", "replicate.submit", self.create)
        router.add(f"{v1}/predictions$", "GET", "replicate.status", self.list)
        for kind in ("models", "deployments"):
            router.add(
                rf"{v1}/{kind}/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$",
                "POST",
                "replicate.submit",
                self.create,
            )
        router.add(rf"{v1}/predictions/(?P<id>[a-z0-9]+)$", "GET", "replicate.status", self.get)
        router.add(
            rf"{v1}/predictions/(?P<id>[a-z0-9]+)/cancel$", "POST", "replicate.cancel", self.cancel
        )
        router.add(f"{v1}/webhooks/default/secret$", "GET", "replicate.secret", self.secret)

    def secret(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        return json_response(200, {"key": self.rt.keys.replicate_secret})

    # -- create --------------------------------------------------------------------------

    def create(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise InputError("Invalid request body", "The request body must be a JSON object")
            model, version = _model_and_version(body, params)
            spec = _parse_edit(model, body.get("input")) or _parse_input(body.get("input"))
            webhook, events = self._webhook(body)
            cancel_after = _duration(request.header("cancel-after"))
        except BadRequest as exc:
            return provider_error("replicate", 400, str(exc))
        except InputError as exc:
            return provider_error("replicate", 422, body=_problem(422, exc.title, exc.detail))
        job = self._create(body["input"], model, version, spec, webhook, events, fault)
        if cancel_after is not None:
            self._deadline(job, cancel_after)
        wait = _prefer_wait(request.header("prefer"))
        headers = {"ratelimit-remaining": "599", "ratelimit-reset": "1"}
        if wait:
            self.rt.hold(min(wait, job.end_at - self.rt.now()))
            headers["Preference-Applied"] = "wait"
        # Without Prefer: wait the answer is the prediction as created, however fast it runs.
        prediction = self.prediction(job, "" if wait else "start")
        headers["Location"] = prediction["urls"]["get"]
        return json_response(201, prediction, headers)

    def _webhook(self, body: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
        webhook = body.get("webhook") or None
        events = body.get("webhook_events_filter")
        if webhook is None and body.get("webhook_completed"):
            # The legacy field: a URL that only hears about the terminal state.
            return str(body["webhook_completed"]), ("completed",)
        if events is None:
            return webhook, self.rt.config.replicate_default_events
        if not isinstance(events, list) or not set(events) <= set(REPLICATE_EVENTS):
            raise InputError(
                "Invalid webhook_events_filter",
                f"webhook_events_filter must be a list drawn from {list(REPLICATE_EVENTS)}",
            )
        return webhook, tuple(events)

    def _create(
        self,
        payload: dict[str, Any],
        model: str,
        version: str,
        spec: tuple[int, int, int, str] | Edit,
        webhook: str | None,
        events: tuple[str, ...],
        fault: Fault,
    ) -> Job:
        rt = self.rt
        start, done = rt.timeline(stall=fault.name == "stall")
        seed = payload.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            seed = rt.random_seed() >> 32
        job = Job(
            id="".join(secrets.choice(ID_ALPHABET) for _ in range(26)),
            provider="replicate",
            app=model,
            input=payload,
            seed=seed,
            created=rt.now(),
            start_at=start,
            done_at=done,
            duplicate_webhooks=fault.name == "webhook_duplicate",
            webhook=webhook,
            events=events if webhook else (),
            extra={"version": version, "msg_ids": {}},
        )
        if fault.name in ("fail_job", "nsfw"):
            message = NSFW_ERROR if fault.name == "nsfw" else FAIL_ERROR
            job.failure = Failure(0, None, message)
        else:
            job.images = self._register_images(job, *(spec if isinstance(spec, tuple) else [spec]))
        rt.jobs.add(job, rt.now())
        rt.stats.record_submit("replicate", str(payload.get("prompt", "")), payload.get("seed"))
        self._schedule(job)
        return job

    def _register_images(self, job: Job, *spec: Any) -> list[str]:
        # Replicate deletes API outputs an hour after the prediction ends.
        expires = job.done_at + self.rt.config.data_retention
        if isinstance(spec[0], Edit):
            edit = spec[0]
            image = ImageSpec(*edit.output_size, job.seed, "", "PNG", expires_at=expires, edit=edit)
            return [self.rt.files.register(image, stem=f"{job.id}-out-0")]
        width, height, count, fmt = spec
        width, height = scaled_size(width, height, self.rt.config.image_size)
        prompt = str(job.input.get("prompt", ""))
        return [
            self.rt.files.register(
                ImageSpec(width, height, job.seed + index, prompt, fmt, expires_at=expires),
                stem=f"{job.id}-out-{index}",
            )
            for index in range(count)
        ]

    def _deadline(self, job: Job, seconds: float) -> None:
        """``Cancel-After``: aborted if the deadline passes before start, else canceled."""
        deadline = job.created + seconds
        if deadline >= job.done_at:
            return
        self.rt.jobs.cancel(job, deadline, "aborted" if deadline < job.start_at else "canceled")
        self._schedule_completed(job)

    # -- get, list, cancel ---------------------------------------------------------------

    def _job(self, job_id: str) -> Job | None:
        job = self.rt.jobs.get(job_id)
        return job if job is not None and job.provider == "replicate" else None

    def get(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        job = self._job(params["id"])
        if job is None:
            return provider_error("replicate", 404, "Not found.")
        return json_response(200, self.prediction(job))

    def list(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        """Newest first, one page of 100: enough for a reconciler looking for lost creates."""
        jobs = sorted(self.rt.jobs.of_provider("replicate"), key=lambda job: -job.created)
        results = [self.prediction(job) for job in jobs[:100]]
        return json_response(200, {"previous": None, "next": None, "results": results})

    def cancel(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        job = self._job(params["id"])
        if job is None:
            return provider_error("replicate", 404, "Not found.")
        now = self.rt.now()
        if job.phase(now) not in (DONE, CANCELLED) and job.cancel_at is None:
            self.rt.jobs.cancel(job, now, "canceled")
            self._schedule_completed(job)
        return json_response(200, self.prediction(job))

    # -- the prediction object -----------------------------------------------------------

    def prediction(self, job: Job, event: str = "") -> dict[str, Any]:
        rt = self.rt
        now = rt.now()
        phase = job.phase(now)
        status = _status(job, phase)
        terminal = phase in (DONE, CANCELLED)
        if event == "start":
            # The start event (and the create answer) show the prediction as it was created.
            status, terminal, now = "starting", False, job.created
        if event == "output":
            # The output event reports the outputs just before the prediction is marked done.
            status, terminal = "processing", False
        removed = terminal and rt.now() - job.end_at > rt.config.data_retention
        base = f"{rt.public_url}/replicate/v1/predictions/{job.id}"
        started = status != "starting" and job.started() and now >= job.start_at
        return {
            "id": job.id,
            "model": job.app,
            "version": job.extra["version"],
            "input": {} if removed else job.input,
            "logs": self._logs(job, now, status),
            "output": None if removed else self._output(job, status),
            "data_removed": removed,
            "error": job.failure.error if status == "failed" and job.failure else None,
            "status": status,
            "source": "api",
            "created_at": rt.iso(job.created),
            "started_at": rt.iso(job.start_at) if started else None,
            "completed_at": rt.iso(job.end_at) if terminal else None,
            "urls": {
                "get": base,
                "cancel": f"{base}/cancel",
                "stream": f"{rt.public_url}/replicate/stream/{job.id}",
            },
            "metrics": {"predict_time": round(job.run_time(now), 3)} if terminal else {},
        }

    def _output(self, job: Job, status: str) -> Any:
        if status not in ("succeeded", "processing") or job.failure is not None:
            return None
        if status == "processing" and self.rt.now() < job.done_at:
            return None
        if self.rt.config.replicate_output == "urls":
            return [self.rt.file_url(name) for name in job.images]
        uris = [self._data_uri(name) for name in job.images]
        return uris[0] if len(uris) == 1 else uris

    def _data_uri(self, name: str) -> str:
        spec = self.rt.files.spec(name)
        content = self.rt.files.content(name) or b""
        media = spec.content_type if spec else "image/png"
        return f"data:{media};base64,{base64.b64encode(content).decode('ascii')}"

    def _logs(self, job: Job, now: float, status: str) -> str:
        if status in ("starting", "aborted") or not job.started():
            return ""
        steps = int(job.input.get("num_inference_steps") or 28)
        done = int(job.progress(now) * steps)
        lines = [f"Using seed: {job.seed}", f"{int(100 * done / steps):3d}%| {done}/{steps}"]
        if status == "failed" and job.failure is not None:
            lines += ["Traceback (most recent call last):", f"RuntimeError: {job.failure.error}"]
        return "\n".join(lines) + "\n"

    # -- webhooks ------------------------------------------------------------------------

    def _schedule(self, job: Job) -> None:
        if not job.webhook:
            return
        if "start" in job.events:
            self._emit(job, "start")
        if "logs" in job.events and not math.isinf(job.start_at):
            self.rt.scheduler.call_at(job.start_at, self._on_event, job.id, "logs", job.end_at)
        if "output" in job.events and job.failure is None and not math.isinf(job.done_at):
            self.rt.scheduler.call_at(job.done_at, self._on_event, job.id, "output", job.end_at)
        self._schedule_completed(job)

    def _schedule_completed(self, job: Job) -> None:
        if job.webhook and "completed" in job.events and not math.isinf(job.end_at):
            self.rt.scheduler.call_at(job.end_at, self._on_event, job.id, "completed", job.end_at)

    def _on_event(self, job_id: str, event: str, expected_end: float) -> None:
        job = self._job(job_id)
        if job is None or event in job.notified:
            return
        # Timers set before a cancel moved the end are stale; a logs timer is not.
        if event != "logs" and job.end_at != expected_end:
            return
        if event in ("logs", "output") and (job.cancelled or not job.started()):
            return
        self._emit(job, event)

    def _emit(self, job: Job, event: str) -> None:
        job.notified.add(event)
        # One webhook-id per event, reused by every retry and duplicate of it.
        msg_id = job.extra["msg_ids"].setdefault(event, _msg_id())
        snapshot = self.prediction(job, event) if event == "start" else None
        for _ in range(2 if job.duplicate_webhooks else 1):
            self.rt.webhooks.send(
                Delivery(
                    job_id=job.id,
                    event=event,
                    url=str(job.webhook),
                    build=lambda job=job, event=event, snapshot=snapshot: _encode(
                        snapshot or self.prediction(job, event)
                    ),
                    sign=lambda body, msg_id=msg_id: self.rt.keys.replicate_headers(body, msg_id),
                    msg_id=msg_id,
                )
            )


def _status(job: Job, phase: str) -> str:
    if phase == QUEUED:
        return "starting"
    if phase == RUNNING:
        return "processing"
    if phase == CANCELLED:
        return job.cancel_status
    return "failed" if job.failure is not None else "succeeded"


def _encode(prediction: dict[str, Any]) -> bytes:
    return json.dumps(prediction).encode("utf-8")


def _msg_id() -> str:
    return "msg_" + secrets.token_urlsafe(20).replace("-", "a").replace("_", "b")[:27]


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "status": status}


def _model_and_version(body: dict[str, Any], params: dict[str, str]) -> tuple[str, str]:
    if "owner" in params:
        model = f"{params['owner']}/{params['name']}"
        return model, hashlib.sha256(model.encode()).hexdigest()
    version = body.get("version")
    if not isinstance(version, str) or not version.strip():
        raise InputError(
            "Invalid version or not permitted",
            "The specified version does not exist (or perhaps you don't have permission to "
            "use it?)",
        )
    model, _, version_id = version.rpartition(":")
    return (model or "fake/unknown-model"), version_id


def _parse_edit(model: str, value: Any) -> Edit | None:
    """The input of an image-to-image model (Real-ESRGAN, CodeFormer); None for other models."""
    task = EDIT_MODELS.get(model)
    if task is None or not isinstance(value, dict):
        return None
    try:
        return parse_edit(task, "image", value)
    except EditInputError as exc:
        raise InputError("Input validation failed", f"- input.{exc.field}: {exc}\n") from None


def _parse_input(value: Any) -> tuple[int, int, int, str]:
    """Validate the input against a text-to-image schema: ``(width, height, count, format)``."""
    if not isinstance(value, dict):
        raise InputError("Input validation failed", "- input: Invalid type. Expected: object\n")
    if not isinstance(value.get("prompt"), str):
        raise InputError("Input validation failed", "- input: prompt is required\n")
    width, height = _size(value)
    count = value.get("num_outputs", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_OUTPUTS:
        raise InputError(
            "Input validation failed", f"- input.num_outputs: Must be between 1 and {MAX_OUTPUTS}\n"
        )
    return width, height, count, image_format(value.get("output_format"), "png")


def _size(value: dict[str, Any]) -> tuple[int, int]:
    width, height = value.get("width"), value.get("height")
    if width is None and height is None:
        ratio = re.fullmatch(r"(\d+):(\d+)", str(value.get("aspect_ratio") or "1:1"))
        if ratio is None or not all(int(part) > 0 for part in ratio.groups()):
            raise InputError("Input validation failed", "- input.aspect_ratio: invalid\n")
        w, h = (int(part) for part in ratio.groups())
        scale = DEFAULT_SIDE / max(w, h)
        return max(1, round(w * scale)), max(1, round(h * scale))
    sides = (width or DEFAULT_SIDE, height or DEFAULT_SIDE)
    if not all(_is_side(side) for side in sides):
        raise InputError(
            "Input validation failed", f"- input.width/height: integers from 1 to {MAX_SIDE}\n"
        )
    return sides[0], sides[1]


def _is_side(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SIDE


def _duration(value: str | None) -> float | None:
    """Parse ``Cancel-After``: a Go-style duration such as ``1m``, ``90s`` or ``1h30m``."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise InputError("Invalid Cancel-After", f"Cannot parse duration {value!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _prefer_wait(value: str | None) -> float:
    """``Prefer: wait`` holds up to 60 s; ``wait=N`` holds up to N (1..60)."""
    match = re.search(r"\bwait(?:=(\d+))?", value or "")
    if match is None:
        return 0.0
    return float(min(MAX_WAIT, max(1, int(match.group(1) or MAX_WAIT))))
