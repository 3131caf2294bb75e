"""Provides reused reads of campaigns and briefs."""

from django.db.models import Count, Q, QuerySet

from assets.models import Layout
from campaigns.models import Brief, Campaign, FormatLayout


def campaign_list_with_progress() -> QuerySet[Campaign]:
    """Campaigns annotated with `briefs_total` and `briefs_done` in one query."""
    return Campaign.objects.select_related("brand").annotate(
        briefs_total=Count("briefs", distinct=True),
        briefs_done=Count("briefs", filter=Q(briefs__status__in=Brief.DONE), distinct=True),
    )


def campaign_layouts(*, campaign: Campaign) -> dict[int, Layout]:
    """The layout of each channel format of the campaign (by format id): the campaign's own
    choice, else the brand's; formats without one are missing."""
    chosen: dict[int, Layout] = {}
    rows = FormatLayout.objects.filter(
        Q(campaign=campaign) | Q(campaign=None), brand_id=campaign.brand_id
    ).select_related("layout")
    for row in sorted(rows, key=lambda row: row.campaign_id is not None):
        chosen[row.channel_format_id] = row.layout  # the campaign's, sorted last, wins
    return chosen
