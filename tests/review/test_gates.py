"""Tests quality gates: rules and their actions, auto-regeneration, fast track, validation."""

import pytest
from django.core.exceptions import ValidationError

from assets.models import Asset, AuditEvent
from campaigns.models import Brief
from campaigns.services import campaign_launch
from generation.models import GenerationJob
from review.models import QualityGate, ReviewItem
from review.scoring import registry
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from tests.factories import BrandFactory, campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)

IMPOSSIBLE = {"threshold": 1e12}  # no image is this sharp


class FirstTakeFails(Scorer):
    """Fails the first take of a brief only: the regeneration passes."""

    name = "first_take"
    label = "First take"
    version = 1
    subject = "master"

    def score(self, image, ctx: ScoreContext) -> ScoreResult:
        variant = ctx.recipe.get("variant", 0)
        return ScoreResult(value=float(variant), passed=variant > 0, details={})


@pytest.fixture
def first_take(monkeypatch):
    monkeypatch.setitem(registry._SCORERS, "first_take", FirstTakeFails)


def gate(brand, **fields):
    return QualityGate.objects.create(brand=brand, name=f"{brand.slug} gate", **fields)


def test_a_failed_reject_rule_regenerates_with_new_seeds_then_rejects(in_review, queue):
    brand = BrandFactory(with_logo=True)
    gate(brand, rules={"sharpness": {**IMPOSSIBLE, "action": "reject"}}, regenerate_attempts=2)
    campaign = in_review(1, brand=brand)

    jobs = list(GenerationJob.objects.filter(campaign=campaign).order_by("variant"))
    assert [job.variant for job in jobs] == [0, 1, 2]
    assert len({job.seed for job in jobs}) == 3
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    assert [i.status for i in items] == ["regenerated", "regenerated", "rejected"]
    assert "attempt 2 of 3" in items[0].reason and "attempt 3 of 3" in items[1].reason
    assert "on each of 3 attempts" in items[2].reason
    assert [i.gate_summary["attempt"] for i in items] == [1, 2, 3]

    last = items[2].asset.recipe["attempts"]
    assert [a["seed"] for a in last] == [jobs[0].seed, jobs[1].seed]
    assert {a["by"] for a in last} == {"gate"}
    assert [a["asset"] for a in last] == [str(items[0].asset.uid), str(items[1].asset.uid)]
    assert Brief.objects.get(campaign=campaign).status == Brief.Status.REJECTED
    assert set(Asset.objects.filter(review_item__in=items).values_list("status", flat=True)) == {
        "rejected"
    }
    # Each gate decision is one event, made by the worker.
    decided = AuditEvent.objects.filter(action__in=["review_regenerated", "review_rejected"])
    assert decided.count() == 3 and set(decided.values_list("source", flat=True)) == {"worker"}


def test_regeneration_stops_at_the_first_attempt_that_passes(first_take, in_review):
    brand = BrandFactory(with_logo=True)
    gate(brand, rules={"first_take": {"action": "reject"}}, regenerate_attempts=3)
    campaign = in_review(1, brand=brand)
    items = list(ReviewItem.objects.filter(campaign=campaign).order_by("pk"))
    assert [i.status for i in items] == ["regenerated", "pending"]
    assert items[1].gate_summary["attempt"] == 2 and not items[1].flagged
    assert len(items[1].asset.recipe["attempts"]) == 1


def test_flag_flags_and_pass_only_records(in_review):
    brand = BrandFactory(with_logo=True)
    gate(brand, rules={"sharpness": {**IMPOSSIBLE, "action": "flag"}})
    flagged = ReviewItem.objects.get(campaign=in_review(1, brand=brand))
    assert flagged.status == "pending" and flagged.flagged
    assert flagged.gate_summary["failed"] == {"sharpness@master": "flag"}

    other = BrandFactory(with_logo=True)
    gate(other, rules={"sharpness": {**IMPOSSIBLE, "action": "pass"}})
    recorded = ReviewItem.objects.get(campaign=in_review(1, brand=other))
    assert recorded.status == "pending" and not recorded.flagged
    assert recorded.gate_summary["failed"] == {"sharpness@master": "pass"}


def test_fast_track_approves_and_publishes_without_a_reviewer(in_review, queue):
    brand = BrandFactory(with_logo=True)
    gate(brand, rules={"resolution": {"action": "reject"}}, fast_track={"resolution": 1.0})
    campaign = in_review(2, brand=brand)
    queue.run()
    items = ReviewItem.objects.filter(campaign=campaign)
    assert set(items.values_list("status", flat=True)) == {"published"}
    approval = AuditEvent.objects.filter(action="review_approved").first()
    assert approval.source == "worker" and approval.actor is None
    assert "Fast track" in approval.reason


def test_fast_track_needs_every_bar_cleared(in_review):
    brand = BrandFactory(with_logo=True)
    gate(brand, fast_track={"resolution": 1.0, "sharpness": 1e12})
    item = ReviewItem.objects.get(campaign=in_review(1, brand=brand))
    assert item.status == "pending"
    assert item.gate_summary["fast_track"] == {"resolution": True, "sharpness": False}


def test_a_campaign_gate_overrides_the_brand_gate(queue):
    brand = BrandFactory(with_logo=True)
    gate(brand, rules={"sharpness": {**IMPOSSIBLE, "action": "reject"}})
    strict = campaign_with_briefs(brand=brand, count=1)
    lenient = campaign_with_briefs(brand=brand, count=1)
    QualityGate.objects.create(brand=brand, campaign=lenient, name="lenient", rules={})
    campaign_launch(campaign=strict)
    campaign_launch(campaign=lenient)
    queue.run()
    assert ReviewItem.objects.get(campaign=strict).status == "rejected"
    item = ReviewItem.objects.get(campaign=lenient)
    assert item.status == "pending" and item.gate_summary["gate"] == "lenient"


def test_gate_validation_names_the_problem(settings):
    brand = BrandFactory()
    settings.BRANDFORGE_AESTHETIC_MODEL = ""
    bad = QualityGate(
        brand=brand,
        name="bad",
        rules={
            "sharpnes": {"action": "reject"},
            "exposure": {"threshold": "high"},
            "palette": {"action": "delete"},
            "aesthetic": {"action": "flag"},
        },
        fast_track={"sharpness": "very"},
    )
    with pytest.raises(ValidationError) as caught:
        bad.full_clean()
    errors = caught.value.message_dict
    text = " ".join(errors["rules"])
    assert "Unknown scorer 'sharpnes'" in text
    assert "exposure: the threshold must be a number" in text
    assert "palette: the action must be one of reject, flag, pass" in text
    assert "aesthetic: No aesthetic model configured" in text
    assert errors["fast_track"] == ["sharpness: the bar must be a number."]
    good = QualityGate(
        brand=brand,
        name="good",
        rules={"sharpness": {"threshold": 80, "action": "reject"}, "palette": {"action": "flag"}},
        regenerate_attempts=2,
        fast_track={"sharpness": 400},
    )
    good.full_clean()


def test_the_gate_decision_is_on_the_asset_audit_trail(in_review, admin_client):
    brand = BrandFactory(with_logo=True)
    gate(brand, rules={"sharpness": {**IMPOSSIBLE, "action": "flag"}})
    item = ReviewItem.objects.get(campaign=in_review(1, brand=brand))
    created = AuditEvent.objects.get(review_item_id=item.pk, action="review_item_created")
    assert created.reason == (
        f"Quality gate {brand.slug} gate: flag; failed sharpness@master (flag)."
    )
    page = admin_client.get(f"/admin/assets/asset/{item.asset_id}/change/").content.decode()
    assert "failed sharpness@master (flag)" in page


def test_the_reconciler_hands_only_the_latest_attempt_to_review(member, in_review, queue, settings):
    from django_q.signing import SignedPackage

    from generation.services import jobs_reconcile
    from review.services import review_item_regenerate

    in_review(1)
    item = ReviewItem.objects.select_related("asset", "brief").get()
    first_job = GenerationJob.objects.get(brief=item.brief, variant=0)
    review_item_regenerate(item=item, actor=member("Creative editor", "erin"))
    queue.purge()
    # The brief is generating again and its first job succeeded long ago: only the new job
    # may be handed on, and it has not finished.
    settings.BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS = 0
    jobs_reconcile()
    queued = []
    while queue.broker.queue_size():
        for ack_id, payload in queue.broker.dequeue() or []:
            task = SignedPackage.loads(payload)
            queued.append((task["func"], tuple(task["args"])))
            queue.broker.acknowledge(ack_id)
    assert ("review.tasks.job_review_prepare", (first_job.pk,)) not in queued
    new_job = GenerationJob.objects.get(brief=item.brief, variant=1)
    assert ("generation.tasks.job_run", (new_job.pk,)) in queued
