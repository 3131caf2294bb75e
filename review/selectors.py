"""Provides reused reads of the review queue and the audit trail."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from assets.models import AuditEvent, Brand, ReferenceImage, Rendition
from campaigns.models import Brief, Campaign
from review.models import ReviewItem, Score

Status = ReviewItem.Status


@dataclass(frozen=True)
class QueueFilters:
    """What the editor narrowed the queue to; empty values mean everything."""

    brand: int | None = None
    campaign: int | None = None
    locale: str = ""
    score: str = ""  # "flagged", "clean" or "fails:<scorer>"


def review_queue_page(*, filters: QueueFilters) -> QuerySet[ReviewItem]:
    """The pending items for the review page (with `review_card_rows`, a fixed number of
    queries whatever the page size), flagged ones first, then oldest first."""
    qs = ReviewItem.objects.filter(status=Status.PENDING)
    if filters.brand:
        qs = qs.filter(campaign__brand_id=filters.brand)
    if filters.campaign:
        qs = qs.filter(campaign_id=filters.campaign)
    if filters.locale:
        qs = qs.filter(brief__locale=filters.locale)
    if filters.score == "flagged":
        qs = qs.filter(flagged=True)
    elif filters.score == "clean":
        qs = qs.filter(flagged=False)
    elif filters.score.startswith("fails:"):
        failing = Score.objects.filter(
            asset=OuterRef("asset"), scorer=filters.score.removeprefix("fails:"), passed=False
        )
        qs = qs.filter(Exists(failing))
    return qs.select_related("asset__brand", "brief", "campaign__brand", "claimed_by").order_by(
        "-flagged", "created_at", "pk"
    )


@dataclass(frozen=True)
class CardRows:
    """The scores and renditions of a page of assets, read as plain tuples in two queries."""

    scores: dict[int, list[tuple]]  # asset id → (subject, scorer, value, passed)
    renditions: dict[int, list[tuple]]  # asset id → (format, width, height, file, thumbnail)


def review_card_rows(*, asset_ids: list[int]) -> CardRows:
    # Tuples, not model instances: a page of 200 cards has ~3,000 score rows, and building
    # objects (and decoding each row's JSON details) was most of the page's time.
    scores: dict[int, list[tuple]] = {pk: [] for pk in asset_ids}
    for asset_id, *row in (
        Score.objects.filter(asset_id__in=asset_ids)
        .order_by("subject", "scorer")
        .values_list("asset_id", "subject", "scorer", "value", "passed")
    ):
        scores[asset_id].append(tuple(row))
    renditions: dict[int, list[tuple]] = {pk: [] for pk in asset_ids}
    for asset_id, *row in (
        Rendition.objects.filter(asset_id__in=asset_ids)
        .order_by("format_name")
        .values_list("asset_id", "format_name", "width", "height", "file", "thumbnail")
    ):
        renditions[asset_id].append(tuple(row))
    return CardRows(scores=scores, renditions=renditions)


def brand_reference_images(*, brand_ids: set[int]) -> dict[int, list[ReferenceImage]]:
    """The reference images of several brands in one query, by brand id."""
    found: dict[int, list[ReferenceImage]] = {brand_id: [] for brand_id in brand_ids}
    for reference in ReferenceImage.objects.filter(brand_id__in=brand_ids).order_by("pk"):
        found[reference.brand_id].append(reference)
    return found


def queue_filter_choices() -> dict:
    """Brands, campaigns and locales that have items waiting (three small queries)."""
    pending = ReviewItem.objects.filter(status=Status.PENDING)
    return {
        "brands": Brand.objects.filter(Exists(pending.filter(campaign__brand=OuterRef("pk")))).only(
            "pk", "name"
        ),
        "campaigns": Campaign.objects.filter(Exists(pending.filter(campaign=OuterRef("pk"))))
        .select_related("brand")
        .only("pk", "name", "brand__name"),
        "locales": Brief.objects.filter(Exists(pending.filter(brief=OuterRef("pk"))))
        .order_by("locale")
        .values_list("locale", flat=True)
        .distinct(),
    }


def claim_alive_since():
    """Claims made after this moment still hold."""
    return timezone.now() - timedelta(seconds=settings.BRANDFORGE_REVIEW_CLAIM_SECONDS)


def claimed_by_other(item: ReviewItem, user) -> bool:
    return bool(
        item.claimed_by_id
        and item.claimed_by_id != user.pk
        and item.claimed_at
        and item.claimed_at >= claim_alive_since()
    )


def review_item_trail(*, item_id: int) -> QuerySet[AuditEvent]:
    return (
        AuditEvent.objects.filter(Q(review_item_id=item_id)).select_related("actor").order_by("id")
    )
