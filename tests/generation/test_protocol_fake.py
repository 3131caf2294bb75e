"""Tests the real adapters and the engine against the fake provider, webhooks on a live server."""

import time

import pytest
from django.utils import timezone

from campaigns.services import campaign_launch
from generation.models import GenerationJob, ProviderCircuit, ProviderWebhookEvent, RoutingRule
from generation.services import jobs_reconcile
from review.models import ReviewItem
from tests.factories import campaign_with_briefs
from tests.generation.provider_helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("provider", "model"), [("fal", "fal-ai/flux/dev"), ("replicate", "black-forest-labs/flux-dev")]
)
def test_jobs_complete_through_signed_webhooks(fake, queue, provider, model):
    RoutingRule.objects.create(name=provider, provider=provider, model=model)
    campaign = campaign_with_briefs(count=2)
    campaign_launch(campaign=campaign)
    queue.run()
    assert GenerationJob.objects.filter(status="submitted").count() == 2

    wait_for(lambda: ProviderWebhookEvent.objects.filter(state="succeeded").count() == 2)
    queue.run()

    jobs = GenerationJob.objects.filter(campaign=campaign)
    assert {job.status for job in jobs} == {GenerationJob.Status.SUCCEEDED}
    for job in jobs:
        master = job.output.parent
        assert master.recipe["provider"] == provider
        assert master.recipe["sent"]["body"]  # exactly what was posted is on record
        assert (master.width, master.height) == (96, 96)
    assert ReviewItem.objects.filter(campaign=campaign).count() == 2
    submits = fake.requests("submit")
    assert len(submits) == 2  # one submit per job, no duplicates


def test_without_webhooks_the_reconciler_polls_the_provider(fake, queue, settings):
    settings.BRANDFORGE_PUBLIC_URL = ""
    RoutingRule.objects.create(name="fal", provider="fal", model="fal-ai/flux/dev")
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.SUBMITTED
    time.sleep(0.5)  # the fake's latency
    GenerationJob.objects.update(lease_expires_at=timezone.now())
    jobs_reconcile()
    queue.run()
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED
    assert ProviderWebhookEvent.objects.count() == 0


def test_provider_down_opens_the_circuit_and_no_calls_are_made_while_open(fake, queue, settings):
    settings.BRANDFORGE_BREAKER_FAILURES = 3
    fake.configure(down=True)
    RoutingRule.objects.create(name="fal", provider="fal", model="fal-ai/flux/dev")
    campaign_launch(campaign=campaign_with_briefs(count=6))
    queue.run()
    assert ProviderCircuit.objects.get(provider="fal").state == ProviderCircuit.State.OPEN
    submits = fake.requests("submit")
    assert len(submits) == 3  # then nothing while open

    fake.configure(down=False)
    ProviderCircuit.objects.update(open_until=timezone.now())
    GenerationJob.objects.update(next_attempt_at=timezone.now())
    jobs_reconcile()
    queue.run()
    assert ProviderCircuit.objects.get(provider="fal").state == ProviderCircuit.State.CLOSED
    assert len(fake.requests("submit")) == 3 + 6  # the probe closed the circuit; all went
    wait_for(lambda: ProviderWebhookEvent.objects.count() == 6)
    queue.run()
    assert GenerationJob.objects.filter(status="succeeded").count() == 6


def test_a_429_is_not_retried_before_retry_after(fake, queue):
    fake.push_script({"match": "submit", "status": 429, "retry_after": 3})
    RoutingRule.objects.create(name="fal", provider="fal", model="fal-ai/flux/dev")
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    first = fake.requests("submit")[0]
    assert job.status == GenerationJob.Status.FAILED
    assert job.next_attempt_at.timestamp() >= first["t"] + 3 - 0.05
    assert jobs_reconcile() == 0


def test_in_a_429_storm_no_job_calls_again_before_retry_after(fake, queue):
    fake.push_script({"match": "submit", "status": 429, "retry_after": 4, "times": 10})
    RoutingRule.objects.create(name="fal", provider="fal", model="fal-ai/flux/dev")
    campaign_launch(campaign=campaign_with_briefs(count=10))
    queue.run()
    throttled = fake.requests("submit")
    assert len(throttled) == 10 and {r["status"] for r in throttled} == {429}
    # Each job waits at least Retry-After from its own 429 (jobs ran one after another).
    retries = sorted(job.next_attempt_at.timestamp() for job in GenerationJob.objects.all())
    answered = sorted(r["t"] for r in throttled)
    assert all(retry >= at + 4 - 0.05 for retry, at in zip(retries, answered, strict=True))
    assert jobs_reconcile() == 0 and len(fake.requests("submit")) == 10
    # 429s are the provider pacing us, not failing: the circuit stays closed.
    assert not ProviderCircuit.objects.filter(state="open").exists()
