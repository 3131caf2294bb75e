"""Provides reused reads of the review queue and the audit trail."""

from django.db.models import QuerySet

from review.models import AuditEvent, ReviewItem


def review_queue(*, campaign_id: int | None = None) -> QuerySet[ReviewItem]:
    qs = ReviewItem.objects.filter(status=ReviewItem.Status.PENDING).select_related(
        "asset", "brief", "campaign__brand"
    )
    return qs.filter(campaign_id=campaign_id) if campaign_id else qs


def audit_trail(*, asset_id: int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(asset_id=asset_id).select_related("actor").order_by("id")
