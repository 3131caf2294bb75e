"""Tests the creative editor's review page: cards, filters, claims, decisions, roles, queries."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from assets.models import AuditEvent
from campaigns.models import Brief
from generation.models import GenerationJob
from review.models import ReviewItem

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = "admin:review_reviewitem_queue"
DECIDE = "admin:review_reviewitem_decide"


def claim_url(item):
    return reverse("admin:review_reviewitem_claim", args=[item.pk])


def test_cards_show_master_renditions_scores_prompt_seed_and_lineage(member, client_for, in_review):
    campaign = in_review(2)
    editor = client_for(member("Creative editor", "erin"))
    page = editor.get(reverse(QUEUE)).content.decode()
    # Compare object names: presigned S3 URLs differ on every call (signature, timestamp).
    sources = " ".join(re.findall(r'src="([^"]+)"', page))
    for item in ReviewItem.objects.filter(campaign=campaign).select_related("asset"):
        asset = item.asset
        assert f'id="item-{item.pk}"' in page
        assert asset.thumbnail.name in page
        for rendition in asset.renditions.all():
            # Cards load the small thumbnails; the full file is only linked.
            assert rendition.thumbnail.name in sources
            assert rendition.file.name not in sources
        assert asset.recipe["prompt"] in page
        assert f"seed {asset.recipe['seed']}" in page
        assert "master → watermark" in page
    assert "Sharpness" in page and "Brand palette" in page
    assert "2 waiting" in page
    # Scorers that cannot run here say so once, above the grid.
    assert page.count("No aesthetic model configured") == 1


def test_filters_narrow_the_grid(member, client_for, in_review):
    first = in_review(2)
    second = in_review(1)
    editor = client_for(member("Creative editor", "erin"))
    page = editor.get(reverse(QUEUE), {"campaign": second.pk}).content.decode()
    assert "1 waiting" in page
    assert all(f'id="item-{i.pk}"' not in page for i in first.review_items.all())
    by_locale = editor.get(reverse(QUEUE), {"locale": "de-DE"}).content.decode()
    german = ReviewItem.objects.filter(brief__locale="de-DE")
    assert f"{german.count()} waiting" in by_locale
    failing = editor.get(reverse(QUEUE), {"score": "fails:resolution"}).content.decode()
    assert "0 waiting" in failing  # every rendition is at its format's size


def test_only_creative_editors_open_the_queue_and_decide(member, client_for, in_review):
    in_review(1)
    item = ReviewItem.objects.get()
    marketing = client_for(member("Marketing", "mia"))
    assert marketing.get(reverse(QUEUE)).status_code == 403
    response = marketing.post(reverse(DECIDE), {"action": "approve", "items": [item.pk]})
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING
    assert not AuditEvent.objects.filter(action="review_approved").exists()


def test_decisions_need_post_and_a_csrf_token(member, client_for, in_review):
    in_review(1)
    item = ReviewItem.objects.get()
    editor = member("Creative editor", "erin")
    strict = client_for(editor, enforce_csrf_checks=True)
    assert strict.get(reverse(DECIDE), {"action": "approve", "items": item.pk}).status_code == 405
    assert strict.post(reverse(DECIDE), {"action": "approve", "items": item.pk}).status_code == 403
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


def test_a_claimed_item_is_refused_to_another_editor_until_the_claim_lapses(
    member, client_for, in_review, settings
):
    in_review(1)
    item = ReviewItem.objects.get()
    erin, omar = member("Creative editor", "erin"), member("Creative editor", "omar")
    assert client_for(erin).post(claim_url(item)).json()["ok"]

    other = client_for(omar)
    claim = other.post(claim_url(item))
    assert claim.status_code == 409 and "erin is reviewing" in claim.json()["message"]
    page = other.get(reverse(QUEUE)).content.decode()
    assert "Claimed by erin" in page
    refused = other.post(reverse(DECIDE), {"action": "approve", "items": item.pk}).json()
    assert not refused["ok"] and "erin is reviewing" in refused["results"][0]["message"]

    ReviewItem.objects.filter(pk=item.pk).update(
        claimed_at=item.created_at - timedelta(seconds=settings.BRANDFORGE_REVIEW_CLAIM_SECONDS)
    )
    assert other.post(reverse(DECIDE), {"action": "approve", "items": item.pk}).json()["ok"]
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.APPROVED and item.decided_by == omar
    assert item.claimed_by is None


def test_bulk_decisions_report_per_item_and_a_second_decision_is_refused(
    member, client_for, in_review, queue
):
    in_review(3)
    first, second, third = ReviewItem.objects.order_by("pk")
    editor = client_for(member("Creative editor", "erin"))
    editor.post(reverse(DECIDE), {"action": "reject", "items": first.pk, "reason": "Off-brand"})

    response = editor.post(
        reverse(DECIDE), {"action": "approve", "items": [first.pk, second.pk, third.pk]}
    ).json()
    outcome = {row["id"]: row for row in response["results"]}
    assert not outcome[first.pk]["ok"]
    assert "already rejected by erin" in outcome[first.pk]["message"]
    assert outcome[second.pk]["ok"] and outcome[third.pk]["ok"]
    assert AuditEvent.objects.filter(action="review_approved").count() == 2
    assert AuditEvent.objects.filter(review_item_id=first.pk, action="review_rejected").count() == 1

    refused = editor.post(reverse(DECIDE), {"action": "reject", "items": first.pk}).json()
    assert "needs a reason" in refused["message"] or "Say why" in refused["message"]
    queue.run()
    statuses = set(ReviewItem.objects.exclude(pk=first.pk).values_list("status", flat=True))
    assert statuses == {ReviewItem.Status.PUBLISHED}


def test_edit_prompt_and_regenerate_makes_the_next_variant_with_the_chain_of_attempts(
    member, client_for, in_review, queue
):
    in_review(1)
    item = ReviewItem.objects.select_related("asset", "brief").get()
    old_seed = item.asset.recipe["seed"]
    editor = client_for(member("Creative editor", "erin"))
    response = editor.post(
        reverse(DECIDE),
        {"action": "regenerate", "items": item.pk, "prompt": "A teal mug on slate, top view"},
    ).json()
    assert response["ok"], response
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.REGENERATED
    assert Brief.objects.get(pk=item.brief_id).status == Brief.Status.GENERATING
    job = GenerationJob.objects.get(brief=item.brief, variant=1)
    assert job.prompt_override == "A teal mug on slate, top view"

    queue.run()
    new = ReviewItem.objects.select_related("asset").get(status=ReviewItem.Status.PENDING)
    recipe = new.asset.recipe
    assert recipe["prompt"] == "A teal mug on slate, top view" and recipe["prompt_edited"]
    assert recipe["seed"] != old_seed
    assert recipe["attempts"] == [
        {
            "asset": str(item.asset.uid),
            "variant": 0,
            "seed": old_seed,
            "prompt": item.asset.recipe["prompt"],
            "by": "editor",
            "reason": "Prompt edited; regenerating.",
        }
    ]
    actions = list(
        AuditEvent.objects.filter(review_item_id=item.pk).order_by("id").values_list("action")
    )
    assert actions == [("review_item_created",), ("review_regenerated",)]


def page_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(QUEUE), {"per_page": 200})
    assert response.status_code == 200
    return len(captured), response.content.decode().count('class="bf-card')


def test_the_page_costs_the_same_number_of_queries_for_2_or_8_items(member, client_for, in_review):
    editor = client_for(member("Creative editor", "erin"))
    in_review(2)
    few, cards = page_queries(editor)
    assert cards == 2
    in_review(6)
    many, cards = page_queries(editor)
    assert cards == 8
    assert many == few


def test_a_bulk_decision_is_capped_and_names_what_is_wrong(member, client_for):
    editor = client_for(member("Creative editor", "erin"))
    too_many = editor.post(reverse(DECIDE), {"action": "approve", "items": list(range(1, 502))})
    assert too_many.status_code == 400
    assert too_many.json()["message"] == "501 items chosen; decide at most 500 at once."
    unknown = editor.post(reverse(DECIDE), {"action": "publish", "items": [1]})
    assert unknown.status_code == 400 and "approve, reject, regenerate" in unknown.json()["message"]
    missing = editor.post(reverse(DECIDE), {"action": "approve", "items": [987654]}).json()
    assert missing["results"] == [
        {"id": 987654, "ok": False, "message": "Review item 987654 does not exist."}
    ]
