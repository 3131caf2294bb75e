"""Tests that the suite's service run really uses PostgreSQL, the Redis broker and S3."""

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.db import connection
from django_q.brokers import get_broker
from django_q.brokers.redis_broker import Redis

from campaigns.services import campaign_launch
from review.models import ReviewItem
from review.services import review_item_approve
from tests.factories import campaign_with_briefs

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_the_configured_components_are_the_production_ones():
    assert connection.vendor == "postgresql"
    assert isinstance(get_broker(), Redis)
    assert type(storages["default"]).__name__ == "S3Storage"
    assert type(storages["publish"]).__name__ == "S3Storage"


def test_published_objects_land_in_s3_with_validated_type_and_metadata(
    queue, admin_user, s3_bucket
):
    campaign = campaign_with_briefs(count=1)
    campaign_launch(campaign=campaign)
    queue.run()
    item = ReviewItem.objects.get(campaign=campaign)
    review_item_approve(item=item, actor=admin_user)
    queue.run()

    publish = storages["publish"]
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    renditions = list(item.asset.renditions.order_by("format_name"))
    assert len(renditions) == 2
    for rendition in renditions:
        key = f"{publish.location}/{rendition.published_name}"
        head = s3_bucket.head_object(Bucket=bucket, Key=key)
        expected_type = {"WEBP": "image/webp", "JPEG": "image/jpeg"}[rendition.file_format]
        assert head["ContentType"] == expected_type
        assert head["ContentLength"] == rendition.size_bytes
        assert head["Metadata"]["brand"] == campaign.brand.slug
        assert head["Metadata"]["sha256"] == rendition.sha256
        assert head["Metadata"]["digital-source-type"] == "trainedAlgorithmicMedia"
    # The working copies are private objects under the work prefix, never public-read.
    acl = s3_bucket.get_object_acl(
        Bucket=bucket, Key=f"{storages['default'].location}/{item.asset.file.name}"
    )
    assert all(grant["Grantee"].get("URI", "").find("AllUsers") == -1 for grant in acl["Grants"])
