"""Provides the generation engine: jobs per brief, leases, then generate → refine → render."""

import hashlib
import json
import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from assets.models import Asset
from assets.selectors import brand_logo_image, file_open_image
from assets.services import RenditionSpec, asset_create, asset_set_status, rendition_create
from brandforge.images import open_untrusted_image
from brandforge.tasks import enqueue, flow_emit
from campaigns.models import Brief, Campaign
from campaigns.services import brief_render_prompt, brief_set_status, campaign_reopen
from generation.models import GenerationJob, RoutingRule
from generation.pipeline.base import StepContext
from generation.pipeline.registry import get_step, validate_chain
from generation.pipeline.renditions import cover
from generation.providers.base import GenerationRequest, LoraSpec
from generation.providers.registry import get_provider

logger = logging.getLogger(__name__)

JOB_TASK = "generation.tasks.job_run"


def job_key(brief: Brief, variant: int) -> str:
    return f"brief:{brief.uid}:v{variant}"


def campaign_jobs_create(*, campaign_id: int) -> int:
    """Make the first job of every brief of a running campaign and queue it; safe to repeat."""
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status != Campaign.Status.RUNNING:
        return 0
    queued = 0
    for brief in campaign.briefs.filter(status=Brief.Status.PENDING):
        with transaction.atomic():
            job, created = GenerationJob.objects.get_or_create(
                idempotency_key=job_key(brief, 0),
                defaults={
                    "campaign": campaign,
                    "brief": brief,
                    "variant": 0,
                    "max_attempts": settings.BRANDFORGE_JOB_MAX_ATTEMPTS,
                },
            )
            brief_set_status(
                brief=brief, to=Brief.Status.GENERATING, allowed_from=[Brief.Status.PENDING]
            )
            if created or job.status == GenerationJob.Status.QUEUED:
                enqueue(JOB_TASK, job.pk)
                queued += 1
    return queued


def route_for(*, brief: Brief) -> RoutingRule | None:
    """Pick the enabled rule with the lowest priority; None means the built-in local route."""
    return RoutingRule.objects.filter(enabled=True).order_by("priority", "pk").first()


def seed_for(*, brief: Brief, variant: int) -> int:
    profile = brief.campaign.seed_profile
    if profile is not None and profile.strategy == profile.Strategy.FIXED:
        return (profile.base_seed + variant) % 2**32
    base = profile.base_seed if profile is not None else 0
    digest = hashlib.sha256(f"{base}:{brief.uid}:{variant}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def job_claim(*, job_id: int) -> GenerationJob | None:
    """Take the job for one attempt, or return None when another attempt owns or finished it.

    The attempt counter is written and committed before any work starts, so a task that keeps
    killing its worker still runs out of attempts (django-q2's own counter never sees those).
    """
    now = timezone.now()
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_terminal:
            return None
        if job.lease_expires_at and job.lease_expires_at > now:
            return None
        if job.status == GenerationJob.Status.FAILED and job.next_attempt_at > now:
            return None  # a duplicate delivery must not jump the backoff
        if job.attempts >= job.max_attempts:
            job.status = GenerationJob.Status.DEAD
            job.error = job.error or "Ran out of attempts."
            job.finished_at = now
            job.save(update_fields=["status", "error", "finished_at", "updated_at"])
            brief_set_status(brief=job.brief, to=Brief.Status.FAILED)
            return None
        job.attempts += 1
        job.status = GenerationJob.Status.RUNNING
        job.lease_expires_at = now + timedelta(seconds=settings.BRANDFORGE_JOB_LEASE_SECONDS)
        job.started_at = job.started_at or now
        job.save(
            update_fields=["attempts", "status", "lease_expires_at", "started_at", "updated_at"]
        )
        return job


def job_run(*, job_id: int) -> GenerationJob | None:
    """Run one attempt of the job: generate the master, refine it, render every channel format."""
    job = job_claim(job_id=job_id)
    if job is None:
        return None
    try:
        lineage = _refine(job, job.master or _generate_master(job))
        _render(job, lineage)
        final = lineage[-1]
    except Exception as exc:
        logger.exception("Job %s attempt %s failed", job.uid, job.attempts)
        job_fail(job=job, error=f"{type(exc).__name__}: {exc}")
        return job
    with transaction.atomic():
        done = GenerationJob.objects.filter(pk=job.pk, status=GenerationJob.Status.RUNNING).update(
            status=GenerationJob.Status.SUCCEEDED,
            output=final,
            lease_expires_at=None,
            finished_at=timezone.now(),
            error="",
            updated_at=timezone.now(),
        )
        if done:
            flow_emit("job_succeeded", job.pk)
    job.refresh_from_db()
    return job


def job_fail(*, job: GenerationJob, error: str) -> None:
    """Record a failed attempt; retry later with backoff, or give up after the last attempt."""
    now = timezone.now()
    history = [*job.error_history, {"attempt": job.attempts, "at": now.isoformat(), "error": error}]
    dead = job.attempts >= job.max_attempts
    with transaction.atomic():
        GenerationJob.objects.filter(pk=job.pk, status=GenerationJob.Status.RUNNING).update(
            status=GenerationJob.Status.DEAD if dead else GenerationJob.Status.FAILED,
            error=error[:2000],
            error_history=history[-20:],
            lease_expires_at=None,
            next_attempt_at=None if dead else now + backoff(job.attempts),
            finished_at=now if dead else None,
            updated_at=now,
        )
        if dead:
            brief_set_status(brief=job.brief, to=Brief.Status.FAILED)


def backoff(attempt: int, *, base: float = 5.0, cap: float = 300.0) -> timedelta:
    """Capped exponential backoff with full jitter (AWS Builders' Library)."""
    return timedelta(seconds=random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0))))


def jobs_reconcile() -> int:
    """Re-queue jobs whose retry is due, whose lease expired, or whose task the broker lost."""
    now = timezone.now()
    due = (
        GenerationJob.objects.filter(status=GenerationJob.Status.FAILED, next_attempt_at__lte=now)
        | GenerationJob.objects.filter(
            status__in=[GenerationJob.Status.RUNNING, GenerationJob.Status.SUBMITTING],
            lease_expires_at__lte=now,
        )
        | GenerationJob.objects.filter(
            status=GenerationJob.Status.QUEUED, created_at__lte=now - timedelta(minutes=2)
        )
    )
    count = 0
    for job_id in due.values_list("pk", flat=True):
        enqueue(JOB_TASK, job_id)
        count += 1
    return count


def _generate_master(job: GenerationJob) -> Asset:
    brief = job.brief
    brand = brief.campaign.brand
    rule = route_for(brief=brief)
    provider = get_provider(rule.provider if rule else "local")
    model = (rule.model if rule else "") or provider.default_model
    rendered = brief_render_prompt(brief=brief)
    seed = seed_for(brief=brief, variant=job.variant)
    loras = tuple(
        LoraSpec(path=lora.path, scale=lora.scale, trigger=lora.trigger_words)
        for lora in brief.campaign.loras.order_by("name")
    )
    size = settings.BRANDFORGE_MASTER_SIZE
    request = GenerationRequest(
        prompt=rendered.prompt,
        negative_prompt=rendered.negative_prompt,
        width=size,
        height=size,
        seed=seed,
        model=model,
        palette=tuple(brand.palette),
        loras=loras,
        params=dict(rule.params) if rule else {},
    )
    started = time.monotonic()
    result = provider.generate(request)
    latency_ms = int((time.monotonic() - started) * 1000)
    # Provider output is untrusted input: decode it under the same guards as an upload.
    image = open_untrusted_image(result.image_bytes, formats=("PNG", "JPEG", "WEBP"))
    version = brief.template_version
    recipe = {
        "template": {
            "id": version.template_id,
            "version": rendered.template_version,
            "hash": rendered.template_hash,
        },
        "prompt": rendered.prompt,
        "negative_prompt": rendered.negative_prompt,
        "provider": result.provider,
        "model": result.model,
        "seed": seed,
        "loras": [{"path": lora.path, "scale": lora.scale} for lora in loras],
        "params": dict(request.params),
        "size": [image.width, image.height],
        "sent": json.loads(json.dumps(result.sent, default=str)),
        "request_id": result.request_id,
        "brief": str(brief.uid),
        "job": str(job.uid),
        "variant": job.variant,
        "steps": [],
    }
    master, _ = asset_create(brand=brand, key=f"job:{job.uid}:master", image=image, recipe=recipe)
    GenerationJob.objects.filter(pk=job.pk).update(
        master=master,
        rule=rule,
        provider=result.provider,
        model=result.model,
        seed=seed,
        provider_request_id=result.request_id,
        cost=result.cost,
        latency_ms=latency_ms,
        updated_at=timezone.now(),
    )
    job.master, job.seed = master, seed
    return master


def refinement_chain(*, brief: Brief) -> list[dict]:
    """The chain every master goes through; for now the brand watermark, when there is a logo."""
    brand = brief.campaign.brand
    if not brand.logo:
        return []
    return validate_chain([{"step": "watermark", "params": brand.watermark_params()}])


def _refine(job: GenerationJob, master: Asset) -> list[Asset]:
    """Run the refinement chain; return the lineage from the master to the final asset."""
    brief = job.brief
    brand = brief.campaign.brand
    nodes = [master]
    image = None
    for entry in refinement_chain(brief=brief):
        current = nodes[-1]
        spec = json.dumps(entry, sort_keys=True)
        key = "step:" + hashlib.sha256(f"{current.key}|{spec}".encode()).hexdigest()[:40]
        child = Asset.objects.filter(key=key).first()
        if child is None:
            image = image or file_open_image(current.file)
            image = get_step(entry["step"]).run(image, entry["params"], _step_context(job, brand))
            recipe = {**current.recipe, "steps": [*current.recipe.get("steps", []), entry]}
            child, _ = asset_create(
                brand=brand, key=key, image=image, recipe=recipe, parent=current, step=entry["step"]
            )
        else:
            image = None
        asset_set_status(
            asset=current, to=Asset.Status.INTERMEDIATE, allowed_from=[Asset.Status.GENERATED]
        )
        nodes.append(child)
    return nodes


def _step_context(job: GenerationJob, brand) -> StepContext:
    return StepContext(
        logo=brand_logo_image(brand), palette=tuple(brand.palette), seed=job.seed or 0
    )


def _render(job: GenerationJob, lineage: list[Asset]) -> None:
    """Build one rendition of the final asset per channel format.

    Overlay steps (the watermark) are placed relative to the frame, so a crop must not cut them
    off: renditions are cropped from the asset before the trailing overlays, which are then
    applied again at the rendition's size.
    """
    final = lineage[-1]
    steps = final.recipe.get("steps", [])
    trailing = 0
    while trailing < len(steps) and get_step(steps[-1 - trailing]["step"]).overlay:
        trailing += 1
    overlays = steps[len(steps) - trailing :]
    source = lineage[len(lineage) - 1 - trailing]
    overlay_digest = (
        hashlib.sha256(json.dumps(overlays, sort_keys=True).encode()).hexdigest()[:12]
        if overlays
        else ""
    )
    image = None
    ctx = None
    for fmt in job.campaign.formats.order_by("name"):
        spec = RenditionSpec(
            format_name=fmt.name,
            spec=f"{fmt.spec}+{overlay_digest}" if overlay_digest else fmt.spec,
            width=fmt.width,
            height=fmt.height,
            file_format=fmt.file_format,
            quality=fmt.quality,
            dpi=fmt.dpi,
        )
        if final.renditions.filter(spec=spec.spec).exists():
            continue
        image = image or file_open_image(source.file)
        ctx = ctx or _step_context(job, final.brand)
        framed = cover(image, width=fmt.width, height=fmt.height)
        for entry in overlays:
            framed = get_step(entry["step"]).run(framed, entry["params"], ctx)
        rendition_create(asset=final, spec=spec, image=framed)
    asset_set_status(asset=final, to=Asset.Status.RENDERED, allowed_from=[Asset.Status.GENERATED])


def job_requeue(*, job: GenerationJob) -> bool:
    """Give a dead or failed job a fresh set of attempts (admin action on the dead-letter list)."""
    with transaction.atomic():
        moved = GenerationJob.objects.filter(
            pk=job.pk, status__in=[GenerationJob.Status.DEAD, GenerationJob.Status.FAILED]
        ).update(
            status=GenerationJob.Status.QUEUED,
            attempts=0,
            next_attempt_at=None,
            finished_at=None,
            updated_at=timezone.now(),
        )
        if moved:
            brief_set_status(brief=job.brief, to=Brief.Status.GENERATING)
            campaign_reopen(campaign_id=job.campaign_id)
            enqueue(JOB_TASK, job.pk)
    return bool(moved)
