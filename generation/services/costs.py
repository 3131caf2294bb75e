"""Provides the cost ledger and the campaign budget cap."""

from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Sum

from campaigns.models import Campaign
from generation.models import CostEntry, GenerationJob


def cost_record(
    *, job: GenerationJob, kind: str, amount: Decimal, provider: str, model: str
) -> None:
    """Write the ledger entry of this attempt (once: a second delivery leaves the first)."""
    CostEntry.objects.bulk_create(
        [
            CostEntry(
                job=job,
                attempt=job.attempts,
                kind=kind,
                brand_id=job.campaign.brand_id,
                campaign_id=job.campaign_id,
                provider=provider,
                model=model,
                amount=amount,
            )
        ],
        ignore_conflicts=True,
    )


def campaign_spend(*, campaign_id: int) -> tuple[Decimal, Decimal]:
    """Return (spent, committed): actual costs, and estimates of attempts not yet settled."""
    entries = CostEntry.objects.filter(campaign_id=campaign_id)
    spent = entries.filter(kind=CostEntry.Kind.ACTUAL).aggregate(s=Sum("amount"))["s"]
    settled = CostEntry.objects.filter(
        job_id=OuterRef("job_id"), attempt=OuterRef("attempt"), kind=CostEntry.Kind.ACTUAL
    )
    committed = (
        entries.filter(kind=CostEntry.Kind.ESTIMATE)
        .exclude(Exists(settled))
        .aggregate(s=Sum("amount"))["s"]
    )
    return spent or Decimal("0"), committed or Decimal("0")


def budget_reserve(
    *, job: GenerationJob, amount: Decimal, provider: str, model: str
) -> tuple[bool, str]:
    """Commit `amount` for this attempt if the campaign budget allows it; else pause the campaign.

    The campaign row is locked while checking, so two workers cannot both take the last of it;
    a campaign without a budget needs no lock.
    """
    if job.campaign.budget is None:
        cost_record(
            job=job, kind=CostEntry.Kind.ESTIMATE, amount=amount, provider=provider, model=model
        )
        return True, ""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=job.campaign_id)
        if campaign.budget is not None:
            spent, committed = campaign_spend(campaign_id=campaign.pk)
            if spent + committed + amount > campaign.budget:
                reason = (
                    f"Budget {campaign.budget} reached: spent {spent}, committed {committed}, "
                    f"next image {amount}."
                )
                Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.RUNNING).update(
                    status=Campaign.Status.PAUSED, status_reason=reason
                )
                return False, reason
        cost_record(
            job=job, kind=CostEntry.Kind.ESTIMATE, amount=amount, provider=provider, model=model
        )
    return True, ""
