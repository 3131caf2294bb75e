"""Provides the refinement chain of a job (local steps inline, remote steps as step jobs) and
its renditions."""

import base64
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image

from assets.layouts import render_layout
from assets.models import Asset, Layout
from assets.selectors import brand_fonts, brand_logo_image, file_open_image
from assets.services import RenditionSpec, asset_create, asset_set_status, rendition_create
from brandforge.images import CONTENT_TYPES
from brandforge.tasks import enqueue
from campaigns.selectors import campaign_layouts
from generation.models import GenerationJob, RefinementChain
from generation.pipeline.base import StepContext
from generation.pipeline.focal import find_focal_point
from generation.pipeline.reframe import reframe_to
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
            # A remote step reads its input from storage itself; only a local one needs pixels.
            source = images.get(current.pk) or (
                None if isinstance(step, RemoteStep) else file_open_image(current.file)
            )
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
            asset=current, to=Asset.Status.INTERMEDIATE, from_status=Asset.Status.GENERATED
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
    source: Image.Image | None,
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
        source = source or file_open_image(current.file)
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


@dataclass(frozen=True)
class LayoutInputs:
    """What a layout draws besides the picture: the brief's text, the brand's kit."""

    variables: dict
    palette: tuple[str, ...]
    fonts: dict[str, bytes]
    logo: Image.Image | None


def rendition_image(
    source: Image.Image,
    *,
    width: int,
    height: int,
    focal_point: tuple[float, float],
    overlays: list[dict],
    ctx: StepContext,
    layout: Layout | None = None,
    layout_inputs: LayoutInputs | None = None,
    fill: str = "auto",
) -> Image.Image:
    """One channel format's picture: ``source`` reframed to the format, composed into the
    layout, then the overlay steps (the watermark) applied at the format's size.

    ``fill="auto"`` crops around the focal point but keeps the subject whole, extending the
    canvas when a crop would cut it; ``"crop"`` crops around the focal point, full stop.
    """
    framed = reframe_to(source, width=width, height=height, focal_point=focal_point, fill=fill)
    if layout is not None and layout_inputs is not None:
        framed = render_layout(
            layout.layers,
            image=framed,
            width=width,
            height=height,
            design_size=(layout.width, layout.height),
            variables=layout_inputs.variables,
            palette=layout_inputs.palette,
            fonts=layout_inputs.fonts,
            logo=layout_inputs.logo,
        )
    for entry in overlays:
        framed = get_step(entry["step"]).run(framed, entry["params"], ctx)
    return framed


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def render(
    job: GenerationJob,
    lineage: list[Asset],
    images: dict[int, Image.Image],
    ctx: StepContextOnce,
) -> int:
    """Build one rendition of the final asset per channel format, each in its layout; return
    how many were made.

    Overlay steps (the watermark) are placed relative to the frame, so a crop must not cut them
    off: renditions are reframed from the asset before the trailing overlays, which are then
    applied again at the rendition's size. The spec of a rendition names everything that shapes
    its bytes (format, overlays, layout and the text in it), so a change makes a new one.
    """
    final = lineage[-1]
    steps = final.recipe.get("steps", [])
    trailing = 0
    while trailing < len(steps) and get_step(steps[-1 - trailing]["step"]).overlay:
        trailing += 1
    overlays = steps[len(steps) - trailing :]
    source = lineage[len(lineage) - 1 - trailing]
    image = images.get(source.pk)
    layouts = campaign_layouts(campaign=job.campaign)
    inputs = _layout_inputs(job, ctx) if layouts else None
    # A focal point set by hand is the editor's decision: crop around it. Otherwise find one
    # and keep the subject whole.
    focal_point = next((node.focal_point for node in reversed(lineage) if node.focal_point), None)
    fill = "crop" if focal_point else "auto"
    done = set(final.renditions.values_list("spec", flat=True))
    wanted: set[str] = set()
    made = 0
    for fmt in job.campaign.formats.order_by("name"):
        layout = layouts.get(fmt.pk)
        extras = []
        if overlays:
            extras.append(_digest(overlays))
        if fill == "crop":
            extras.append(f"F{focal_point[0]:.3f},{focal_point[1]:.3f}")
        if layout is not None:
            extras.append(
                "L"
                + _digest([layout.pk, layout.layers, layout.width, layout.height, inputs.variables])
            )
        spec = RenditionSpec(
            format_name=fmt.name,
            spec="+".join([fmt.spec, *extras]),
            width=fmt.width,
            height=fmt.height,
            file_format=fmt.file_format,
            quality=fmt.quality,
            dpi=fmt.dpi,
        )
        wanted.add(spec.spec)
        if spec.spec in done:
            continue
        image = image or file_open_image(source.file)
        focal_point = focal_point or find_focal_point(image)
        framed = rendition_image(
            image,
            width=fmt.width,
            height=fmt.height,
            focal_point=focal_point,
            overlays=overlays,
            ctx=ctx.get(),
            layout=layout,
            layout_inputs=inputs,
            fill=fill,
        )
        rendition_create(asset=final, spec=spec, image=framed)
        made += 1
    asset_set_status(asset=final, to=Asset.Status.RENDERED, from_status=Asset.Status.GENERATED)
    # Renditions of an older focal point or layout go, unless they were published already.
    final.renditions.exclude(spec__in=wanted).filter(published_at=None).delete()
    return made


def _layout_inputs(job: GenerationJob, ctx: StepContextOnce) -> LayoutInputs:
    brand = job.campaign.brand
    variables = {"brand": brand.name, "locale": job.brief.locale, **job.brief.variables}
    return LayoutInputs(
        variables=variables,
        palette=tuple(brand.palette),
        fonts=brand_fonts(brand),
        logo=ctx.get().logo,
    )
