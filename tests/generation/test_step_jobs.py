"""Tests remote refinement steps: step jobs at the fake fal and Replicate, waiting and resuming."""

from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image

from assets.selectors import file_open_image
from campaigns.models import Brief
from campaigns.services import campaign_launch
from generation.models import CostEntry, GenerationJob, RefinementChain
from generation.services import job_cancel, job_requeue, jobs_reconcile
from review.models import ReviewItem
from tests.factories import BrandFactory, campaign_with_briefs
from tests.generation.provider_helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = GenerationJob.Status


def chained_campaign(steps, *, count=1, logo=False):
    brand = BrandFactory(with_logo=logo)
    campaign = campaign_with_briefs(brand=brand, count=count)
    RefinementChain.objects.create(brand=brand, campaign=campaign, steps=steps)
    return campaign


def run_until_settled(queue, fake, campaign, *, webhooks):
    """Drain the queue; each remote step ends with a webhook, which queues the next work."""
    queue.run()
    for expected in range(1, webhooks + 1):
        wait_for(lambda n=expected: len(fake.deliveries()) >= n)
        queue.run()


def parent_job(campaign):
    return GenerationJob.objects.get(campaign=campaign, kind=GenerationJob.Kind.GENERATE)


def lanczos(image, size):
    return np.asarray(image.convert("RGB").resize(size, Image.Resampling.LANCZOS), dtype=float)


@pytest.mark.parametrize("provider", ["fal", "replicate"])
def test_a_remote_upscale_runs_as_a_step_job_and_the_chain_goes_on(fake, queue, provider):
    steps = [{"step": "upscale", "params": {"provider": provider, "scale": 2, "price": 0.25}}]
    campaign = chained_campaign(steps)
    campaign_launch(campaign=campaign)

    run_until_settled(queue, fake, campaign, webhooks=1)

    job = parent_job(campaign)
    assert job.status == Status.SUCCEEDED
    step_job = job.step_jobs.get()
    assert (step_job.kind, step_job.status, step_job.provider) == ("upscale", "succeeded", provider)
    master, upscaled = job.master, job.output
    assert upscaled.parent == master and upscaled.step == "upscale"
    assert (upscaled.width, upscaled.height) == (master.width * 2, master.height * 2)
    # The provider really worked on our master: its output is the master, upscaled.
    expected = lanczos(file_open_image(master.file), (upscaled.width, upscaled.height))
    got = np.asarray(file_open_image(upscaled.file), dtype=float)
    assert np.abs(got - expected).mean() < 3
    step = upscaled.recipe["steps"][-1]
    assert step["step"] == "upscale" and step["params"]["scale"] == 2.0
    assert step["remote"]["provider"] == provider and step["remote"]["request_id"]
    sent = str(step["remote"]["sent"]["body"])
    assert "data:image/png;base64,<" in sent and "sha256" in sent  # the digest, not megabytes
    assert upscaled.renditions.count() == 2
    assert ReviewItem.objects.filter(asset=upscaled).exists()
    actual = CostEntry.objects.get(job=step_job, kind=CostEntry.Kind.ACTUAL)
    assert actual.amount == Decimal("0.25")


def test_outpaint_extends_the_canvas_to_the_aspect_at_fal(fake, queue):
    campaign = chained_campaign([{"step": "outpaint", "params": {"aspect": "16:9"}}])
    campaign_launch(campaign=campaign)
    run_until_settled(queue, fake, campaign, webhooks=1)

    output = parent_job(campaign).output
    assert output.step == "outpaint"
    assert output.width / output.height == pytest.approx(16 / 9, abs=0.02)
    submit = fake.requests("submit")[0]
    assert "bria/expand" in submit["path"]


def test_a_local_step_after_a_remote_one_works_on_the_remote_output(fake, queue):
    steps = [
        {"step": "face_restore", "params": {"fidelity": 0.7}},
        {"step": "watermark", "params": {"anchor": "top-left"}},
    ]
    campaign = chained_campaign(steps, logo=True)
    campaign_launch(campaign=campaign)
    run_until_settled(queue, fake, campaign, webhooks=1)

    job = parent_job(campaign)
    assert job.status == Status.SUCCEEDED
    lineage = [job.output.parent.parent, job.output.parent, job.output]
    assert [node.step for node in lineage] == ["", "face_restore", "watermark"]
    assert [s["step"] for s in job.output.recipe["steps"]] == ["face_restore", "watermark"]


def test_a_step_job_that_dies_fails_its_job_naming_the_step(fake, queue, settings):
    settings.BRANDFORGE_JOB_MAX_ATTEMPTS = 1
    fake.push_script({"match": "fal.submit", "fault": "fail_job"})
    campaign = chained_campaign([{"step": "upscale", "params": {"scale": 2}}])
    campaign_launch(campaign=campaign)
    run_until_settled(queue, fake, campaign, webhooks=1)

    job = parent_job(campaign)
    assert job.step_jobs.get().status == Status.DEAD
    assert job.status == Status.DEAD
    assert job.error.startswith("step 1 (upscale): ")
    assert Brief.objects.get(campaign=campaign).status == Brief.Status.FAILED


def test_requeueing_the_dead_job_gives_its_step_job_another_go(fake, queue, settings):
    settings.BRANDFORGE_JOB_MAX_ATTEMPTS = 1
    fake.push_script({"match": "fal.submit", "fault": "fail_job"})
    campaign = chained_campaign([{"step": "upscale", "params": {"scale": 2}}])
    campaign_launch(campaign=campaign)
    run_until_settled(queue, fake, campaign, webhooks=1)
    job = parent_job(campaign)
    assert job.status == Status.DEAD

    assert job_requeue(job=job)
    run_until_settled(queue, fake, campaign, webhooks=2)

    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED
    assert job.step_jobs.get().status == Status.SUCCEEDED
    assert len(fake.requests("submit")) == 2


def test_the_step_job_is_created_once_however_often_the_chain_runs(fake, queue):
    campaign = chained_campaign([{"step": "upscale", "params": {"scale": 2}}])
    campaign_launch(campaign=campaign)
    queue.run()
    job = parent_job(campaign)
    assert job.status == Status.WAITING
    # A duplicate delivery of the job's task, and a stray resume, change nothing.
    from generation.services import job_resume, job_run

    job_run(job_id=job.pk)
    job_resume(job_id=job.pk)
    queue.run()
    assert GenerationJob.objects.filter(parent=job).count() == 1
    assert parent_job(campaign).status == Status.WAITING


def test_the_reconciler_wakes_a_job_whose_step_ended_while_its_wake_up_was_lost(
    fake, queue, settings
):
    settings.BRANDFORGE_JOB_REQUEUE_AFTER_SECONDS = 0
    campaign = chained_campaign([{"step": "upscale", "params": {"scale": 2}}])
    campaign_launch(campaign=campaign)
    run_until_settled(queue, fake, campaign, webhooks=1)
    job = parent_job(campaign)
    assert job.status == Status.SUCCEEDED
    # Replay the loss: the step is done, the job still waits and nothing is queued for it.
    GenerationJob.objects.filter(pk=job.pk).update(
        status=Status.WAITING, updated_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    assert jobs_reconcile() >= 1
    queue.run()
    assert parent_job(campaign).status == Status.SUCCEEDED


def test_cancelling_a_waiting_job_cancels_its_step_job(fake, queue):
    campaign = chained_campaign([{"step": "upscale", "params": {"scale": 2}}])
    campaign_launch(campaign=campaign)
    queue.run()
    job = parent_job(campaign)
    assert job.status == Status.WAITING

    assert job_cancel(job=job)
    queue.run()

    assert job.step_jobs.get().status == Status.CANCELLED
    assert parent_job(campaign).status == Status.CANCELLED
    assert any(r["endpoint"] == "fal.cancel" for r in fake.requests())
