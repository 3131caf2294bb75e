"""Provides reused reads of generation jobs."""

from django.db.models import QuerySet

from generation.models import GenerationJob


def job_for_asset(*, asset_id: int) -> GenerationJob | None:
    return (
        GenerationJob.objects.select_related("brief", "campaign__brand")
        .filter(output_id=asset_id)
        .first()
    )


def jobs_of_campaign(*, campaign_id: int) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(campaign_id=campaign_id).select_related("brief", "output")
