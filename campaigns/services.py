"""Provides every write to templates, campaigns and briefs, and the brief's prompt rendering."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from brandforge.errors import ApplicationError
from brandforge.tasks import flow_emit
from campaigns import prompting
from campaigns.models import Brief, Campaign, PromptTemplate, PromptTemplateVersion


@transaction.atomic
def prompt_template_version_create(
    *, template: PromptTemplate, body: str, variables: list[str], negative_prompt: str = ""
) -> PromptTemplateVersion:
    """Add a version to `template`; saving the same wording twice returns the existing version."""
    # Lock the template so two editors saving at once get consecutive numbers.
    PromptTemplate.objects.select_for_update().get(pk=template.pk)
    version = PromptTemplateVersion(
        template=template, body=body, variables=list(variables), negative_prompt=negative_prompt
    )
    version.clean()
    version.content_hash = version.compute_hash()
    existing = template.versions.filter(content_hash=version.content_hash).first()
    if existing is not None:
        return existing
    version.number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version.full_clean()
    version.save()
    return version


def brief_create(
    *,
    campaign: Campaign,
    template_version: PromptTemplateVersion,
    variables: dict,
    locale: str,
    external_ref: str = "",
) -> tuple[Brief, bool]:
    """Add a brief; submitting the same brief again returns the one already there."""
    brief = Brief(
        campaign=campaign,
        template_version=template_version,
        variables=variables,
        locale=locale,
        external_ref=external_ref,
    )
    if external_ref:
        same_ref = campaign.briefs.filter(external_ref=external_ref).first()
        if same_ref is not None:
            if same_ref.fingerprint == brief.compute_fingerprint():
                return same_ref, False
            raise ApplicationError(
                f"Brief {external_ref!r} already exists in this campaign with other content."
            )
    try:
        brief.full_clean()
    except ValidationError as exc:
        duplicate = campaign.briefs.filter(fingerprint=brief.fingerprint).first()
        if brief.fingerprint and duplicate is not None and not external_ref:
            return duplicate, False
        raise exc
    try:
        with transaction.atomic():
            brief.save()
    except IntegrityError:
        return campaign.briefs.get(fingerprint=brief.fingerprint), False
    return brief, True


@dataclass(frozen=True)
class RenderedPrompt:
    prompt: str
    negative_prompt: str
    template_version: int
    template_hash: str


def brief_render_prompt(*, brief: Brief) -> RenderedPrompt:
    """Render the brief's prompt: template slots, then brand style tokens; negatives merged."""
    version = brief.template_version
    brand = brief.campaign.brand
    values = prompting.validate_values(version.variables, brief.variables)
    values.update(brand=brand.name, locale=brief.locale)
    prompt = prompting.render(version.body, values)
    if brand.style_tokens:
        prompt = ", ".join([prompt, *brand.style_tokens])
    negatives = [text for text in (version.negative_prompt, brand.negative_prompt) if text.strip()]
    return RenderedPrompt(
        prompt=prompt,
        negative_prompt=", ".join(negatives),
        template_version=version.number,
        template_hash=version.content_hash,
    )


@transaction.atomic
def campaign_launch(*, campaign: Campaign) -> Campaign:
    """Start a draft or paused campaign; workers then make one job per brief."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
        raise ApplicationError(
            f"{campaign.name} is {campaign.get_status_display()}; it cannot be launched."
        )
    if not campaign.formats.exists():
        raise ApplicationError(
            f"{campaign.name} has no channel format: add at least one before launching."
        )
    briefs = list(campaign.briefs.select_related("template_version"))
    if not briefs:
        raise ApplicationError(
            f"{campaign.name} has no briefs: add or import briefs before launching."
        )
    for brief in briefs:
        try:
            brief_render_prompt(brief=brief)
        except ValidationError as exc:
            raise ApplicationError(f"Brief {brief}: {' '.join(exc.messages)}") from exc
    campaign.status = Campaign.Status.RUNNING
    campaign.status_reason = ""
    campaign.launched_at = campaign.launched_at or timezone.now()
    campaign.save(update_fields=["status", "status_reason", "launched_at", "updated_at"])
    flow_emit("campaign_launched", campaign.pk)
    return campaign


def brief_set_status(
    *, brief: Brief, to: Brief.Status, allowed_from: Iterable[Brief.Status] | None = None
) -> bool:
    """Move a brief along; when the last open brief is done, the campaign completes."""
    qs = Brief.objects.filter(pk=brief.pk)
    if allowed_from is not None:
        qs = qs.filter(status__in=list(allowed_from))
    moved = qs.update(status=to, updated_at=timezone.now())
    if moved:
        brief.status = to
    if moved and to in Brief.DONE:
        campaign_complete_if_done(campaign_id=brief.campaign_id)
    return bool(moved)


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    open_briefs = Brief.objects.filter(campaign_id=campaign_id).exclude(status__in=Brief.DONE)
    if open_briefs.exists():
        return False
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).update(
            status=Campaign.Status.COMPLETED, completed_at=timezone.now(), updated_at=timezone.now()
        )
    )


def campaign_reopen(*, campaign_id: int) -> bool:
    """Put a completed campaign back to running, when work on one of its briefs starts again."""
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.COMPLETED).update(
            status=Campaign.Status.RUNNING, completed_at=None, updated_at=timezone.now()
        )
    )
