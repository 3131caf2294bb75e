"""Provides scoring, quality gates, review decisions (each one audited) and publishing."""

from dataclasses import asdict, dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.timesince import timesince

from assets.models import Asset, AuditEvent, ReferenceImage
from assets.selectors import file_open_image
from assets.services import (
    asset_publish,
    asset_set_status,
    audit_record,
    reference_image_set_fingerprint,
)
from brandforge.errors import ApplicationError
from brandforge.tasks import enqueue
from campaigns.models import Brief, Campaign
from campaigns.services import brief_set_status
from generation.models import GenerationJob
from generation.services import brief_regenerate
from review.models import QualityGate, ReviewItem, Score
from review.scoring.base import Fingerprint, ScoreContext
from review.scoring.fingerprint import fingerprint
from review.scoring.registry import get_scorer, scorers_for
from review.selectors import claim_alive_since

PUBLISH_TASK = "review.tasks.review_item_publish"
DECIDE_PERMISSION = "review.decide_reviewitem"
PUBLISH_PERMISSION = "review.publish_reviewitem"
Source = AuditEvent.Source
Status = ReviewItem.Status
Action = QualityGate.Action


def gate_for(*, campaign: Campaign) -> QualityGate | None:
    """The campaign's own gate, else the brand's default gate, else none (scorer defaults)."""
    gate = QualityGate.objects.filter(campaign=campaign).first()
    return gate or QualityGate.objects.filter(brand_id=campaign.brand_id, campaign=None).first()


# --- Scoring -------------------------------------------------------------------------------------


def brand_references(*, brand_id: int) -> tuple[Fingerprint, ...]:
    """Fingerprints of the brand's reference images; the first scoring after an upload makes
    (and keeps) the missing ones, so each reference image is read once."""
    found = []
    for reference in ReferenceImage.objects.filter(brand_id=brand_id).only(
        "pk", "image", "fingerprint"
    ):
        if not reference.fingerprint:
            made = fingerprint(file_open_image(reference.image))
            reference_image_set_fingerprint(reference=reference, fingerprint=asdict(made))
        data = reference.fingerprint
        found.append(Fingerprint(phash=data["phash"], histogram=tuple(data["histogram"])))
    return tuple(found)


def campaign_neighbours(*, campaign_id: int, asset: Asset) -> dict[str, str]:
    """Perceptual hashes of the campaign's other live masters (uid → hash), for near-duplicates."""
    rows = (
        Score.objects.filter(
            scorer="duplicate", subject="master", asset__review_item__campaign_id=campaign_id
        )
        .exclude(asset=asset)
        .exclude(asset__review_item__status__in=[Status.REJECTED, Status.REGENERATED])
        .values_list("asset__uid", "details__phash")
    )
    return {str(uid): phash for uid, phash in rows if phash}


def asset_score(
    *, asset: Asset, gate: QualityGate | None, campaign: Campaign | None = None
) -> tuple[list[Score], dict[str, str]]:
    """Run every available scorer on the master and each rendition; stored once per version.

    Returns the scores and the scorers that could not run here, with why.
    """
    thresholds = {
        name: rule["threshold"]
        for name, rule in (gate.rules if gate else {}).items()
        if isinstance(rule, dict) and rule.get("threshold") is not None
    }
    base = ScoreContext(
        thresholds=thresholds,
        palette=tuple(asset.brand.palette),
        references=brand_references(brand_id=asset.brand_id),
        neighbours=campaign_neighbours(campaign_id=campaign.pk, asset=asset) if campaign else {},
        recipe=asset.recipe,
    )
    disabled = {}
    subjects = [("master", file_open_image(asset.file), base, "master")]
    for rendition in asset.renditions.order_by("format_name"):
        ctx = ScoreContext(
            target_width=rendition.width, target_height=rendition.height, thresholds=thresholds
        )
        subjects.append((rendition.format_name, file_open_image(rendition.file), ctx, "rendition"))
    scores = []
    for subject, image, ctx, kind in subjects:
        for scorer in scorers_for(kind):
            if why := scorer.unavailable():
                disabled[scorer.name] = why
                continue
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
    return scores, disabled


@dataclass
class GateOutcome:
    """What the gate made of an asset's scores: reject, flag, fast_track or pass."""

    decision: str
    failed: dict[str, str] = field(default_factory=dict)  # "scorer@subject" → action
    fast_track: dict[str, bool] = field(default_factory=dict)  # scorer → cleared its bar

    def failing(self, action: str) -> list[str]:
        return [name for name, act in self.failed.items() if act == action]


def gate_evaluate(*, gate: QualityGate | None, scores: list[Score]) -> GateOutcome:
    """Apply the gate's rules to the scores (without a gate, every failure flags)."""
    failed = {}
    for score in scores:
        if score.passed:
            continue
        if gate is None:
            action = Action.FLAG
        else:
            rule = gate.rules.get(score.scorer)
            if not isinstance(rule, dict):
                continue  # not a rule of this gate: the score is kept, the gate ignores it
            action = rule.get("action", Action.FLAG)
        failed[f"{score.scorer}@{score.subject}"] = action
    outcome = GateOutcome(decision="pass", failed=failed)
    if outcome.failing(Action.REJECT):
        outcome.decision = "reject"
    elif outcome.failing(Action.FLAG):
        outcome.decision = "flag"
    elif gate is not None and gate.fast_track:
        for name, bar in gate.fast_track.items():
            scorer = get_scorer(name)
            mine = [s for s in scores if s.scorer == name]
            outcome.fast_track[name] = bool(mine) and all(scorer.passes(s.value, bar) for s in mine)
        if all(outcome.fast_track.values()):
            outcome.decision = "fast_track"
    return outcome


def job_review_prepare(*, job_id: int) -> ReviewItem | None:
    """Score a finished job's asset, apply the gate and put it in the review queue (once).

    A failed reject rule regenerates the brief with a new seed while the gate has attempts
    left, else rejects; a failed flag rule flags the item for the reviewer; when the gate has a
    fast track and every score clears its bar, the item is approved by the gate itself.
    """
    job = GenerationJob.objects.select_related("campaign__brand", "brief", "output__brand").get(
        pk=job_id
    )
    asset = job.output
    if asset is None or job.status != GenerationJob.Status.SUCCEEDED:
        return None
    existing = ReviewItem.objects.filter(asset=asset).first()
    if existing is not None:
        return existing
    gate = gate_for(campaign=job.campaign)
    scores, disabled = asset_score(asset=asset, gate=gate, campaign=job.campaign)
    outcome = gate_evaluate(gate=gate, scores=scores)
    regenerated = sum(1 for a in asset.recipe.get("attempts", []) if a.get("by") == "gate")
    allowed = gate.regenerate_attempts if gate else 0
    summary = {
        "gate": gate.name if gate else None,
        "decision": outcome.decision,
        "failed": outcome.failed,
        "fast_track": outcome.fast_track,
        "disabled": disabled,
        "checked": len(scores),
        "attempt": regenerated + 1,
        "attempts_allowed": allowed + 1,
    }
    try:
        with transaction.atomic():
            item = ReviewItem.objects.create(
                asset=asset,
                campaign=job.campaign,
                brief=job.brief,
                flagged=outcome.decision in ("reject", "flag"),
                gate_summary=summary,
            )
            audit_record(
                action="review_item_created",
                source=Source.WORKER,
                asset=asset,
                review_item_id=item.pk,
                to_status=Status.PENDING,
                reason=_gate_sentence(gate, outcome),
                data=summary,
            )
            asset_set_status(
                asset=asset, to=Asset.Status.IN_REVIEW, from_status=Asset.Status.RENDERED
            )
            brief_set_status(
                brief=job.brief, to=Brief.Status.IN_REVIEW, allowed_from=[Brief.Status.GENERATING]
            )
            _gate_act(item, gate, outcome, regenerated, allowed)
    except IntegrityError:
        # A second delivery of this task created the item first.
        return ReviewItem.objects.get(asset=asset)
    return item


def _gate_sentence(gate: QualityGate | None, outcome: GateOutcome) -> str:
    """The gate's decision in words, for the audit trail."""
    name = f"Quality gate {gate.name}" if gate else "Scorer defaults (no gate)"
    failed = ", ".join(f"{check} ({action})" for check, action in outcome.failed.items())
    return f"{name}: {outcome.decision}" + (f"; failed {failed}." if failed else ".")


def _gate_act(item, gate, outcome: GateOutcome, regenerated: int, allowed: int) -> None:
    if outcome.decision == "reject":
        failed = ", ".join(outcome.failing(Action.REJECT))
        if regenerated < allowed:
            reason = (
                f"Quality gate {gate.name}: {failed} failed; regenerating with a new seed "
                f"(attempt {regenerated + 2} of {allowed + 1})."
            )
            _decide(item, to=Status.REGENERATED, actor=None, source=Source.WORKER, reason=reason)
            brief_regenerate(brief=item.brief, previous=item.asset, reason=reason, by="gate")
            return
        tries = f" on each of {allowed + 1} attempts" if allowed else ""
        reason = f"Quality gate {gate.name}: {failed} failed{tries}."
        _decide(item, to=Status.REJECTED, actor=None, source=Source.WORKER, reason=reason)
    elif outcome.decision == "fast_track":
        bars = ", ".join(gate.fast_track)
        reason = f"Fast track of quality gate {gate.name}: {bars} cleared their bars."
        _decide(item, to=Status.APPROVED, actor=None, source=Source.WORKER, reason=reason)


# --- Claims and decisions ------------------------------------------------------------------------


def _human(actor) -> bool:
    return actor is not None and actor.is_authenticated


def _free_for(actor) -> Q:
    """Items this actor may act on: unclaimed, claimed by them, or with a lapsed claim."""
    return Q(claimed_by=None) | Q(claimed_by=actor) | Q(claimed_at__lt=claim_alive_since())


def _require(actor, permission: str) -> None:
    if _human(actor) and not actor.has_perm(permission):
        raise PermissionDenied(f"{actor} may not do this (needs the {permission} permission).")


def _refusal(item: ReviewItem) -> ApplicationError:
    """Why a decision on `item` did not happen, for the person who tried."""
    current = ReviewItem.objects.select_related("asset__brand", "decided_by", "claimed_by").get(
        pk=item.pk
    )
    if current.status != Status.PENDING:
        by = f" by {current.decided_by}" if current.decided_by else " by the quality gate"
        return ApplicationError(
            f"{current.asset} was already {current.get_status_display().lower()}{by}; "
            "nothing was changed."
        )
    ago = timesince(current.claimed_at) if current.claimed_at else "a moment"
    return ApplicationError(
        f"{current.claimed_by} is reviewing {current.asset} (claimed {ago} ago); "
        "nothing was changed."
    )


def review_item_claim(*, item: ReviewItem, actor) -> ReviewItem:
    """Hold a pending item for `actor`, so other editors leave it; refused while another
    editor's claim is alive. Claiming again renews the claim."""
    _require(actor, DECIDE_PERMISSION)
    now = timezone.now()
    moved = (
        ReviewItem.objects.filter(pk=item.pk, status=Status.PENDING)
        .filter(_free_for(actor))
        .update(claimed_by=actor, claimed_at=now, updated_at=now)
    )
    if not moved:
        raise _refusal(item)
    item.claimed_by, item.claimed_at = actor, now
    return item


def review_item_release(*, item: ReviewItem, actor) -> None:
    """Give up `actor`'s claim on an item (leaving the page, moving on without deciding)."""
    ReviewItem.objects.filter(pk=item.pk, claimed_by=actor).update(
        claimed_by=None, claimed_at=None, updated_at=timezone.now()
    )


def _decide(item: ReviewItem, *, to: str, actor, source: str, reason: str, data=None) -> None:
    """Move a pending item to `to`, with the asset and brief following; exactly one caller
    wins (a conditional update), the others are refused with who decided first."""
    now = timezone.now()
    human = _human(actor)
    rows = ReviewItem.objects.filter(pk=item.pk, status=Status.PENDING)
    if human:
        rows = rows.filter(_free_for(actor))
    moved = rows.update(
        status=to,
        decided_by=actor if human else None,
        decided_at=now,
        reason=reason,
        claimed_by=None,
        claimed_at=None,
        updated_at=now,
    )
    if not moved:
        raise _refusal(item)
    audit_record(
        action=f"review_{to}",
        source=source,
        actor=actor,
        asset=item.asset,
        review_item_id=item.pk,
        from_status=Status.PENDING,
        to_status=to,
        reason=reason,
        data=data,
    )
    item.status = to
    asset_to = Asset.Status.APPROVED if to == Status.APPROVED else Asset.Status.REJECTED
    asset_set_status(
        asset=item.asset,
        to=asset_to,
        from_status=Asset.Status.IN_REVIEW,
        source=source,
        actor=actor,
        reason=reason,
    )
    if to == Status.APPROVED:
        enqueue(PUBLISH_TASK, item.pk)
    elif to == Status.REJECTED:
        brief_set_status(brief=item.brief, to=Brief.Status.REJECTED)


@transaction.atomic
def review_item_approve(
    *, item: ReviewItem, actor, source: str = Source.ADMIN, reason: str = ""
) -> ReviewItem:
    """Approve a pending item; publishing follows in a worker. A second decision is refused."""
    _require(actor, DECIDE_PERMISSION)
    _decide(item, to=Status.APPROVED, actor=actor, source=source, reason=reason.strip())
    return item


@transaction.atomic
def review_item_reject(
    *, item: ReviewItem, actor, reason: str, source: str = Source.ADMIN
) -> ReviewItem:
    _require(actor, DECIDE_PERMISSION)
    if not reason.strip():
        raise ApplicationError(
            "Say why the asset is rejected; the reason is kept in the audit trail."
        )
    _decide(item, to=Status.REJECTED, actor=actor, source=source, reason=reason.strip())
    return item


@transaction.atomic
def review_item_regenerate(
    *, item: ReviewItem, actor, reason: str = "", prompt: str = "", source: str = Source.ADMIN
) -> GenerationJob:
    """Drop a pending item for a new attempt at its brief: a new seed, and the editor's prompt
    when one is given. Returns the new job; its asset comes back to the queue."""
    _require(actor, DECIDE_PERMISSION)
    prompt = prompt.strip()
    reason = reason.strip() or ("Prompt edited; regenerating." if prompt else "New seed asked for.")
    data = {"prompt": prompt} if prompt else None
    _decide(item, to=Status.REGENERATED, actor=actor, source=source, reason=reason, data=data)
    return brief_regenerate(
        brief=item.brief, previous=item.asset, reason=reason, by="editor", prompt=prompt
    )


DECISIONS = {
    "approve": lambda item, actor, reason, prompt: review_item_approve(
        item=item, actor=actor, reason=reason
    ),
    "reject": lambda item, actor, reason, prompt: review_item_reject(
        item=item, actor=actor, reason=reason
    ),
    "regenerate": lambda item, actor, reason, prompt: review_item_regenerate(
        item=item, actor=actor, reason=reason, prompt=prompt
    ),
}


@dataclass(frozen=True)
class BulkResult:
    item_id: int
    ok: bool
    message: str


def review_items_decide(
    *, item_ids: list[int], action: str, actor, reason: str = "", prompt: str = ""
) -> list[BulkResult]:
    """Decide several items one by one; each stands alone, so one refusal (decided already,
    claimed by another editor) leaves the others done. Reports per item."""
    decide = DECISIONS.get(action)
    if decide is None:
        raise ApplicationError(f"Unknown decision {action!r}; use one of {', '.join(DECISIONS)}.")
    _require(actor, DECIDE_PERMISSION)
    if action == "reject" and not reason.strip():
        raise ApplicationError(
            "Say why the assets are rejected; the reason is kept in the audit trail."
        )
    items = ReviewItem.objects.select_related("asset__brand", "brief").in_bulk(item_ids)
    results = []
    for item_id in item_ids:
        item = items.get(item_id)
        if item is None:
            results.append(BulkResult(item_id, False, f"Review item {item_id} does not exist."))
            continue
        try:
            decide(item, actor, reason, prompt)
        except ApplicationError as exc:
            results.append(BulkResult(item_id, False, " ".join(exc.messages)))
        else:
            results.append(BulkResult(item_id, True, f"{item.asset}: {item.get_status_display()}."))
    return results


# --- Publishing ----------------------------------------------------------------------------------


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
    if item.status == Status.PUBLISHED:
        return item
    if item.status != Status.APPROVED:
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
        moved = ReviewItem.objects.filter(pk=item.pk, status=Status.APPROVED).update(
            status=Status.PUBLISHED, published_at=now, updated_at=now
        )
        if moved:
            audit_record(
                action="review_published",
                source=Source.WORKER,
                asset=asset,
                review_item_id=item.pk,
                from_status=Status.APPROVED,
                to_status=Status.PUBLISHED,
            )
            asset_set_status(
                asset=asset, to=Asset.Status.PUBLISHED, from_status=Asset.Status.APPROVED
            )
            brief_set_status(brief=item.brief, to=Brief.Status.PUBLISHED)
    item.refresh_from_db()
    return item


def review_item_publish_again(*, item: ReviewItem, actor) -> bool:
    """Queue publishing of an approved item once more (its first publish failed or was lost)."""
    _require(actor, PUBLISH_PERMISSION)
    if item.status != Status.APPROVED:
        return False
    with transaction.atomic():
        enqueue(PUBLISH_TASK, item.pk)
    return True
