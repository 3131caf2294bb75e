"""Provides the refinement chain of a job (local steps inline, remote steps as step jobs) and
its renditions."""

import base64
import hashlib
import json
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from assets.models import Asset
from assets.selectors import brand_logo_image, file_open_image
from assets.services import RenditionSpec, asset_create, asset_set_status, rendition_create
from brandforge.images import CONTENT_TYPES, cover
from brandforge.tasks import enqueue
from generation.models import GenerationJob, RefinementChain
from generation.pipeline.base import StepContext
from generation.pipeline.registry import get_step, validate_chain
from generation.pipeline.remote import RemoteStep

JOB_TASK = "generation.tasks.job_run"
Status = GenerationJob.Status


class ChainWaiting(Exception):
    """A remote step of the chain is still running at its provider; the job waits for it."""


class StepFailed(Exception):
    """A step failed on valid parameters; the message names it and its place in the chain."""

    def __init__(self, position: int, step: str, message: str) -> None:
        super().__init__(f"step {position} ({step}): {message}")
        self.step = step


def chain_for(*, job: GenerationJob) -> list[dict]:
    """The steps after generation, most specific first: the campaign's chain, the routing
    rule's, the brand's, else the brand's watermark when it has a logo."""
    chains = {
        chain.campaign_id: chain.steps
        for chain in RefinementChain.objects.filter(
            Q(campaign_id=job.campaign_id) | Q(campaign=None), brand_id=job.campaign.brand_id
        )
    }
    if job.campaign_id in chains:
        return validate_chain(chains[job.campaign_id])
    if job.rule is not None and job.rule.refinement_chain:
        return validate_chain(job.rule.refinement_chain)
    if None in chains:
        return validate_chain(chains[None])
    brand = job.campaign.brand
    if not brand.logo:
        return []
    return validate_chain([{"step": "watermark", "params": brand.watermark_params()}])


def step_key(parent: Asset, entry: dict) -> str:
    """The key of the asset a chain entry makes from ``parent``: the same work, the same key."""
    spec = json.dumps(entry, sort_keys=True)
    return "step:" + hashlib.sha256(f"{parent.key}|{spec}".encode()).hexdigest()[:40]


class StepContextOnce:
    """The step context of one job, built on first use (the logo is decoded once per job)."""

    def __init__(self, job: GenerationJob):
        self.job = job
        self._ctx: StepContext | None = None

    def get(self) -> StepContext:
        if self._ctx is None:
            brand = self.job.campaign.brand
            self._ctx = StepContext(
                logo=brand_logo_image(brand), palette=tuple(brand.palette), seed=self.job.seed or 0
            )
        return self._ctx


def refine(
    job: GenerationJob, master: Asset, image: Image.Image | None, ctx: StepContextOnce
) -> tuple[list[Asset], dict[int, Image.Image]]:
    """Run the chain; return the lineage from the master to the final asset, and the pixels of
    the nodes at hand (so rendering need not read them back).

    Every node is keyed by its parent and its entry, so running the chain again (a retry, or
    the resume after a remote step) skips what is done. Raises ``ChainWaiting`` while a remote
    step runs and ``StepFailed`` when a step cannot be done.
    """
    brand = job.campaign.brand
    nodes = [master]
    images = {master.pk: image} if image is not None else {}
    for position, entry in enumerate(chain_for(job=job), start=1):
        current = nodes[-1]
        key = step_key(current, entry)
        child = Asset.objects.filter(key=key).first()
        if child is None:
            step = get_step(entry["step"])
            source = images.get(current.pk) or file_open_image(current.file)
            if isinstance(step, RemoteStep):
                child, output = _remote_output(
                    job, step, entry, current, source, key, position, ctx
                )
            else:
                output = _run_local(step, entry, source, ctx, position)
                child, _ = asset_create(
                    brand=brand,
                    key=key,
                    image=output,
                    recipe=_recipe_with(current, entry),
                    parent=current,
                    step=entry["step"],
                )
            images[child.pk] = output
        asset_set_status(
            asset=current, to=Asset.Status.INTERMEDIATE, allowed_from=[Asset.Status.GENERATED]
        )
        nodes.append(child)
    return nodes, images


def _recipe_with(parent: Asset, entry: dict, **extra) -> dict:
    return {**parent.recipe, "steps": [*parent.recipe.get("steps", []), {**entry, **extra}]}


def _run_local(step, entry: dict, source: Image.Image, ctx: StepContextOnce, position: int):
    try:
        return step.run(source, entry["params"], ctx.get())
    except Exception as exc:
        # Any failure inside a step is that step's: the job fails naming it, the worker lives.
        raise StepFailed(position, entry["step"], f"{type(exc).__name__}: {exc}") from exc


def _remote_output(
    job: GenerationJob,
    step: RemoteStep,
    entry: dict,
    current: Asset,
    source: Image.Image,
    key: str,
    position: int,
    ctx: StepContextOnce,
) -> tuple[Asset, Image.Image]:
    """The output of a remote step, once its step job has made it; else start or await it."""
    step_job = GenerationJob.objects.filter(idempotency_key=f"step:{key}").first()
    if step_job is None:
        _step_job_start(job, step, entry, current, key, position)
        raise ChainWaiting(entry["step"])
    if step_job.status == Status.SUCCEEDED and step_job.output_id:
        output = step_job.output
        return output, file_open_image(output.file)
    if step_job.status not in (Status.DEAD, Status.CANCELLED):
        raise ChainWaiting(entry["step"])
    if entry["params"].get("fallback") == "upscale_local":
        fallback = get_step("upscale_local")
        params = fallback.validate_params({"factor": entry["params"]["scale"]})
        used = {"step": "upscale_local", "params": params}
        output = _run_local(fallback, used, source, ctx, position)
        # The recipe says the provider's upscale was replaced, with what and why.
        reason = step_job.error[:500]
        child, _ = asset_create(
            brand=job.campaign.brand,
            key=key,
            image=output,
            recipe=_recipe_with(current, entry, fallback={**used, "reason": reason}),
            parent=current,
            step=entry["step"],
        )
        return child, output
    raise StepFailed(position, entry["step"], step_job.error or f"the step job {step_job.status}")


def _step_job_start(
    job: GenerationJob, step: RemoteStep, entry: dict, source: Asset, key: str, position: int
) -> None:
    """Create the step job and put the parent job to wait, in one transaction.

    The step job's task is queued on commit, so it cannot finish (and try to wake the parent)
    before the parent is waiting.
    """
    params = entry["params"]
    with transaction.atomic():
        try:
            with transaction.atomic():
                step_job = GenerationJob.objects.create(
                    campaign=job.campaign,
                    brief=job.brief,
                    variant=job.variant,
                    kind=step.kind,
                    parent=job,
                    source=source,
                    step={**entry, "key": key, "position": position},
                    idempotency_key=f"step:{key}",
                    provider=params["provider"],
                    model=params["model"],
                    seed=job.seed,
                    max_attempts=settings.BRANDFORGE_JOB_MAX_ATTEMPTS,
                )
        except IntegrityError:
            step_job = None  # another delivery made it and queued it
        GenerationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
            status=Status.WAITING, lease_expires_at=None, updated_at=timezone.now()
        )
        if step_job is not None:
            enqueue(JOB_TASK, step_job.pk)


def step_price(job: GenerationJob) -> Decimal:
    return Decimal(str(job.step.get("params", {}).get("price", 0)))


def source_data_uri(asset: Asset) -> str:
    """The step job's input image, inline: providers accept ``data:`` URIs, and no public URL
    of our storage has to exist."""
    with asset.file.open("rb") as fh:
        data = fh.read()
    content_type = CONTENT_TYPES.get(asset.file_format.upper(), "image/png")
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def step_output_store(
    job: GenerationJob, image: Image.Image, *, request_id: str, sent: dict
) -> Asset:
    """Store a step job's output as the chain node it was made for."""
    entry = {k: v for k, v in job.step.items() if k not in ("key", "position")}
    remote = {"provider": job.provider, "model": job.model, "request_id": request_id, "sent": sent}
    asset, _ = asset_create(
        brand=job.campaign.brand,
        key=job.step["key"],
        image=image,
        recipe=_recipe_with(job.source, entry, remote=remote),
        parent=job.source,
        step=entry["step"],
    )
    return asset


def render(
    job: GenerationJob,
    lineage: list[Asset],
    images: dict[int, Image.Image],
    ctx: StepContextOnce,
) -> None:
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
    image = images.get(source.pk)
    done = set(final.renditions.values_list("spec", flat=True))
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
        if spec.spec in done:
            continue
        image = image or file_open_image(source.file)
        framed = cover(image, width=fmt.width, height=fmt.height)
        for entry in overlays:
            framed = get_step(entry["step"]).run(framed, entry["params"], ctx.get())
        rendition_create(asset=final, spec=spec, image=framed)
    asset_set_status(asset=final, to=Asset.Status.RENDERED, allowed_from=[Asset.Status.GENERATED])
