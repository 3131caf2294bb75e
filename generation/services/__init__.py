"""Provides every write of the generation app; the engine lives in `jobs`."""

from generation.services.breaker import circuit_acquire, circuit_record
from generation.services.costs import budget_reserve, campaign_spend, cost_record
from generation.services.jobs import (
    backoff,
    campaign_jobs_create,
    job_cancel,
    job_claim,
    job_complete,
    job_fail,
    job_key,
    job_poll,
    job_provider_cancel,
    job_renditions_rebuild,
    job_requeue,
    job_resume,
    job_run,
    jobs_reconcile,
    seed_for,
    webhook_url,
)
from generation.services.regenerate import brief_regenerate
from generation.services.webhooks import provider_webhook_receive

__all__ = [
    "backoff",
    "brief_regenerate",
    "budget_reserve",
    "campaign_jobs_create",
    "campaign_spend",
    "circuit_acquire",
    "circuit_record",
    "cost_record",
    "job_cancel",
    "job_claim",
    "job_complete",
    "job_fail",
    "job_key",
    "job_poll",
    "job_provider_cancel",
    "job_renditions_rebuild",
    "job_requeue",
    "job_resume",
    "job_run",
    "jobs_reconcile",
    "provider_webhook_receive",
    "seed_for",
    "webhook_url",
]
