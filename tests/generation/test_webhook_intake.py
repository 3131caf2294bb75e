"""Tests inbound fal webhooks on a live server: signed, fresh, and processed exactly once."""

import base64
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.utils import timezone

from generation.models import GenerationJob, ProviderWebhookEvent
from tests.engine_helpers import data_uri_png
from tests.factories import campaign_with_briefs

pytestmark = pytest.mark.django_db(transaction=True)

USER = "fal-user-1"
REQUEST_ID = "c0ffee00-1111-2222-3333-444455556666"


@pytest.fixture
def fal_key(settings):
    """Configure the real fal adapter with a local signing key published as a JWKS."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(public).decode().rstrip("=")  # JWKS x values are unpadded
    fal = settings.BRANDFORGE_PROVIDERS["fal"]
    settings.BRANDFORGE_PROVIDERS = {
        **settings.BRANDFORGE_PROVIDERS,
        "fal": {
            **fal,
            "options": {
                **fal["options"],
                "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]},
                "user_id": USER,
            },
        },
    }
    return key


def signed(key, body: bytes, *, ts=None, user=USER, request_id=REQUEST_ID) -> dict:
    ts = str(int(time.time()) if ts is None else ts)
    message = "\n".join([request_id, user, ts, hashlib.sha256(body).hexdigest()]).encode()
    return {
        "Content-Type": "application/json",
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user,
        "X-Fal-Webhook-Timestamp": ts,
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


@pytest.fixture
def submitted_job():
    campaign = campaign_with_briefs(count=1)
    brief = campaign.briefs.get()
    campaign.status = campaign.Status.RUNNING
    campaign.save()
    return GenerationJob.objects.create(
        campaign=campaign,
        brief=brief,
        idempotency_key="brief:test:v0",
        status=GenerationJob.Status.SUBMITTED,
        provider="fal",
        model="fal-ai/flux/dev",
        provider_request_id=REQUEST_ID,
        provider_urls={
            "status_url": "https://queue.fal.run/x",
            "response_url": "https://queue.fal.run/y",
        },
        submitted_at=timezone.now(),
        attempts=1,
        lease_expires_at=timezone.now() + timezone.timedelta(minutes=5),
    )


def ok_body() -> bytes:
    payload = {
        "request_id": REQUEST_ID,
        "gateway_request_id": REQUEST_ID,
        "status": "OK",
        "payload": {
            "images": [
                {"url": data_uri_png(), "width": 96, "height": 96, "content_type": "image/png"}
            ],
            "seed": 196619188014358660,
            "has_nsfw_concepts": [False],
        },
    }
    return json.dumps(payload).encode()


@pytest.mark.services  # real concurrency needs PostgreSQL
def test_the_same_webhook_delivered_100_times_concurrently_is_processed_once(
    live_server, fal_key, submitted_job, queue
):
    body = ok_body()
    headers = signed(fal_key, body)
    url = f"{live_server.url}/webhooks/providers/fal/"

    def deliver(_):
        return httpx.post(url, content=body, headers=headers, timeout=30).json()["status"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(deliver, range(100)))
    assert results.count("accepted") == 1 and results.count("duplicate") == 99
    assert ProviderWebhookEvent.objects.count() == 1

    assert queue.run(deliveries=2) >= 1
    submitted_job.refresh_from_db()
    assert submitted_job.status == GenerationJob.Status.SUCCEEDED
    assert submitted_job.output.parent.recipe["seed"] == 196619188014358660


def test_a_signed_webhook_completes_the_job(client, fal_key, submitted_job, queue):
    body = ok_body()
    response = client.post(
        "/webhooks/providers/fal/",
        data=body,
        content_type="application/json",
        headers={k: v for k, v in signed(fal_key, body).items() if k != "Content-Type"},
    )
    assert response.json() == {"status": "accepted"}
    queue.run()
    submitted_job.refresh_from_db()
    assert submitted_job.status == GenerationJob.Status.SUCCEEDED


@pytest.mark.parametrize(
    "variant",
    ["stale", "future", "bad_signature", "altered_body", "wrong_user", "missing_header"],
)
def test_forged_or_stale_webhooks_are_rejected(client, fal_key, submitted_job, variant):
    body = ok_body()
    now = int(time.time())
    headers = {
        "stale": lambda: signed(fal_key, body, ts=now - 301),
        "future": lambda: signed(fal_key, body, ts=now + 301),
        "bad_signature": lambda: signed(Ed25519PrivateKey.generate(), body),
        "altered_body": lambda: signed(fal_key, body),
        "wrong_user": lambda: signed(fal_key, body, user="someone-else"),
        "missing_header": lambda: {
            k: v for k, v in signed(fal_key, body).items() if k != "X-Fal-Webhook-Signature"
        },
    }[variant]()
    sent = (
        body.replace(b"196619188014358660", b"196619188014358661")
        if variant == "altered_body"
        else body
    )
    response = client.post(
        "/webhooks/providers/fal/",
        data=sent,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )
    assert response.status_code == 401
    assert not ProviderWebhookEvent.objects.exists()
    submitted_job.refresh_from_db()
    assert submitted_job.status == GenerationJob.Status.SUBMITTED
