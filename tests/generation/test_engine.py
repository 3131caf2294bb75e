"""Tests the asynchronous engine: submit and return, complete once, breaker, budget, routing."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_launch
from generation.models import (
    CostEntry,
    GenerationJob,
    ProviderCircuit,
    ProviderWebhookEvent,
    RoutingRule,
)
from generation.providers.base import (
    AsyncImageProvider,
    JobState,
    Outcome,
    OutputRef,
    ProviderError,
    Submission,
    WebhookDelivery,
    WebhookVerificationError,
)
from generation.selectors import route_for
from generation.services import jobs_reconcile
from review.models import ReviewItem
from tests.engine_helpers import data_uri_png
from tests.factories import campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)


class Scripted(AsyncImageProvider):
    """An async provider whose answers the test scripts; its webhooks are 'signed' with a token."""

    name = "scripted"
    default_model = "scripted-v1"
    submits: list = []
    fail_next: list = []
    outcomes: dict = {}

    def submit(self, request, *, webhook_url):
        if Scripted.fail_next:
            raise Scripted.fail_next.pop(0)
        request_id = f"req-{len(Scripted.submits) + 1}"
        Scripted.submits.append(
            {"id": request_id, "prompt": request.prompt, "webhook": webhook_url}
        )
        return Submission(
            request_id=request_id,
            urls={"status": f"https://scripted.invalid/{request_id}"},
            sent={"prompt": request.prompt, "seed": request.seed},
        )

    def poll(self, submission):
        return Scripted.outcomes.get(
            submission.request_id, Outcome(request_id=submission.request_id, state=JobState.RUNNING)
        )

    def cancel(self, submission):
        Scripted.outcomes[submission.request_id] = Outcome(
            request_id=submission.request_id, state=JobState.CANCELLED
        )

    def verify_webhook(self, headers, body):
        if headers.get("X-Token") != "good":
            raise WebhookVerificationError("bad token")
        data = json.loads(body)
        outcome = Outcome(
            request_id=data["id"],
            state=JobState(data["state"]),
            outputs=tuple(OutputRef(url=u) for u in data.get("outputs", [])),
        )
        return WebhookDelivery(delivery_id=f"{data['id']}:{data['state']}", outcome=outcome)


@pytest.fixture(autouse=True)
def scripted(settings):
    settings.BRANDFORGE_PROVIDERS = {
        **settings.BRANDFORGE_PROVIDERS,
        "scripted": f"{__name__}.Scripted",
    }
    settings.BRANDFORGE_PUBLIC_URL = "https://brandforge.example.com"
    Scripted.submits, Scripted.fail_next, Scripted.outcomes = [], [], {}
    return Scripted


def scripted_rule(**kwargs) -> RoutingRule:
    defaults = {"name": "scripted", "provider": "scripted", "price_per_image": Decimal("0.40")}
    return RoutingRule.objects.create(**{**defaults, **kwargs})


def post_webhook(client, payload, token="good"):  # noqa: S107 (the scripted provider's token)
    return client.post(
        reverse("provider-webhook", args=["scripted"]),
        data=json.dumps(payload),
        content_type="application/json",
        headers={"X-Token": token},
    )


def test_a_job_is_submitted_then_completed_once_by_its_webhook(queue, client):
    scripted_rule()
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run()

    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.SUBMITTED
    assert job.provider_request_id == "req-1" and job.attempts == 1
    assert (
        Scripted.submits[0]["webhook"]
        == f"https://brandforge.example.com/webhooks/providers/scripted/?job={job.uid}"
    )
    assert CostEntry.objects.get(job=job).kind == CostEntry.Kind.ESTIMATE

    payload = {"id": "req-1", "state": "succeeded", "outputs": [data_uri_png()]}
    assert post_webhook(client, payload).json() == {"status": "accepted"}
    assert post_webhook(client, payload).json() == {"status": "duplicate"}
    assert post_webhook(client, payload, token="forged").status_code == 401
    queue.run(deliveries=2)

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED
    assert job.output.recipe["provider"] == "scripted"
    assert job.output.recipe["sent"] == {"prompt": Scripted.submits[0]["prompt"], "seed": job.seed}
    assert ProviderWebhookEvent.objects.count() == 1
    assert ReviewItem.objects.filter(asset=job.output).count() == 1
    kinds = sorted(CostEntry.objects.filter(job=job).values_list("kind", "amount"))
    assert kinds == [("actual", Decimal("0.4000")), ("estimate", Decimal("0.4000"))]
    assert len(Scripted.submits) == 1


def test_a_quiet_submission_is_polled_by_the_reconciler(queue):
    scripted_rule()
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    assert jobs_reconcile() == 0  # still inside its wait for the webhook

    GenerationJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    assert jobs_reconcile() == 1
    queue.run()  # the provider says: still running
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUBMITTED

    Scripted.outcomes["req-1"] = Outcome(
        request_id="req-1", state=JobState.SUCCEEDED, outputs=(OutputRef(url=data_uri_png()),)
    )
    GenerationJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(1))
    jobs_reconcile()
    queue.run()
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED


def test_a_webhook_that_beats_the_submit_response_is_adopted(queue, client):
    scripted_rule()
    payload = {"id": "req-1", "state": "succeeded", "outputs": [data_uri_png()]}
    assert post_webhook(client, payload).json() == {"status": "unmatched"}
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    assert GenerationJob.objects.get().status == GenerationJob.Status.SUCCEEDED


def test_a_provider_failure_retries_with_a_new_submission(queue, client):
    scripted_rule()
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    post_webhook(client, {"id": "req-1", "state": "failed"})
    queue.run()
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.FAILED and job.provider_request_id == ""
    assert CostEntry.objects.get(job=job, kind="actual").amount == 0  # failures are not billed

    GenerationJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now() - timedelta(1))
    jobs_reconcile()
    queue.run()
    job.refresh_from_db()
    assert (job.status, job.attempts, job.provider_request_id) == ("submitted", 2, "req-2")


def test_retry_after_is_honoured(queue):
    scripted_rule()
    Scripted.fail_next = [
        ProviderError("throttled", retryable=True, retry_after=40, reached=False, status_code=429)
    ]
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.FAILED
    assert job.next_attempt_at >= timezone.now() + timedelta(seconds=38)
    assert jobs_reconcile() == 0  # nothing is sent before Retry-After


def test_the_circuit_opens_after_repeated_failures_and_closes_after_a_good_probe(queue, settings):
    settings.BRANDFORGE_BREAKER_FAILURES = 3
    scripted_rule()
    Scripted.fail_next = [ProviderError("503", retryable=True, reached=False) for _ in range(3)]
    campaign_launch(campaign=campaign_with_briefs(count=5))
    queue.run()

    circuit = ProviderCircuit.objects.get(provider="scripted")
    assert circuit.state == ProviderCircuit.State.OPEN
    assert len(Scripted.submits) == 0 and Scripted.fail_next == []  # 3 calls, then none
    waiting = GenerationJob.objects.filter(error__contains="circuit open")
    assert waiting.count() == 2 and all(job.attempts == 0 for job in waiting)

    ProviderCircuit.objects.filter(pk=circuit.pk).update(open_until=timezone.now() - timedelta(1))
    GenerationJob.objects.update(next_attempt_at=timezone.now() - timedelta(1))
    jobs_reconcile()
    queue.run()
    circuit.refresh_from_db()
    assert circuit.state == ProviderCircuit.State.CLOSED
    assert GenerationJob.objects.filter(status="submitted").count() == 5


def test_an_open_circuit_fails_over_to_the_fallback_rule(queue):
    local = RoutingRule.objects.create(name="local backup", provider="local", priority=500)
    scripted_rule(fallback=local)
    ProviderCircuit.objects.create(
        provider="scripted", state="open", open_until=timezone.now() + timedelta(minutes=5)
    )
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.SUCCEEDED and job.provider == "local"
    assert job.route_reasons[-1] == "scripted circuit open: fell back to local backup"
    assert Scripted.submits == []


def test_the_budget_cap_pauses_the_campaign_before_overspending(queue):
    scripted_rule()
    campaign = campaign_with_briefs(count=4, budget=Decimal("1.00"))
    campaign_launch(campaign=campaign)
    queue.run()

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert "Budget 1.00 reached" in campaign.status_reason
    assert len(Scripted.submits) == 2  # 2 × 0.40 committed; a third would pass 1.00
    assert GenerationJob.objects.filter(status="queued", attempts=0).count() == 2

    Campaign.objects.filter(pk=campaign.pk).update(budget=Decimal("2.00"))
    campaign_launch(campaign=campaign)
    queue.run()
    assert len(Scripted.submits) == 4


def test_routing_picks_by_priority_and_conditions_and_says_why():
    campaign = campaign_with_briefs(count=2)
    de = campaign.briefs.get(locale="de-DE")
    RoutingRule.objects.create(name="hi-res", provider="local", priority=1, min_resolution=2000)
    RoutingRule.objects.create(name="german", provider="scripted", priority=2, locales=["de-DE"])
    RoutingRule.objects.create(name="default", provider="local", priority=9)

    decision = route_for(brief=de)
    assert decision.rule.name == "german"
    assert decision.reasons == [
        "hi-res: skipped, largest format is 96px, rule needs 2000px",
        "german: matched (priority 2)",
    ]
    en = campaign.briefs.get(locale="en-GB")
    assert route_for(brief=en).rule.name == "default"
    assert "locale en-GB not in de-DE" in route_for(brief=en).reasons[1]


def test_an_output_url_to_a_private_address_fails_the_job_without_a_retry(queue, client):
    scripted_rule()
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    payload = {
        "id": "req-1",
        "state": "succeeded",
        "outputs": ["http://169.254.169.254/latest/x.png"],
    }
    post_webhook(client, payload)
    queue.run()
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.DEAD
    assert job.error.startswith("download: 169.254.169.254")
    assert job.attempts == 1


def test_a_rejected_request_is_not_retried(queue):
    scripted_rule()
    Scripted.fail_next = [ProviderError("422: prompt is required", retryable=False, reached=True)]
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    assert (job.status, job.attempts) == (GenerationJob.Status.DEAD, 1)
    assert "422: prompt is required" in job.error


def test_a_submit_that_timed_out_after_sending_is_matched_by_its_webhook_not_resent(queue, client):
    def submitted_then_timed_out(self, request, *, webhook_url):
        Scripted.submits.append({"id": "req-1", "webhook": webhook_url})
        raise ProviderError("read timeout", retryable=True, reached=True)

    scripted_rule()
    original = Scripted.submit
    Scripted.submit = submitted_then_timed_out
    try:
        campaign_launch(campaign=campaign_with_briefs(count=1))
        queue.run()
    finally:
        Scripted.submit = original
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.SUBMITTING and job.provider_request_id == ""
    assert jobs_reconcile() == 0  # waiting for word from the provider, not resubmitting

    url = Scripted.submits[0]["webhook"].removeprefix("https://brandforge.example.com")
    payload = {"id": "req-1", "state": "succeeded", "outputs": [data_uri_png()]}
    response = client.post(
        url, data=json.dumps(payload), content_type="application/json", headers={"X-Token": "good"}
    )
    assert response.json() == {"status": "accepted"}
    queue.run()
    job.refresh_from_db()
    assert (job.status, job.provider_request_id) == ("succeeded", "req-1")
    assert len(Scripted.submits) == 1


def test_an_uncertain_submit_with_no_word_is_sent_again_after_its_lease(queue):
    scripted_rule()
    Scripted.fail_next = [ProviderError("read timeout", retryable=True, reached=True)]
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    GenerationJob.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert jobs_reconcile() == 1
    queue.run()
    job = GenerationJob.objects.get()
    assert (job.status, job.attempts, job.provider_request_id) == ("submitted", 2, "req-1")


def test_cancelling_a_submitted_job_cancels_it_at_the_provider(queue):
    from generation.services import job_cancel

    scripted_rule()
    campaign_launch(campaign=campaign_with_briefs(count=1))
    queue.run()
    job = GenerationJob.objects.get()
    assert job_cancel(job=job) is True
    queue.run()
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED
    assert Scripted.outcomes["req-1"].state == JobState.CANCELLED
    assert job_cancel(job=job) is False
