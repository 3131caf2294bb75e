"""Tests the admin as the main UI: pages render with data, actions call audited services."""

import pytest
from django.contrib import admin
from django.urls import reverse

from assets.models import AuditEvent
from campaigns.models import Campaign
from campaigns.services import campaign_launch
from review.models import ReviewItem
from tests.factories import campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reviewed_campaign(queue):
    campaign = campaign_with_briefs(count=2)
    campaign_launch(campaign=campaign)
    queue.run()
    return campaign


def test_every_admin_page_renders_with_data(admin_client, reviewed_campaign):
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        response = admin_client.get(url)
        assert response.status_code == 200, url
        obj = model.objects.first()
        if obj is not None and model_admin.has_view_permission(response.wsgi_request, obj):
            detail = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client.get(detail).status_code == 200, detail


def test_review_list_shows_small_thumbnails_and_campaign_list_shows_progress(
    admin_client, reviewed_campaign
):
    page = admin_client.get(reverse("admin:review_reviewitem_changelist")).content.decode()
    item = ReviewItem.objects.first()
    # Compare object names: presigned S3 URLs differ on every call (signature, timestamp).
    assert item.asset.thumbnail.name in page
    assert item.asset.file.name not in page  # never the full-size master in a list
    campaigns = admin_client.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "0/2" in campaigns and "0 of 2 briefs done" in campaigns


def test_approve_and_reject_actions_are_audited_and_a_second_decision_is_refused(
    admin_client, admin_user, reviewed_campaign, queue
):
    first, second = ReviewItem.objects.order_by("pk")
    url = reverse("admin:review_reviewitem_changelist")

    admin_client.post(url, {"action": "approve", "_selected_action": [first.pk], "reason": ""})
    response = admin_client.post(
        url,
        {"action": "reject", "_selected_action": [second.pk], "reason": "Logo too small"},
        follow=True,
    )
    assert "Rejected 1 item(s)." in response.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (ReviewItem.Status.APPROVED, ReviewItem.Status.REJECTED)
    assert first.decided_by == admin_user
    assert (
        AuditEvent.objects.get(review_item_id=second.pk, action="review_rejected").reason
        == "Logo too small"
    )

    again = admin_client.post(
        url, {"action": "approve", "_selected_action": [second.pk], "reason": ""}, follow=True
    )
    assert "was already rejected by admin; nothing was changed." in again.content.decode()
    second.refresh_from_db()
    assert second.status == ReviewItem.Status.REJECTED
    assert (
        AuditEvent.objects.filter(review_item_id=second.pk, action__startswith="review_")
        .exclude(action="review_item_created")
        .count()
        == 1
    )

    queue.run()
    first.refresh_from_db()
    assert first.status == ReviewItem.Status.PUBLISHED
    reviewed_campaign.refresh_from_db()
    assert reviewed_campaign.status == Campaign.Status.COMPLETED


def test_reject_without_a_reason_is_refused(admin_client, reviewed_campaign):
    item = ReviewItem.objects.first()
    response = admin_client.post(
        reverse("admin:review_reviewitem_changelist"),
        {"action": "reject", "_selected_action": [item.pk], "reason": "  "},
        follow=True,
    )
    assert "Type a reason" in response.content.decode()
    item.refresh_from_db()
    assert item.status == ReviewItem.Status.PENDING


def test_launch_action_reports_a_campaign_without_formats(admin_client):
    campaign = campaign_with_briefs(count=1, formats=[])
    response = admin_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "launch", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "has no channel format" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
