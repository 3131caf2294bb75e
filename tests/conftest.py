"""Provides the suite's shared fixtures: isolated storage, the service switch and a queue runner."""

import os
import uuid
from importlib import import_module

import pytest
from django.conf import settings
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

SERVICES = bool(settings.REDIS_URL and settings.AWS_STORAGE_BUCKET_NAME) and (
    settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
)
REQUIRE_SERVICES = os.environ.get("BRANDFORGE_REQUIRE_SERVICES") == "1"
settings.VAR_DIR.mkdir(parents=True, exist_ok=True)  # holds the SQLite test database


def pytest_collection_modifyitems(config, items):
    if SERVICES:
        return
    if REQUIRE_SERVICES:
        raise pytest.UsageError(
            "BRANDFORGE_REQUIRE_SERVICES=1, but DATABASE_URL (PostgreSQL), REDIS_URL and "
            "AWS_STORAGE_BUCKET_NAME are not all set: the service-backed tests would be skipped."
        )
    skip = pytest.mark.skip(reason="services: needs PostgreSQL, Redis and S3 (see .ci/run)")
    for item in items:
        if item.get_closest_marker("services"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def s3_bucket():
    """Create the test bucket on the S3 endpoint once per run (moto in CI)."""
    if not settings.AWS_STORAGE_BUCKET_NAME:
        return None
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        region_name=settings.AWS_S3_REGION_NAME,
        aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
        aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
    )
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if settings.AWS_STORAGE_BUCKET_NAME not in existing:
        client.create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)
    return client


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path, s3_bucket):
    """Give every test its own storage area: a temp folder locally, a fresh prefix on S3."""
    if s3_bucket is not None:
        prefix = f"test-{uuid.uuid4().hex[:12]}"
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {**settings.STORAGES["default"], "OPTIONS": {"location": f"{prefix}/work"}},
            "publish": {
                **settings.STORAGES["publish"],
                "OPTIONS": {
                    **settings.STORAGES["publish"]["OPTIONS"],
                    "location": f"{prefix}/published",
                },
            },
        }
    else:
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "brandforge.storage.FileSystemStorage",
                "OPTIONS": {"location": tmp_path / "media"},
            },
            "publish": {
                "BACKEND": "brandforge.storage.FileSystemStorage",
                "OPTIONS": {"location": tmp_path / "published", "base_url": "/media/published/"},
            },
        }
    return s3_bucket


@pytest.fixture(autouse=True)
def small_masters(settings):
    """Generate 128 px masters: every stage runs for real, on images that are quick to make."""
    settings.BRANDFORGE_MASTER_SIZE = 128


class QueueRunner:
    """Runs what the workers would run, in this process, through the configured broker.

    It dequeues real task packages from the ORM or Redis broker, so the tests see exactly what a
    `qcluster` would; `deliveries=2` runs every package twice, as an at-least-once broker may.
    """

    def __init__(self):
        self.broker = get_broker()
        self.ran: list[str] = []

    def purge(self) -> None:
        self.broker.purge_queue()

    def run(self, *, deliveries: int = 1, limit: int = 10_000) -> int:
        count = 0
        while self.broker.queue_size() and count < limit:
            for ack_id, payload in self.broker.dequeue() or []:
                task = SignedPackage.loads(payload)
                for _ in range(deliveries):
                    self._call(task)
                if ack_id is not None:
                    self.broker.acknowledge(ack_id)
                count += 1
        return count

    def _call(self, task: dict) -> None:
        func = task["func"]
        if isinstance(func, str):
            module, name = func.rsplit(".", 1)
            func = getattr(import_module(module), name)
        self.ran.append(task["name"] if "name" in task else str(func))
        func(*task.get("args", ()), **task.get("kwargs", {}))


@pytest.fixture
def queue():
    runner = QueueRunner()
    runner.purge()
    yield runner
    runner.purge()
