"""End to end through the real broker: launch → generate → refine → render → review → publish."""

import io

import numpy as np
import pytest
from django.core.files.storage import storages
from PIL import Image, ImageFilter

from assets.models import Asset, AuditEvent, Rendition
from assets.selectors import file_open_image
from brandforge.images import encode_image
from campaigns.models import Brief, Campaign
from campaigns.services import campaign_launch
from generation.models import GenerationJob
from generation.pipeline.focal import find_focal_point
from generation.pipeline.reframe import reframe_to
from review.models import ReviewItem, Score
from review.services import review_item_approve, review_item_reject
from tests.factories import campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)


def assert_every_rendition_carries_the_watermark(asset):
    """The logo sits in the bottom-right corner of every format, not cropped off with the master."""
    master = file_open_image(asset.parent.file).convert("RGB")
    for rendition in asset.renditions.all():
        # The reference is the same frame without the logo, through the same codec and quality,
        # so codec artefacts cancel out and only the logo can differ.
        framed = reframe_to(
            master,
            width=rendition.width,
            height=rendition.height,
            focal_point=find_focal_point(master),
        )
        reference = Image.open(
            io.BytesIO(encode_image(framed, fmt=rendition.file_format, quality=80))
        ).convert("RGB")
        shipped = file_open_image(rendition.file).convert("RGB")
        a, b = (np.asarray(im.filter(ImageFilter.BoxBlur(1)), float) for im in (reference, shipped))
        changed = np.abs(a - b).max(axis=2) > 40
        h, w = changed.shape
        assert changed[int(h * 0.6) :, int(w * 0.6) :].mean() > 0.05, rendition.format_name
        assert changed[: int(h * 0.5), : int(w * 0.5)].mean() < 0.01, rendition.format_name


def test_a_campaign_goes_from_launch_to_published_files(queue, admin_user):
    campaign = campaign_with_briefs(count=3)
    campaign_launch(campaign=campaign)
    queue.run()

    items = list(ReviewItem.objects.filter(campaign=campaign).select_related("asset", "brief"))
    assert len(items) == 3
    assert {item.status for item in items} == {ReviewItem.Status.PENDING}
    for item in items:
        asset = item.asset
        assert asset.status == Asset.Status.IN_REVIEW
        assert asset.step == "watermark"
        assert asset.parent.parent is None and asset.parent.status == Asset.Status.INTERMEDIATE
        recipe = asset.recipe
        assert recipe["provider"] == "local" and recipe["model"] == "procedural-v1"
        assert "mug" in recipe["prompt"] and "clean studio light" in recipe["prompt"]
        assert recipe["template"]["hash"] == item.brief.template_version.content_hash
        assert [step["step"] for step in recipe["steps"]] == ["watermark"]
        assert isinstance(recipe["seed"], int)
        assert asset.renditions.count() == 2
        assert_every_rendition_carries_the_watermark(asset)
        scorers = set(Score.objects.filter(asset=asset).values_list("scorer", flat=True))
        assert {"sharpness", "resolution", "aspect"} <= scorers

    for item in items[:2]:
        review_item_approve(item=item, actor=admin_user)
    review_item_reject(item=items[2], actor=admin_user, reason="Off-brand colours")
    queue.run()

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED
    publish = storages["publish"]
    for item in items[:2]:
        item.refresh_from_db()
        assert item.status == ReviewItem.Status.PUBLISHED
        assert item.brief.status == Brief.Status.PUBLISHED
        for rendition in item.asset.renditions.all():
            expected = (
                f"{campaign.brand.slug}/{campaign.uid}/{item.brief.locale}/"
                f"{item.brief.external_ref}/{rendition.format_name}."
                f"{'webp' if rendition.file_format == 'WEBP' else 'jpg'}"
            )
            assert rendition.published_name == expected
            with publish.open(expected) as fh:
                image = Image.open(fh)
                assert image.size == (rendition.width, rendition.height)
                assert image.format == rendition.file_format
    items[2].refresh_from_db()
    assert items[2].status == ReviewItem.Status.REJECTED
    assert not items[2].asset.renditions.filter(published_at__isnull=False).exists()

    approved = items[0]
    trail = list(
        AuditEvent.objects.filter(review_item_id=approved.pk)
        .order_by("id")
        .values_list("action", "to_status")
    )
    assert trail == [
        ("review_item_created", "pending"),
        ("review_approved", "approved"),
        ("review_published", "published"),
    ]
    asset_trail = list(
        AuditEvent.objects.filter(asset=approved.asset, action="asset_status")
        .order_by("id")
        .values_list("from_status", "to_status")
    )
    assert asset_trail == [
        ("generated", "rendered"),
        ("rendered", "in_review"),
        ("in_review", "approved"),
        ("approved", "published"),
    ]
    reject_event = AuditEvent.objects.get(review_item_id=items[2].pk, action="review_rejected")
    assert reject_event.actor == admin_user and reject_event.reason == "Off-brand colours"


def test_every_task_delivered_twice_creates_nothing_twice(queue, admin_user):
    campaign = campaign_with_briefs(count=3)
    campaign_launch(campaign=campaign)
    queue.run(deliveries=2)

    assert GenerationJob.objects.filter(campaign=campaign).count() == 3
    assert Asset.objects.filter(brand=campaign.brand).count() == 6  # master + watermarked
    assert Rendition.objects.filter(asset__brand=campaign.brand).count() == 6  # 3 × 2 formats
    assert ReviewItem.objects.filter(campaign=campaign).count() == 3
    assert AuditEvent.objects.filter(action="review_item_created").count() == 3
    assert all(job.attempts == 1 for job in GenerationJob.objects.all())

    for item in ReviewItem.objects.filter(campaign=campaign):
        review_item_approve(item=item, actor=admin_user)
    queue.run(deliveries=2)

    assert ReviewItem.objects.filter(status=ReviewItem.Status.PUBLISHED).count() == 3
    assert AuditEvent.objects.filter(action="review_published").count() == 3
    assert AuditEvent.objects.filter(action="asset_status", to_status="published").count() == 3
    assert Rendition.objects.filter(published_at__isnull=False).count() == 6


def test_a_worker_killed_mid_job_is_recovered_without_duplicates(queue, settings):
    from datetime import timedelta

    from django.utils import timezone

    from generation.services import job_claim, jobs_reconcile

    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run(limit=1)  # creates the job and queues its task
    queue.purge()  # the broker lost that task (Redis) ...
    job = GenerationJob.objects.get(campaign=campaign)
    assert job_claim(job_id=job.pk) is not None  # ... or a worker took it and was killed
    queue.run()
    assert GenerationJob.objects.get(pk=job.pk).status == GenerationJob.Status.RUNNING

    assert jobs_reconcile() == 0  # the lease still protects the job
    GenerationJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert jobs_reconcile() == 1
    queue.run(deliveries=2)

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED
    assert job.attempts == 2
    assert Asset.objects.filter(brand=campaign.brand).count() == 2
    assert ReviewItem.objects.filter(campaign=campaign).count() == 1


def test_a_lost_hand_off_to_review_is_recovered_by_the_reconciler(queue, settings):
    from datetime import timedelta

    from django.utils import timezone

    from generation.services import jobs_reconcile

    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run(limit=2)  # make the job, run it; its review task is queued ...
    assert GenerationJob.objects.get().status == GenerationJob.Status.SUCCEEDED
    queue.purge()  # ... and lost with the worker that held it
    assert jobs_reconcile() == 0  # not yet: it may still be waiting in the queue
    GenerationJob.objects.update(finished_at=timezone.now() - timedelta(minutes=5))
    assert jobs_reconcile() == 1
    queue.run(deliveries=2)
    assert ReviewItem.objects.filter(campaign=campaign).count() == 1
    assert jobs_reconcile() == 0
