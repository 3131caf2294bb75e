"""Provides the intake of provider webhooks: verify, store once, hand the work to a worker."""

import uuid
from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from brandforge.tasks import enqueue
from generation.http import provider_client
from generation.models import GenerationJob, ProviderWebhookEvent
from generation.providers.registry import UnknownProviderError, get_provider
from generation.services.jobs import COMPLETE_TASK, outcome_dict

Status = GenerationJob.Status


def provider_webhook_receive(
    *, provider: str, headers: Mapping[str, str], body: bytes, job_uid: str | None = None
) -> str:
    """Verify a webhook over its raw body and queue the job's completion, once per delivery.

    Returns "accepted", "duplicate" (already stored: providers deliver at least once) or
    "unmatched" (no job with this request id yet; the submitting worker adopts it).
    Raises WebhookVerificationError for anything not authentic or not fresh.
    """
    adapter = get_provider(provider, client=provider_client())
    if not adapter.is_async:
        raise UnknownProviderError(f"{provider} does not send webhooks")
    delivery = adapter.verify_webhook(headers, body)
    outcome = delivery.outcome
    job = GenerationJob.objects.filter(
        provider=provider, provider_request_id=outcome.request_id
    ).first()
    if job is None and job_uid:
        job = _adopt_uncertain_submit(provider, job_uid, outcome.request_id)
    try:
        with transaction.atomic():
            event = ProviderWebhookEvent.objects.create(
                provider=provider,
                delivery_id=delivery.delivery_id,
                request_id=outcome.request_id,
                job=job,
                state=outcome.state,
                outcome=outcome_dict(outcome),
            )
            if job is not None and outcome.state.terminal:
                enqueue(COMPLETE_TASK, job.pk, event.outcome)
    except IntegrityError:
        return "duplicate"
    return "accepted" if job is not None else "unmatched"


def _adopt_uncertain_submit(provider: str, job_uid: str, request_id: str) -> GenerationJob | None:
    """Link a job whose submit timed out to the request the provider says it made for it."""
    try:
        uuid.UUID(job_uid)
    except ValueError:
        return None
    adopted = GenerationJob.objects.filter(
        uid=job_uid, provider=provider, status=Status.SUBMITTING, provider_request_id=""
    ).update(provider_request_id=request_id, status=Status.SUBMITTED, submitted_at=timezone.now())
    return GenerationJob.objects.get(uid=job_uid) if adopted else None


def webhook_adopt_early(*, job: GenerationJob) -> None:
    """Queue completion from a webhook that arrived before the submit response was stored."""
    early = ProviderWebhookEvent.objects.filter(
        provider=job.provider, request_id=job.provider_request_id, job__isnull=True
    )
    for event in early:
        adopted = ProviderWebhookEvent.objects.filter(pk=event.pk, job__isnull=True).update(job=job)
        if adopted and event.state in ("succeeded", "failed", "cancelled"):
            enqueue(COMPLETE_TASK, job.pk, event.outcome)
