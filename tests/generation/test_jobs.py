"""Tests the job engine: failures back off, run out of attempts, and can be requeued from admin."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Brief, Campaign
from campaigns.services import campaign_launch
from generation.models import GenerationJob
from generation.providers.base import ImageProvider, ProviderError
from generation.services import job_run, jobs_reconcile
from tests.factories import BrandFactory, SeedProfileFactory, campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)


class DownProvider(ImageProvider):
    name = "local"
    default_model = "down-v1"

    def generate(self, request):
        raise ProviderError("upstream 503", retryable=True)


@pytest.fixture
def provider_down(settings):
    settings.BRANDFORGE_PROVIDERS = {"local": f"{__name__}.DownProvider"}


def make_due(job):
    GenerationJob.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now() - timedelta(1))


def test_a_failing_job_backs_off_then_dies_and_its_brief_fails(queue, provider_down, settings):
    settings.BRANDFORGE_JOB_MAX_ATTEMPTS = 3
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run()
    job = GenerationJob.objects.get()
    assert (job.status, job.attempts) == (GenerationJob.Status.FAILED, 1)
    assert "upstream 503" in job.error and job.next_attempt_at > timezone.now()

    job_run(job_id=job.pk)  # a duplicate delivery before the backoff is over
    job.refresh_from_db()
    assert job.attempts == 1

    for _ in range(2):
        make_due(job)
        assert jobs_reconcile() == 1
        queue.run()
    job.refresh_from_db()
    assert (job.status, job.attempts) == (GenerationJob.Status.DEAD, 3)
    assert [entry["attempt"] for entry in job.error_history] == [1, 2, 3]
    assert Brief.objects.get().status == Brief.Status.FAILED
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    assert jobs_reconcile() == 0


def test_a_dead_job_is_requeued_from_the_admin_and_succeeds(
    queue, provider_down, settings, admin_client
):
    settings.BRANDFORGE_JOB_MAX_ATTEMPTS = 1
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run()
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.Status.DEAD

    settings.BRANDFORGE_PROVIDERS = {"local": "generation.providers.local.LocalImageProvider"}
    response = admin_client.post(
        reverse("admin:generation_generationjob_changelist"),
        {"action": "requeue", "_selected_action": [job.pk]},
        follow=True,
    )
    assert "Requeued 1 job(s)." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    queue.run()
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED and job.output is not None
    assert Brief.objects.get().status == Brief.Status.IN_REVIEW


def test_the_same_recipe_gives_the_same_bytes_and_another_seed_another_image(queue):
    brand = BrandFactory(with_logo=True)
    seven = SeedProfileFactory(brand=brand, strategy="fixed", base_seed=7)
    eight = SeedProfileFactory(brand=brand, strategy="fixed", base_seed=8)
    campaigns = [
        campaign_with_briefs(brand=brand, count=1, seed_profile=profile)
        for profile in (seven, seven, eight)
    ]
    for campaign in campaigns:
        campaign_launch(campaign=campaign)
    queue.run()

    jobs = [GenerationJob.objects.get(campaign=campaign) for campaign in campaigns]
    assert [job.seed for job in jobs] == [7, 7, 8]
    first, again, other = (job.output for job in jobs)
    assert first.pk != again.pk
    assert first.recipe["prompt"] == again.recipe["prompt"] == other.recipe["prompt"]
    assert first.sha256 == again.sha256 and first.parent.sha256 == again.parent.sha256
    assert first.parent.sha256 != other.parent.sha256
