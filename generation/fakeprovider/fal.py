"""Provides the fake fal.ai queue API: submit, status, result, cancel, JWKS and signed webhooks."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from generation.fakeprovider.edits import EDIT_MODELS, Edit, EditInputError, parse_edit
from generation.fakeprovider.errors import provider_error
from generation.fakeprovider.faults import Fault
from generation.fakeprovider.http import BadRequest, Request, Response, Router, json_response
from generation.fakeprovider.images import ImageSpec, image_format, scaled_size
from generation.fakeprovider.jobs import CANCELLED, DONE, QUEUED, RUNNING, Failure, Job
from generation.fakeprovider.runtime import Runtime
from generation.fakeprovider.webhooks import Delivery

IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
DEFAULT_IMAGE_SIZE = "landscape_4_3"
MAX_SIDE = 4096
MAX_IMAGES = 4
# These namespaces keep their prefix in queue URLs (fal_client APP_NAMESPACES).
NAMESPACES = ("workflows", "comfy")
_APP = r"(?P<app>(?:(?:workflows|comfy)/)?[^/]+/[^/]+)"
PAYLOAD_ERROR = (
    "Response payload is not JSON serializable. Either return a JSON serializable object or "
    "use the queue endpoint to retrieve the response."
)
CANCELLED_MESSAGE = "Request was cancelled"


class InputError(Exception):
    """The model input fails validation; fal reports this as a 422 from the runner."""

    def __init__(self, loc: list[str], msg: str, kind: str) -> None:
        super().__init__(msg)
        self.detail = [{"loc": loc, "msg": msg, "type": kind}]


class FalApi:
    """The queue endpoints under ``/fal``; URLs returned use only owner/app, never the subpath."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def register(self, router: Router) -> None:
        router.add(r"^/fal/\.well-known/jwks\.json$", "GET", "fal.jwks", self.jwks)
        router.add(r"^/\.well-known/jwks\.json$", "GET", "fal.jwks", self.jwks)
        requests = rf"^/fal/{_APP}/requests/(?P<id>[^/]+)"
        router.add(requests + "/status$", "GET", "fal.status", self.status)
        router.add(requests + "/cancel$", "PUT", "fal.cancel", self.cancel)
        router.add(requests + "$", "GET", "fal.result", self.result)
        router.add(r"^/fal/(?P<path>[^/.][^?]*)$", "POST", "fal.submit", self.submit)

    def jwks(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        return json_response(200, self.rt.keys.jwks(), {"Cache-Control": "max-age=3600"})

    # -- submit --------------------------------------------------------------------------

    def submit(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        path = params["path"].strip("/")
        app = app_id(path)
        if app is None:
            return provider_error("fal", 404, f"Application '{path}' not found")
        try:
            payload = request.json()
        except BadRequest as exc:
            return provider_error("fal", 422, body={"detail": [_detail(["body"], str(exc))]})
        if not isinstance(payload, dict):
            return provider_error("fal", 422, body={"detail": [_detail(["body"], "not an object")]})
        job = self._create(app, path, payload, request.arg("fal_webhook"), fault)
        body = {
            "request_id": job.id,
            "gateway_request_id": job.extra["gateway_request_id"],
            "status": "IN_QUEUE",
            "queue_position": self.rt.jobs.queue_position(job, self.rt.now()),
            **self.urls(job),
        }
        return json_response(200, body, {"x-fal-request-id": job.id})

    def _create(
        self, app: str, path: str, payload: dict[str, Any], webhook: str | None, fault: Fault
    ) -> Job:
        rt = self.rt
        start, done = rt.timeline(stall=fault.name == "stall")
        request_id = str(uuid.uuid4())
        seed = payload.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            seed = rt.random_seed()
        job = Job(
            id=request_id,
            provider="fal",
            app=app,
            input=payload,
            seed=seed,
            created=rt.now(),
            start_at=start,
            done_at=done,
            nsfw=fault.name == "nsfw",
            payload_error=fault.name == "payload_error",
            duplicate_webhooks=fault.name == "webhook_duplicate",
            webhook=webhook or None,
            extra={"path": path, "gateway_request_id": request_id},
        )
        task = EDIT_MODELS.get(path)
        try:
            if task:
                job.images = [self._register_edit(job, parse_edit(task, "image_url", payload))]
            else:
                width, height, count, fmt = _parse_input(payload)
                job.images = self._register_images(job, width, height, count, fmt)
        except InputError as exc:
            job.failure = Failure(422, {"detail": exc.detail}, f"Invalid input: {exc}")
        except EditInputError as exc:
            detail = [_detail(["body", exc.field], str(exc))]
            job.failure = Failure(422, {"detail": detail}, f"Invalid input: {exc}")
        if fault.name == "fail_job" and job.failure is None:
            job.failure = Failure(
                503,
                {"detail": "Runner disconnected", "error_type": "runner_disconnected"},
                "Runner disconnected",
                "runner_disconnected",
            )
        rt.jobs.add(job, rt.now())
        rt.stats.record_submit("fal", str(payload.get("prompt", "")), payload.get("seed"))
        self._schedule_webhook(job)
        return job

    def _register_images(self, job: Job, width: int, height: int, count: int, fmt: str) -> list:
        width, height = scaled_size(width, height, self.rt.config.image_size)
        prompt = str(job.input.get("prompt", ""))
        return [
            self.rt.files.register(
                ImageSpec(width, height, job.seed + index, prompt, fmt, black=job.nsfw),
                stem=f"{job.id.replace('-', '')}-{index}",
            )
            for index in range(count)
        ]

    def _register_edit(self, job: Job, edit: Edit) -> str:
        width, height = edit.output_size
        spec = ImageSpec(width, height, job.seed, "", "PNG", black=job.nsfw, edit=edit)
        return self.rt.files.register(spec, stem=f"{job.id.replace('-', '')}-0")

    def urls(self, job: Job) -> dict[str, str]:
        base = f"{self.rt.public_url}/fal/{job.app}/requests/{job.id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    # -- status, result, cancel ----------------------------------------------------------

    def _job(self, params: dict[str, str]) -> Job | None:
        job = self.rt.jobs.get(params["id"])
        if job is None or job.provider != "fal" or job.app != params["app"]:
            return None
        return job

    def status(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        job = self._job(params)
        if job is None:
            return provider_error("fal", 404, "Request not found")
        now = self.rt.now()
        phase = job.phase(now)
        with_logs = (request.arg("logs") or "0").lower() in ("1", "true")
        logs = self._logs(job, now) if with_logs else None
        response_url = self.urls(job)["response_url"]
        if phase == QUEUED:
            position = self.rt.jobs.queue_position(job, now)
            body = {"status": "IN_QUEUE", "queue_position": position, "response_url": response_url}
            return json_response(202, body)
        if phase == RUNNING:
            return json_response(
                202, {"status": "IN_PROGRESS", "logs": logs, "response_url": response_url}
            )
        error, error_type = _status_error(job)
        body = {
            "status": "COMPLETED",
            "logs": logs,
            "metrics": {"inference_time": round(job.run_time(now), 3)},
            "response_url": response_url,
            "error": error,
            "error_type": error_type,
        }
        return json_response(200, body)

    def result(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        job = self._job(params)
        if job is None:
            return provider_error("fal", 404, "Request not found")
        phase = job.phase(self.rt.now())
        if phase in (QUEUED, RUNNING):
            return provider_error("fal", 400, "Request is still in progress")
        if phase == CANCELLED:
            return provider_error("fal", 400, CANCELLED_MESSAGE)
        if job.failure is not None:
            headers = {"X-Fal-Error-Type": job.failure.error_type} if job.failure.error_type else {}
            return json_response(job.failure.status, job.failure.body, headers)
        return json_response(200, self.output(job))

    def cancel(self, request: Request, params: dict[str, str], fault: Fault) -> Response:
        job = self._job(params)
        if job is None:
            return json_response(404, {"status": "NOT_FOUND"})
        now = self.rt.now()
        if job.cancel_at is not None and now < job.end_at:
            return json_response(202, {"status": "CANCELLATION_REQUESTED"})
        if job.phase(now) in (DONE, CANCELLED):
            return json_response(200, {"status": "ALREADY_COMPLETED"})
        # Queued requests are removed at once; a running one ends when its runner reacts.
        delay = 0.0 if job.phase(now) == QUEUED else self.rt.config.fal_cancel_delay
        self.rt.jobs.cancel(job, now + delay, "cancelled")
        self._schedule_webhook(job)
        return json_response(202, {"status": "CANCELLATION_REQUESTED"})

    # -- output and webhooks -------------------------------------------------------------

    def output(self, job: Job) -> dict[str, Any]:
        """The raw model output (no envelope), as ``GET response_url`` returns it."""
        files = self.rt.files
        images = []
        for name in job.images:
            spec = files.spec(name)
            content = files.content(name)
            if spec is None or content is None:
                continue
            images.append(
                {
                    "url": self.rt.file_url(name),
                    "width": spec.width,
                    "height": spec.height,
                    "content_type": spec.content_type,
                    "file_name": name,
                    "file_size": len(content),
                }
            )
        return {
            "images": images,
            "seed": job.seed,
            "has_nsfw_concepts": [job.nsfw] * len(images),
            "prompt": str(job.input.get("prompt", "")),
            "timings": {"inference": round(job.run_time(self.rt.now()), 3)},
        }

    def _schedule_webhook(self, job: Job) -> None:
        if job.webhook and not math.isinf(job.end_at):
            self.rt.scheduler.call_at(job.end_at, self._on_end, job.id, job.end_at)

    def _on_end(self, job_id: str, expected_end: float) -> None:
        job = self.rt.jobs.get(job_id)
        # A cancel moves the end; the timer set for the old end is then stale.
        if job is None or job.end_at != expected_end or "completed" in job.notified:
            return
        job.notified.add("completed")
        user_id = self.rt.config.fal_user_id
        for _ in range(2 if job.duplicate_webhooks else 1):
            self.rt.webhooks.send(
                Delivery(
                    job_id=job.id,
                    event="completed",
                    url=str(job.webhook),
                    build=lambda job=job: self.webhook_body(job),
                    sign=lambda body, job=job: self.rt.keys.fal_headers(body, job.id, user_id),
                    msg_id=job.id,
                )
            )

    def webhook_body(self, job: Job) -> bytes:
        base = {"request_id": job.id, "gateway_request_id": job.extra["gateway_request_id"]}
        if job.cancelled:
            body = {
                **base,
                "status": "ERROR",
                "error": CANCELLED_MESSAGE,
                "payload": {"detail": CANCELLED_MESSAGE},
            }
        elif job.failure is not None:
            body = {
                **base,
                "status": "ERROR",
                "error": f"Invalid status code: {job.failure.status}",
                "payload": job.failure.body,
            }
        elif job.payload_error:
            body = {**base, "status": "OK", "payload": None, "payload_error": PAYLOAD_ERROR}
        else:
            body = {**base, "status": "OK", "payload": self.output(job)}
        return json.dumps(body).encode("utf-8")

    def _logs(self, job: Job, now: float) -> list[dict[str, str]]:
        if not job.started() or now < job.start_at:
            return []
        steps = int(job.input.get("num_inference_steps") or 28)
        done = int(job.progress(now) * steps)
        stamp = self.rt.iso(job.start_at)
        lines = ["Loading model weights", f"Running inference: {done}/{steps} steps"]
        return [
            {"message": line, "level": "INFO", "source": "USER", "timestamp": stamp}
            for line in lines
        ]


def app_id(path: str) -> str | None:
    """``owner/app`` (or ``namespace/owner/app``) of a submit path; the subpath is dropped."""
    parts = [part for part in path.split("/") if part]
    size = 3 if parts and parts[0] in NAMESPACES else 2
    return "/".join(parts[:size]) if len(parts) >= size else None


def _status_error(job: Job) -> tuple[str | None, str | None]:
    if job.cancelled:
        return CANCELLED_MESSAGE, "request_cancelled"
    if job.failure is not None:
        return job.failure.error, job.failure.error_type
    return None, None


def _detail(loc: list[str], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _parse_input(payload: dict[str, Any]) -> tuple[int, int, int, str]:
    """Validate the flux input as the runner would: ``(width, height, num_images, format)``."""
    prompt = payload.get("prompt")
    if prompt is None:
        raise InputError(["body", "prompt"], "field required", "value_error.missing")
    if not isinstance(prompt, str):
        raise InputError(["body", "prompt"], "str type expected", "type_error.str")
    width, height = _image_size(payload.get("image_size", DEFAULT_IMAGE_SIZE))
    count = payload.get("num_images", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_IMAGES:
        message = f"ensure this value is between 1 and {MAX_IMAGES}"
        raise InputError(["body", "num_images"], message, "value_error")
    output_format = payload.get("output_format", "jpeg")
    if output_format not in ("jpeg", "png"):
        raise InputError(
            ["body", "output_format"], "value is not a valid enumeration member", "type_error.enum"
        )
    for lora in payload.get("loras") or []:
        if not isinstance(lora, dict) or not isinstance(lora.get("path"), str):
            raise InputError(["body", "loras"], "each LoRA needs a path", "value_error")
    return width, height, count, image_format(output_format)


def _image_size(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        if value not in IMAGE_SIZES:
            raise InputError(
                ["body", "image_size"], "value is not a valid enumeration member", "type_error.enum"
            )
        return IMAGE_SIZES[value]
    if isinstance(value, dict):
        width, height = value.get("width"), value.get("height")
        if all(
            isinstance(side, int) and not isinstance(side, bool) and 1 <= side <= MAX_SIDE
            for side in (width, height)
        ):
            return int(width), int(height)  # type: ignore[arg-type]
    raise InputError(
        ["body", "image_size"], f"width and height must be integers 1..{MAX_SIDE}", "value_error"
    )
