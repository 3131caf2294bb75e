"""Provides the intake of provider webhooks: verify, store once, hand the work to a worker."""

from collections.abc import Mapping

from django.db import IntegrityError, transaction

from brandforge.tasks import enqueue
from generation.http import provider_client
from generation.models import GenerationJob, ProviderWebhookEvent
from generation.providers.registry import UnknownProviderError, get_provider
from generation.services.jobs import COMPLETE_TASK, outcome_dict


def provider_webhook_receive(*, provider: str, headers: Mapping[str, str], body: bytes) -> str:
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


def webhook_adopt_early(*, job: GenerationJob) -> None:
    """Queue completion from a webhook that arrived before the submit response was stored."""
    early = ProviderWebhookEvent.objects.filter(
        provider=job.provider, request_id=job.provider_request_id, job__isnull=True
    )
    for event in early:
        adopted = ProviderWebhookEvent.objects.filter(pk=event.pk, job__isnull=True).update(job=job)
        if adopted and event.state in ("succeeded", "failed", "cancelled"):
            enqueue(COMPLETE_TASK, job.pk, event.outcome)
