"""Provides the generation engine: jobs per brief, leases, routing, submit and complete."""

import dataclasses
import hashlib
import json
import logging
import random
import time
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from PIL import Image

from assets.models import Asset
from assets.selectors import asset_lineage
from assets.services import asset_create
from brandforge.images import open_untrusted_image
from brandforge.net import BlockedDestination, DownloadError, fetch_image
from brandforge.tasks import enqueue, flow_emit
from campaigns.models import Brief, Campaign
from campaigns.services import (
    RenderedPrompt,
    brief_render_prompt,
    brief_set_status,
    campaign_reopen,
)
from generation.http import download_client, provider_client
from generation.models import CostEntry, GenerationJob, RoutingRule
from generation.pipeline.registry import get_step
from generation.providers.base import (
    EditRequest,
    GenerationRequest,
    JobState,
    LoraSpec,
    Outcome,
    OutputRef,
    ProviderError,
    Submission,
)
from generation.providers.registry import get_provider
from generation.selectors import route_for
from generation.services.breaker import circuit_acquire, circuit_open_until, circuit_record
from generation.services.costs import budget_reserve, cost_record
from generation.services.refine import (
    ChainWaiting,
    StepContextOnce,
    StepFailed,
    refine,
    render,
    source_data_uri,
    step_output_store,
    step_price,
)

logger = logging.getLogger(__name__)

JOB_TASK = "generation.tasks.job_run"
COMPLETE_TASK = "generation.tasks.job_complete"
RESUME_TASK = "generation.tasks.job_resume"
Status = GenerationJob.Status


class JobDeferred(Exception):
    """The job cannot start now (circuit open, budget reached); it waits, keeping its attempt."""

    def __init__(self, reason: str, until=None):
        super().__init__(reason)
        self.until = until


def job_key(brief: Brief, variant: int) -> str:
    return f"brief:{brief.uid}:v{variant}"


def campaign_jobs_create(*, campaign_id: int, chunk: int = 200) -> int:
    """Make the first job of every pending brief of a running campaign and queue every job still
    waiting (new ones, and ones parked while the campaign was paused); safe to repeat.

    Jobs are made in chunks, each committed with its tasks queued, so workers start on the
    first chunk while the rest are still being made.
    """
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status != Campaign.Status.RUNNING:
        return 0
    started = timezone.now()
    pending = campaign.briefs.filter(status=Brief.Status.PENDING).only("pk", "uid")
    queued = 0
    while briefs := list(pending[:chunk]):
        with transaction.atomic():
            GenerationJob.objects.bulk_create(
                [
                    GenerationJob(
                        campaign=campaign,
                        brief=brief,
                        variant=0,
                        idempotency_key=job_key(brief, 0),
                        max_attempts=settings.BRANDFORGE_JOB_MAX_ATTEMPTS,
                    )
                    for brief in briefs
                ],
                ignore_conflicts=True,  # a second delivery finds them made
            )
            Brief.objects.filter(pk__in=[b.pk for b in briefs], status=Brief.Status.PENDING).update(
                status=Brief.Status.GENERATING, updated_at=timezone.now()
            )
            for job_id in GenerationJob.objects.filter(
                brief__in=briefs, variant=0, status=Status.QUEUED
            ).values_list("pk", flat=True):
                enqueue(JOB_TASK, job_id)
                queued += 1
    # Jobs that waited while the campaign was paused (a budget stop) go back to work.
    waiting = campaign.jobs.filter(status=Status.QUEUED, created_at__lt=started)
    with transaction.atomic():
        for job_id in waiting.values_list("pk", flat=True):
            enqueue(JOB_TASK, job_id)
            queued += 1
    return queued


def seed_for(*, brief: Brief, variant: int) -> int:
    profile = brief.campaign.seed_profile
    if profile is not None and profile.strategy == profile.Strategy.FIXED:
        return (profile.base_seed + variant) % 2**32
    base = profile.base_seed if profile is not None else 0
    digest = hashlib.sha256(f"{base}:{brief.uid}:{variant}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _lease(seconds: int | None = None):
    return timezone.now() + timedelta(seconds=seconds or settings.BRANDFORGE_JOB_LEASE_SECONDS)


def _with_context(queryset):
    """Everything an attempt reads about its brief, in one query."""
    return queryset.select_related(
        "brief__template_version", "campaign__brand", "campaign__seed_profile", "rule"
    )


def job_claim(*, job_id: int) -> GenerationJob | None:
    """Take the job for one attempt, or return None when another attempt owns or finished it.

    The attempt counter is written and committed before any work starts, so a task that keeps
    killing its worker still runs out of attempts (django-q2's own counter never sees those).
    A job already submitted to its provider is not claimed here: it waits for its webhook or
    the reconciler's poll.
    """
    now = timezone.now()
    with transaction.atomic():
        job = (
            _with_context(GenerationJob.objects.select_for_update(of=("self",)))
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.is_terminal:
            return None
        if job.lease_expires_at and job.lease_expires_at > now:
            return None
        if job.status == Status.FAILED and job.next_attempt_at and job.next_attempt_at > now:
            return None  # a duplicate delivery must not jump the backoff
        if job.status in (Status.SUBMITTED, Status.WAITING):
            return None  # its webhook (or poll), or its step job, moves it on
        if job.campaign.status == Campaign.Status.PAUSED:
            return None  # resumes when the campaign is launched again
        if job.attempts >= job.max_attempts:
            job.status = Status.DEAD
            job.error = job.error or "Ran out of attempts."
            job.finished_at = now
            job.save(update_fields=["status", "error", "finished_at", "updated_at"])
            _after_final_failure(job)
            return None
        job.attempts += 1
        job.status = Status.RUNNING
        job.lease_expires_at = _lease()
        job.next_attempt_at = None
        job.started_at = job.started_at or now
        job.save(
            update_fields=[
                "attempts",
                "status",
                "lease_expires_at",
                "next_attempt_at",
                "started_at",
                "updated_at",
            ]
        )
        return job


def job_run(*, job_id: int) -> None:
    """Run one attempt: route, then generate at once (sync provider) or submit and return."""
    job = job_claim(job_id=job_id)
    if job is None:
        return
    try:
        if job.master_id:
            _finish(job, job.master, None)  # a previous attempt stored the master, then died
        else:
            _start(job)
    except JobDeferred as deferred:
        _defer(job, str(deferred), deferred.until)
    except (ProviderError, DownloadError, BlockedDestination) as exc:
        _fail_for(job, exc)
    except StepFailed as exc:
        job_fail(job=job, error=str(exc), retryable=False)
    except Exception as exc:
        logger.exception("Job %s attempt %s failed", job.uid, job.attempts)
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")


def job_resume(*, job_id: int) -> None:
    """Go on with a job's refinement chain once a step job it waited for has ended."""
    taken = GenerationJob.objects.filter(pk=job_id, status=Status.WAITING).update(
        status=Status.RUNNING, lease_expires_at=_lease(), updated_at=timezone.now()
    )
    if not taken:
        return  # a second delivery, or the job was cancelled meanwhile
    job = _with_context(GenerationJob.objects).select_related("master").get(pk=job_id)
    try:
        _finish(job, job.master, None)
    except StepFailed as exc:
        job_fail(job=job, error=str(exc), retryable=False)
    except Exception as exc:
        logger.exception("Resuming job %s failed", job.uid)
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")


def _fail_for(job: GenerationJob, exc: Exception) -> None:
    """Fail the attempt; an error that will not go away (bad input, a blocked URL) is final."""
    where = "download" if isinstance(exc, DownloadError | BlockedDestination) else job.provider
    job_fail(
        job=job,
        error=f"{where}: {exc}",
        retry_after=getattr(exc, "retry_after", None),
        retryable=getattr(exc, "retryable", False),
    )


def _route(job: GenerationJob) -> tuple[RoutingRule | None, list[str]]:
    decision = route_for(brief=job.brief)
    rule, reasons = decision.rule, list(decision.reasons)
    if circuit_acquire(provider=decision.provider):
        return rule, reasons
    fallback = rule.fallback if rule else None
    if fallback is not None and fallback.enabled and circuit_acquire(provider=fallback.provider):
        reasons.append(f"{decision.provider} circuit open: fell back to {fallback.name}")
        return fallback, reasons
    until = circuit_open_until(provider=decision.provider) or timezone.now() + timedelta(seconds=30)
    raise JobDeferred(f"{decision.provider} circuit open; waiting", until)


def _request(job: GenerationJob, rule: RoutingRule | None, provider) -> tuple:
    brief = job.brief
    brief.campaign = job.campaign  # loaded with its brand; spares the render two queries
    brand = job.campaign.brand
    rendered = brief_render_prompt(brief=brief)
    loras = tuple(
        LoraSpec(path=lora.path, scale=lora.scale, trigger=lora.trigger_words)
        for lora in job.campaign.loras.order_by("name")
    )
    size = settings.BRANDFORGE_MASTER_SIZE
    if job.prompt_override:
        rendered = dataclasses.replace(rendered, prompt=job.prompt_override)
    request = GenerationRequest(
        prompt=rendered.prompt,
        negative_prompt=rendered.negative_prompt,
        width=size,
        height=size,
        seed=seed_for(brief=brief, variant=job.variant),
        model=(rule.model if rule else "") or provider.default_model,
        palette=tuple(brand.palette),
        loras=loras,
        params=dict(rule.params) if rule else {},
    )
    return request, rendered


def _start(job: GenerationJob) -> None:
    if job.kind != GenerationJob.Kind.GENERATE:
        _start_step(job)
        return
    rule, reasons = _route(job)
    provider_name = rule.provider if rule else "local"
    provider = get_provider(provider_name, client=provider_client())
    request, rendered = _request(job, rule, provider)
    price = rule.price_per_image if rule else Decimal("0")
    allowed, why = budget_reserve(
        job=job, amount=price, provider=provider_name, model=request.model
    )
    if not allowed:
        raise JobDeferred(why)
    # Record the route; an asynchronous provider is marked submitting in the same write,
    # committed before the request goes out.
    GenerationJob.objects.filter(pk=job.pk).update(
        rule=rule,
        provider=provider_name,
        model=request.model,
        seed=request.seed,
        route_reasons=reasons,
        status=Status.SUBMITTING if provider.is_async else Status.RUNNING,
        updated_at=timezone.now(),
    )
    job.rule, job.provider, job.model, job.seed = rule, provider_name, request.model, request.seed

    if not provider.is_async:
        started = time.monotonic()
        try:
            result = provider.generate(request)
        except ProviderError as exc:
            circuit_record(provider=provider_name, ok=False, error=str(exc))
            raise
        circuit_record(provider=provider_name, ok=True)
        latency = int((time.monotonic() - started) * 1000)
        image = open_untrusted_image(result.image_bytes, formats=("PNG", "JPEG", "WEBP"))
        outcome = Outcome(request_id=result.request_id, state=JobState.SUCCEEDED, nsfw=result.nsfw)
        master = _store_master(job, image, rendered, request, sent=result.sent, outcome=outcome)
        _settle(job, price, latency_ms=latency)
        _finish(job, master, image)
        return

    _submit(job, provider, lambda hook: provider.submit(request, webhook_url=hook))


def _start_step(job: GenerationJob) -> None:
    """Submit a remote refinement step: the provider works on the step's source image."""
    if not circuit_acquire(provider=job.provider):
        until = circuit_open_until(provider=job.provider) or timezone.now() + timedelta(seconds=30)
        raise JobDeferred(f"{job.provider} circuit open; waiting", until)
    provider = get_provider(job.provider, client=provider_client())
    model = job.model or provider.edit_model(job.kind)
    allowed, why = budget_reserve(
        job=job, amount=step_price(job), provider=job.provider, model=model
    )
    if not allowed:
        raise JobDeferred(why)
    step = get_step(job.step["step"])
    request = EditRequest(
        task=job.kind,
        image_url=source_data_uri(job.source),
        model=model,
        seed=job.seed or 0,
        params=step.edit_params(job.step["params"]),
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        model=model, status=Status.SUBMITTING, updated_at=timezone.now()
    )
    job.model = model
    _submit(job, provider, lambda hook: provider.submit_edit(request, webhook_url=hook))


def _submit(job: GenerationJob, provider, send) -> None:
    """Send the request (``send(webhook_url)``) and record the submission; then return."""
    provider_name = job.provider
    try:
        submission = send(webhook_url(provider_name, job))
    except ProviderError as exc:
        circuit_record(provider=provider_name, ok=exc.status_code == 429, error=str(exc))
        if not (exc.retryable and exc.reached):
            raise
        # The request may have reached the provider: sending it again could make a second
        # image. Wait for its webhook (whose URL names this job) to tell us the request id;
        # resubmit only if none comes before the lease runs out.
        GenerationJob.objects.filter(pk=job.pk, status=Status.SUBMITTING).update(
            error=f"{provider_name}: {exc} (waiting to learn whether it arrived)",
            lease_expires_at=_lease(settings.BRANDFORGE_JOB_POLL_AFTER_SECONDS),
            updated_at=timezone.now(),
        )
        return
    circuit_record(provider=provider_name, ok=True)
    now = timezone.now()
    GenerationJob.objects.filter(pk=job.pk, status=Status.SUBMITTING).update(
        status=Status.SUBMITTED,
        provider_request_id=submission.request_id,
        provider_urls=dict(submission.urls),
        sent=json.loads(json.dumps(dict(submission.sent), default=str)),
        submitted_at=now,
        # The webhook should arrive first; the reconciler polls once this expires.
        lease_expires_at=_lease(settings.BRANDFORGE_JOB_POLL_AFTER_SECONDS),
        updated_at=now,
    )
    job.provider_request_id = submission.request_id
    from generation.services.webhooks import webhook_adopt_early

    webhook_adopt_early(job=job)


def webhook_url(provider: str, job: GenerationJob) -> str | None:
    """Where the provider reports back; the URL names the job, so a submit whose response was
    lost can still be matched to the request the provider made of it."""
    base = settings.BRANDFORGE_PUBLIC_URL
    return f"{base.rstrip('/')}/webhooks/providers/{provider}/?job={job.uid}" if base else None


def job_poll(*, job_id: int) -> None:
    """Ask the provider about a submitted job whose webhook has not come (reconciler path)."""
    job = GenerationJob.objects.filter(pk=job_id, status=Status.SUBMITTED).first()
    if job is None or (job.lease_expires_at and job.lease_expires_at > timezone.now()):
        return
    provider = get_provider(job.provider, client=provider_client())
    try:
        outcome = provider.poll(_submission(job))
    except ProviderError as exc:
        if exc.retryable:
            GenerationJob.objects.filter(pk=job.pk, status=Status.SUBMITTED).update(
                lease_expires_at=_lease(max(int(exc.retry_after or 0), 30))
            )
            return
        outcome = Outcome(request_id=job.provider_request_id, state=JobState.FAILED, error=str(exc))
    deadline = job.submitted_at + timedelta(seconds=settings.BRANDFORGE_JOB_DEADLINE_SECONDS)
    if not outcome.state.terminal and timezone.now() > deadline:
        provider.cancel(_submission(job))
        outcome = Outcome(
            request_id=job.provider_request_id, state=JobState.FAILED, error="Provider deadline"
        )
    job_complete(job_id=job.pk, outcome=outcome_dict(outcome))


def _submission(job: GenerationJob) -> Submission:
    return Submission(request_id=job.provider_request_id, urls=job.provider_urls, sent=job.sent)


def outcome_dict(outcome: Outcome) -> dict:
    return json.loads(json.dumps(asdict(outcome), default=str))


def _outcome_from(data: dict) -> Outcome:
    outputs = tuple(OutputRef(**ref) for ref in data.get("outputs", ()))
    return Outcome(
        **{**data, "state": JobState(data["state"]), "outputs": outputs, "raw": data.get("raw", {})}
    )


def job_complete(*, job_id: int, outcome: dict) -> None:
    """Apply a provider's final answer (from a webhook or a poll) to a submitted job; once."""
    result = _outcome_from(outcome)
    if not result.state.terminal:
        GenerationJob.objects.filter(pk=job_id, status=Status.SUBMITTED).update(
            updated_at=timezone.now()
        )
        return
    # Take the job from SUBMITTED: of a webhook and a poll racing, exactly one gets it.
    now = timezone.now()
    taken = GenerationJob.objects.filter(pk=job_id, status=Status.SUBMITTED).update(
        status=Status.RUNNING, lease_expires_at=_lease(), updated_at=now
    )
    if not taken:
        return
    job = _with_context(GenerationJob.objects).select_related("source").get(pk=job_id)
    provider = get_provider(job.provider, client=provider_client())
    is_step = job.kind != GenerationJob.Kind.GENERATE
    price = _price(job)
    try:
        if result.state == JobState.CANCELLED:
            _cancelled(job)
            return
        if result.state == JobState.FAILED:
            cost_record(
                job=job,
                kind=CostEntry.Kind.ACTUAL,
                amount=Decimal("0"),
                provider=job.provider,
                model=job.model,
            )
            raise ProviderError(result.error or "the provider reported a failure", retryable=True)
        if result.needs_fetch or not result.outputs:
            result = provider.poll(_submission(job))
            if result.state != JobState.SUCCEEDED or not result.outputs:
                raise ProviderError("completed without outputs", retryable=True)
        _, image = fetch_image(result.outputs[0].url, client=download_client())
        if is_step:
            _complete_step(job, image, result, price)
            return
        request, rendered = _request(job, job.rule, provider)
        latency = int((timezone.now() - job.submitted_at).total_seconds() * 1000)
        master = _store_master(job, image, rendered, request, sent=job.sent, outcome=result)
        _settle(job, price, latency_ms=latency)
        _finish(job, master, image)
    except (ProviderError, DownloadError, BlockedDestination) as exc:
        _reset_submission(job)
        _fail_for(job, exc)
    except StepFailed as exc:
        job_fail(job=job, error=str(exc), retryable=False)
    except Exception as exc:
        logger.exception("Completing job %s failed", job.uid)
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")


def _price(job: GenerationJob) -> Decimal:
    if job.kind != GenerationJob.Kind.GENERATE:
        return step_price(job)
    return job.rule.price_per_image if job.rule else Decimal("0")


def _complete_step(job: GenerationJob, image: Image.Image, result: Outcome, price) -> None:
    """Store a step job's output as its chain node, then wake the job that waits for it."""
    latency = int((timezone.now() - job.submitted_at).total_seconds() * 1000)
    asset = step_output_store(job, image, request_id=result.request_id, sent=job.sent)
    _settle(job, price, latency_ms=latency)
    with transaction.atomic():
        if _succeed(job, output=asset, master=asset):
            enqueue(RESUME_TASK, job.parent_id)


def _reset_submission(job: GenerationJob) -> None:
    # The next attempt submits afresh: the old request is finished at the provider.
    GenerationJob.objects.filter(pk=job.pk).update(provider_request_id="", provider_urls={})


def _cancelled(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(
        status=Status.CANCELLED, lease_expires_at=None, finished_at=timezone.now()
    )
    _after_final_failure(job)


def _after_final_failure(job: GenerationJob) -> None:
    """A job that will not succeed fails its brief; a step job wakes its parent instead, which
    falls back or fails naming the step."""
    if job.parent_id:
        enqueue(RESUME_TASK, job.parent_id)
    else:
        brief_set_status(brief=job.brief, to=Brief.Status.FAILED)


def _settle(job: GenerationJob, price: Decimal, *, latency_ms: int) -> None:
    cost_record(
        job=job, kind=CostEntry.Kind.ACTUAL, amount=price, provider=job.provider, model=job.model
    )
    GenerationJob.objects.filter(pk=job.pk).update(cost=price, latency_ms=latency_ms)


def _store_master(
    job: GenerationJob,
    image: Image.Image,
    rendered: RenderedPrompt,
    request: GenerationRequest,
    *,
    sent,
    outcome: Outcome,
) -> Asset:
    brief = job.brief
    version = brief.template_version
    recipe = {
        "template": {
            "id": version.template_id,
            "version": rendered.template_version,
            "hash": rendered.template_hash,
        },
        "prompt": rendered.prompt,
        "negative_prompt": rendered.negative_prompt,
        "provider": job.provider,
        "model": job.model,
        "seed": outcome.seed if outcome.seed is not None else request.seed,
        "loras": [{"path": lora.path, "scale": lora.scale} for lora in request.loras],
        "params": dict(request.params),
        "size": [image.width, image.height],
        "sent": json.loads(json.dumps(dict(sent), default=str)),
        "request_id": outcome.request_id,
        "nsfw": outcome.nsfw,
        "brief": str(brief.uid),
        "job": str(job.uid),
        "variant": job.variant,
        "steps": [],
    }
    if job.prompt_override:
        recipe["prompt_edited"] = True
    if job.history:
        # The chain of attempts at this brief: what was tried before, and why it was dropped.
        recipe["attempts"] = list(job.history)
    master, _ = asset_create(
        brand=brief.campaign.brand, key=f"job:{job.uid}:master", image=image, recipe=recipe
    )
    GenerationJob.objects.filter(pk=job.pk).update(master=master)
    job.master = master
    return master


def _finish(job: GenerationJob, master: Asset, image: Image.Image | None) -> None:
    """Refine and render; `image` is the master's pixels when in hand (None: read them back)."""
    ctx = StepContextOnce(job)
    try:
        lineage, images = refine(job, master, image, ctx)
    except ChainWaiting:
        GenerationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.WAITING, lease_expires_at=None, updated_at=timezone.now()
        )
        return
    render(job, lineage, images, ctx)
    with transaction.atomic():
        if _succeed(job, output=lineage[-1]):
            flow_emit("job_succeeded", job.pk)


def _succeed(job: GenerationJob, **fields) -> bool:
    """Move the running job to succeeded (once: a second delivery finds it moved)."""
    now = timezone.now()
    return bool(
        GenerationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.SUCCEEDED,
            lease_expires_at=None,
            finished_at=now,
            error="",
            updated_at=now,
            **fields,
        )
    )


def _defer(job: GenerationJob, reason: str, until) -> None:
    """Put the job back without spending its attempt.

    While a circuit is open the job waits until the next probe is due; when the budget is
    reached it waits, queued, for the paused campaign to be launched again.
    """
    now = timezone.now()
    GenerationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=Status.FAILED if until else Status.QUEUED,
        attempts=max(job.attempts - 1, 0),
        error=reason,
        lease_expires_at=None,
        next_attempt_at=until,
        updated_at=now,
    )


def job_fail(
    *, job: GenerationJob, error: str, retry_after: float | None = None, retryable: bool = True
) -> None:
    """Record a failed attempt; retry later with backoff, or give up (last attempt, or an
    error that another attempt cannot fix)."""
    now = timezone.now()
    history = [*job.error_history, {"attempt": job.attempts, "at": now.isoformat(), "error": error}]
    dead = not retryable or job.attempts >= job.max_attempts
    wait = backoff(job.attempts)
    if retry_after:
        wait = max(wait, timedelta(seconds=retry_after))
    with transaction.atomic():
        GenerationJob.objects.filter(
            pk=job.pk, status__in=[Status.RUNNING, Status.SUBMITTING]
        ).update(
            status=Status.DEAD if dead else Status.FAILED,
            error=error[:2000],
            error_history=history[-20:],
            lease_expires_at=None,
            next_attempt_at=None if dead else now + wait,
            finished_at=now if dead else None,
            updated_at=now,
        )
        if dead:
            _after_final_failure(job)


def backoff(attempt: int, *, base: float = 5.0, cap: float = 300.0) -> timedelta:
    """Capped exponential backoff with full jitter (AWS Builders' Library)."""
    return timedelta(seconds=random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0))))


def jobs_reconcile() -> int:
    """Re-queue what is due: retries, expired leases, lost tasks; poll quiet submissions."""
    now = timezone.now()
    rerun = (
        GenerationJob.objects.filter(status=Status.FAILED, next_attempt_at__lte=now)
        | GenerationJob.objects.filter(
            status__in=[Status.RUNNING, Status.SUBMITTING], lease_expires_at__lte=now
        )
        | GenerationJob.objects.filter(
            status=Status.QUEUED,
            updated_at__lte=now - timedelta(seconds=settings.BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS),
        )
    ).exclude(campaign__status=Campaign.Status.PAUSED)
    count = 0
    for job_id in rerun.values_list("pk", flat=True):
        enqueue(JOB_TASK, job_id)
        count += 1
    quiet = GenerationJob.objects.filter(status=Status.SUBMITTED, lease_expires_at__lte=now)
    for job_id in quiet.values_list("pk", flat=True):
        enqueue("generation.tasks.job_poll", job_id)
        count += 1
    # A finished job whose hand-off to review was lost (a worker killed holding it) still has
    # its brief generating: hand it over again; the next stage is idempotent.
    # (Only the brief's latest attempt: an earlier one was replaced by a regeneration.)
    newer = GenerationJob.objects.filter(
        brief=OuterRef("brief"), kind=GenerationJob.Kind.GENERATE, variant__gt=OuterRef("variant")
    )
    handed_over = GenerationJob.objects.filter(
        status=Status.SUCCEEDED,
        kind=GenerationJob.Kind.GENERATE,
        brief__status=Brief.Status.GENERATING,
        finished_at__lte=now - timedelta(seconds=settings.BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS),
    ).exclude(Exists(newer))
    for job_id in handed_over.values_list("pk", flat=True):
        with transaction.atomic():
            flow_emit("job_succeeded", job_id)
        count += 1
    # A job waiting on step jobs that have all ended missed its wake-up (lost on Redis, or the
    # step ended while the job was still on its way to waiting).
    stale = now - timedelta(seconds=settings.BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS)
    asleep = (
        GenerationJob.objects.filter(status=Status.WAITING, updated_at__lte=stale)
        .exclude(step_jobs__status__in=_UNFINISHED)
        .values_list("pk", flat=True)
    )
    for job_id in asleep:
        with transaction.atomic():
            enqueue(RESUME_TASK, job_id)
        count += 1
    return count


_UNFINISHED = [
    Status.QUEUED,
    Status.SUBMITTING,
    Status.SUBMITTED,
    Status.RUNNING,
    Status.WAITING,
    Status.FAILED,
]


def job_renditions_rebuild(*, job: GenerationJob) -> int:
    """Render a finished job's renditions again (after its focal point or a layout changed);
    return how many changed. Formats whose rendition is still right are left alone."""
    job = _with_context(GenerationJob.objects).select_related("output").get(pk=job.pk)
    if job.status != Status.SUCCEEDED or job.output is None:
        return 0
    lineage = asset_lineage(job.output)
    return render(job, lineage, {}, StepContextOnce(job))


def job_requeue(*, job: GenerationJob) -> bool:
    """Give a dead or failed job a fresh set of attempts (admin action on the dead-letter list)."""
    with transaction.atomic():
        moved = GenerationJob.objects.filter(
            pk=job.pk, status__in=[Status.DEAD, Status.FAILED, Status.CANCELLED]
        ).update(
            status=Status.QUEUED,
            attempts=0,
            next_attempt_at=None,
            finished_at=None,
            provider_request_id="",
            provider_urls={},
            updated_at=timezone.now(),
        )
        if moved:
            if not job.parent_id:
                brief_set_status(brief=job.brief, to=Brief.Status.GENERATING)
                campaign_reopen(campaign_id=job.campaign_id)
            enqueue(JOB_TASK, job.pk)
            # Its step jobs that gave up get another go too; the chain waits for them again.
            for step_job in job.step_jobs.filter(status__in=[Status.DEAD, Status.CANCELLED]):
                job_requeue(job=step_job)
    return bool(moved)


def job_cancel(*, job: GenerationJob) -> bool:
    """Stop a job that has not finished; a submitted request is cancelled at the provider too."""
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            return False
        was_submitted = bool(job.provider_request_id)
        _cancelled(job)
    if was_submitted:
        enqueue("generation.tasks.job_provider_cancel", job.pk)
    for step_job in job.step_jobs.exclude(status__in=GenerationJob.TERMINAL):
        job_cancel(job=step_job)
    return True


def job_provider_cancel(*, job_id: int) -> None:
    job = GenerationJob.objects.get(pk=job_id)
    try:
        get_provider(job.provider, client=provider_client()).cancel(_submission(job))
    except ProviderError as exc:
        logger.warning("Cancelling %s at %s failed: %s", job.uid, job.provider, exc)
