"""Provides scoring, quality gates, review decisions (each one audited) and publishing."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from assets.models import Asset
from assets.selectors import file_open_image
from assets.services import asset_publish, asset_set_status
from brandforge.errors import ApplicationError
from brandforge.tasks import enqueue
from campaigns.models import Brief, Campaign
from campaigns.services import brief_set_status
from generation.models import GenerationJob
from review.models import AuditEvent, QualityGate, ReviewItem, Score
from review.scoring.base import ScoreContext
from review.scoring.registry import scorers_for

PUBLISH_TASK = "review.tasks.review_item_publish"
Source = AuditEvent.Source


def gate_for(*, campaign: Campaign) -> QualityGate | None:
    """The campaign's own gate, else the brand's default gate, else none (scorer defaults)."""
    gate = QualityGate.objects.filter(campaign=campaign).first()
    return gate or QualityGate.objects.filter(brand_id=campaign.brand_id, campaign=None).first()


def asset_score(*, asset: Asset, gate: QualityGate | None) -> list[Score]:
    """Run every scorer on the master image and each rendition; stored once per scorer version."""
    thresholds = dict(gate.thresholds) if gate else {}
    subjects = [
        ("master", file_open_image(asset.file), ScoreContext(thresholds=thresholds), "master")
    ]
    for rendition in asset.renditions.order_by("format_name"):
        ctx = ScoreContext(
            target_width=rendition.width, target_height=rendition.height, thresholds=thresholds
        )
        subjects.append((rendition.format_name, file_open_image(rendition.file), ctx, "rendition"))
    scores = []
    for subject, image, ctx, kind in subjects:
        for scorer in scorers_for(kind):
            result = scorer.score(image, ctx)
            scores.append(
                Score(
                    asset=asset,
                    subject=subject,
                    scorer=scorer.name,
                    scorer_version=scorer.version,
                    value=result.value,
                    passed=result.passed,
                    details=result.details,
                )
            )
    # One upsert: scoring again (a second delivery, a new threshold) replaces the values.
    Score.objects.bulk_create(
        scores,
        update_conflicts=True,
        unique_fields=["asset", "subject", "scorer", "scorer_version"],
        update_fields=["value", "passed", "details", "updated_at"],
    )
    return scores


def audit(
    *,
    action: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    asset: Asset | None = None,
    item: ReviewItem | None = None,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    data: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        action=action,
        source=source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        asset=asset,
        review_item=item,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=data or {},
    )


def job_review_prepare(*, job_id: int) -> ReviewItem | None:
    """Score a finished job's asset, apply the gate and put it in the review queue (once)."""
    job = GenerationJob.objects.select_related("campaign", "brief", "output").get(pk=job_id)
    asset = job.output
    if asset is None or job.status != GenerationJob.Status.SUCCEEDED:
        return None
    existing = ReviewItem.objects.filter(asset=asset).first()
    if existing is not None:
        return existing
    gate = gate_for(campaign=job.campaign)
    scores = asset_score(asset=asset, gate=gate)
    gated = [s for s in scores if gate is None or s.scorer in gate.thresholds]
    failed = [f"{s.scorer}@{s.subject}" for s in gated if not s.passed]
    reject = bool(failed) and gate is not None and gate.on_fail == QualityGate.OnFail.REJECT
    summary = {"gate": gate.name if gate else None, "failed": failed, "checked": len(gated)}
    try:
        with transaction.atomic():
            item = ReviewItem.objects.create(
                asset=asset,
                campaign=job.campaign,
                brief=job.brief,
                flagged=bool(failed),
                gate_summary=summary,
            )
            audit(
                action="review_item_created",
                source=Source.WORKER,
                asset=asset,
                item=item,
                to_status=ReviewItem.Status.PENDING,
                data=summary,
            )
            _asset_move(
                asset, Asset.Status.IN_REVIEW, [Asset.Status.RENDERED], Source.WORKER, None, ""
            )
            brief_set_status(
                brief=job.brief, to=Brief.Status.IN_REVIEW, allowed_from=[Brief.Status.GENERATING]
            )
            if reject:
                _decide(
                    item,
                    to=ReviewItem.Status.REJECTED,
                    actor=None,
                    source=Source.WORKER,
                    reason=f"Quality gate {gate.name}: {', '.join(failed)} failed.",
                )
    except IntegrityError:
        # A second delivery of this task created the item first.
        return ReviewItem.objects.get(asset=asset)
    return item


def _asset_move(asset, to, allowed_from, source, actor, reason) -> None:
    before = asset.status
    if asset_set_status(asset=asset, to=to, allowed_from=allowed_from):
        audit(
            action="asset_status",
            source=source,
            actor=actor,
            asset=asset,
            from_status=before,
            to_status=to,
            reason=reason,
        )


def _decide(item: ReviewItem, *, to: ReviewItem.Status, actor, source: str, reason: str) -> None:
    """Move a pending item to approved or rejected; refused when it was already decided."""
    now = timezone.now()
    moved = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.PENDING).update(
        status=to,
        decided_by=actor if actor is not None and actor.is_authenticated else None,
        decided_at=now,
        reason=reason,
        updated_at=now,
    )
    if not moved:
        current = ReviewItem.objects.select_related("decided_by").get(pk=item.pk)
        by = f" by {current.decided_by}" if current.decided_by else ""
        raise ApplicationError(
            f"{current.asset} was already {current.get_status_display().lower()}{by}; "
            "nothing was changed."
        )
    audit(
        action=f"review_{to}",
        source=source,
        actor=actor,
        asset=item.asset,
        item=item,
        from_status=ReviewItem.Status.PENDING,
        to_status=to,
        reason=reason,
    )
    item.status = to
    asset_to = Asset.Status.APPROVED if to == ReviewItem.Status.APPROVED else Asset.Status.REJECTED
    _asset_move(item.asset, asset_to, [Asset.Status.IN_REVIEW], source, actor, reason)
    if to == ReviewItem.Status.APPROVED:
        enqueue(PUBLISH_TASK, item.pk)
    else:
        brief_set_status(brief=item.brief, to=Brief.Status.REJECTED)


@transaction.atomic
def review_item_approve(
    *,
    item: ReviewItem,
    actor: AbstractBaseUser | None,
    source: str = Source.ADMIN,
    reason: str = "",
) -> ReviewItem:
    """Approve a pending item; publishing follows in a worker. A second decision is refused."""
    _decide(item, to=ReviewItem.Status.APPROVED, actor=actor, source=source, reason=reason)
    return item


@transaction.atomic
def review_item_reject(
    *, item: ReviewItem, actor: AbstractBaseUser | None, reason: str, source: str = Source.ADMIN
) -> ReviewItem:
    if not reason.strip():
        raise ApplicationError(
            "Say why the asset is rejected; the reason is kept in the audit trail."
        )
    _decide(item, to=ReviewItem.Status.REJECTED, actor=actor, source=source, reason=reason.strip())
    return item


def publish_prefix(item: ReviewItem) -> str:
    """Naming convention of published files: brand/campaign/locale/brief."""
    brief = item.brief
    campaign = item.campaign
    ref = brief.external_ref or str(brief.uid)
    safe_ref = "".join(c if c.isalnum() or c in "-_." else "-" for c in ref)[:80]
    return f"{campaign.brand.slug}/{campaign.uid}/{brief.locale}/{safe_ref}"


def review_item_publish(*, item_id: int) -> ReviewItem:
    """Copy an approved item's renditions to the publish storage and mark it published."""
    item = ReviewItem.objects.select_related("asset", "brief", "campaign__brand").get(pk=item_id)
    if item.status == ReviewItem.Status.PUBLISHED:
        return item
    if item.status != ReviewItem.Status.APPROVED:
        raise ApplicationError(f"{item} is {item.status}; only approved items are published.")
    asset = item.asset
    metadata = {
        "brand": item.campaign.brand.slug,
        "campaign": str(item.campaign.uid),
        "brief": item.brief.external_ref or str(item.brief.uid),
        "locale": item.brief.locale,
        "asset": str(asset.uid),
        "recipe-sha256": asset.sha256,
        "digital-source-type": "trainedAlgorithmicMedia",
    }
    asset_publish(asset=asset, prefix=publish_prefix(item), metadata=metadata)
    with transaction.atomic():
        now = timezone.now()
        moved = ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.APPROVED).update(
            status=ReviewItem.Status.PUBLISHED, published_at=now, updated_at=now
        )
        if moved:
            audit(
                action="review_published",
                source=Source.WORKER,
                asset=asset,
                item=item,
                from_status=ReviewItem.Status.APPROVED,
                to_status=ReviewItem.Status.PUBLISHED,
            )
            _asset_move(
                asset, Asset.Status.PUBLISHED, [Asset.Status.APPROVED], Source.WORKER, None, ""
            )
            brief_set_status(brief=item.brief, to=Brief.Status.PUBLISHED)
    item.refresh_from_db()
    return item
