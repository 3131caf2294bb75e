"""Provides reused reads of campaigns and briefs."""

from django.db.models import Count, Q, QuerySet

from campaigns.models import Brief, Campaign


def campaign_list_with_progress() -> QuerySet[Campaign]:
    """Campaigns annotated with `briefs_total` and `briefs_done` in one query."""
    return Campaign.objects.select_related("brand").annotate(
        briefs_total=Count("briefs", distinct=True),
        briefs_done=Count("briefs", filter=Q(briefs__status__in=Brief.DONE), distinct=True),
    )
