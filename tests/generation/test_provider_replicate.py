"""Tests for the Replicate predictions adapter and Standard Webhooks verification."""

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks.webhooks
from standardwebhooks import Webhook

from generation.providers import replicate
from generation.providers.base import (
    JobState,
    LoraSpec,
    ProviderError,
    Submission,
    WebhookVerificationError,
)
from generation.providers.replicate import ReplicateImageProvider
from generation.providers.webhooks import verify_standard_webhook
from tests.generation.provider_helpers import fixture_bytes as raw_fixture
from tests.generation.provider_helpers import load_fixture, typical_request

TOKEN = "r8_test_token"
API = "https://api.replicate.com"
WEBHOOK_URL = "https://brandforge.example/api/v1/webhooks/replicate/"
VERSION = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
# The published test vector (replicate-python tests/test_webhooks.py).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def fixture(name):
    return load_fixture("replicate", name)


def fixture_bytes(name):
    return raw_fixture("replicate", name)


def make_request(**changes):
    return typical_request(**{"model": "black-forest-labs/flux-dev", "height": 768, **changes})


def provider_with(handler, **options):
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return ReplicateImageProvider(client=client, **{"api_token": TOKEN, **options})


def reply(status_code, name, **kwargs):
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return httpx.Response(status_code, content=fixture_bytes(name), headers=headers, **kwargs)


def submission():
    prediction = fixture("prediction_starting")
    return Submission(request_id=prediction["id"], urls=prediction["urls"], sent={}, raw=prediction)


def routes(table, seen=None):
    def handler(request):
        key = (request.method, str(request.url))
        assert key in table, f"unexpected request {key}"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        if seen is not None:
            seen.append(key)
        return table[key]

    return handler


@pytest.fixture(autouse=True)
def empty_secret_cache(monkeypatch):
    monkeypatch.setattr(replicate, "_secret_cache", {})


# Submit


def test_submit_creates_an_official_model_prediction_with_bearer_auth_and_a_webhook():
    seen = []

    def handler(request):
        seen.append(request)
        assert request.method == "POST"
        assert str(request.url) == f"{API}/v1/models/black-forest-labs/flux-dev/predictions"
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert "prefer" not in request.headers
        assert json.loads(request.content) == fixture("create_request")
        return reply(201, "prediction_starting")

    result = provider_with(handler).submit(make_request(), webhook_url=WEBHOOK_URL)

    assert len(seen) == 1
    assert result.request_id == "avyjww80xnrgj0cjb2z8taq7nw"
    assert result.sent["body"] == json.loads(seen[0].content)
    assert result.sent["url"] == str(seen[0].url)
    assert result.sent["not_sent"] == {
        "negative_prompt": "text, watermark",
        "palette": ["#E63946", "#1D3557"],
    }
    assert result.raw["status"] == "starting"


def test_submit_keeps_the_prediction_urls_from_the_answer():
    result = provider_with(lambda request: reply(201, "prediction_starting")).submit(
        make_request(), webhook_url=None
    )

    assert result.urls == fixture("prediction_starting")["urls"]
    assert result.urls["get"].startswith("https://api-eu.replicate.example/")


@pytest.mark.parametrize(
    "model",
    [VERSION, f"black-forest-labs/flux-dev:{VERSION}"],
    ids=["version_id_case", "owner_name_version_case"],
)
def test_submit_with_a_version_posts_to_predictions_with_the_version(model):
    def handler(request):
        assert str(request.url) == f"{API}/v1/predictions"
        body = json.loads(request.content)
        assert body["version"] == VERSION
        assert body["input"]["prompt"] == "a ceramic mug on an oak desk, brand colours"
        return reply(201, "prediction_starting")

    provider_with(handler).submit(make_request(model=model), webhook_url=WEBHOOK_URL)


def test_submit_without_a_webhook_sends_no_webhook_fields():
    def handler(request):
        body = json.loads(request.content)
        assert set(body) == {"input"}
        return reply(201, "prediction_starting")

    provider_with(handler).submit(make_request(), webhook_url=None)


def test_loras_map_to_lora_weights_and_params_override_model_specific_inputs():
    loras = (
        LoraSpec(path="https://huggingface.co/acme/brand-lora", scale=0.9, trigger="BRND"),
        LoraSpec(path="acme/texture-lora", scale=0.4),
    )
    params = {
        "width": None,
        "height": None,
        "aspect_ratio": "4:3",
        "lora_scale": 0.7,
        "seed": 7,
        "prompt": "other",
    }

    def handler(request):
        input_ = json.loads(request.content)["input"]
        assert input_ == {
            "prompt": "a ceramic mug on an oak desk, brand colours",
            "seed": 42,
            "num_outputs": 1,
            "lora_weights": "https://huggingface.co/acme/brand-lora",
            "lora_scale": 0.7,
            "aspect_ratio": "4:3",
        }
        return reply(201, "prediction_starting")

    result = provider_with(handler).submit(
        make_request(model="black-forest-labs/flux-dev-lora", loras=loras, params=params),
        webhook_url=None,
    )

    assert result.sent["not_sent"]["loras"] == [{"path": "acme/texture-lora", "scale": 0.4}]
    assert result.sent["not_sent"]["params"] == {"seed": 7, "prompt": "other"}


@pytest.mark.parametrize(
    "model",
    ["flux-dev", "owner/name/extra", "owner/name:latest", "../v1/account", "owner/na me"],
    ids=["no_owner_case", "subpath_case", "tag_case", "traversal_case", "space_case"],
)
def test_a_malformed_model_is_refused_before_sending(model):
    with pytest.raises(ProviderError) as caught:
        provider_with(lambda request: pytest.fail("nothing may be sent")).submit(
            make_request(model=model), webhook_url=None
        )

    assert (caught.value.retryable, caught.value.reached) == (False, False)


def test_a_429_on_create_is_retryable_with_retry_after_and_not_reached():
    provider = provider_with(
        lambda request: reply(429, "rate_limited", headers={"Retry-After": "7"})
    )

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    error = caught.value
    assert (error.retryable, error.retry_after, error.reached, error.status_code) == (
        True,
        7.0,
        False,
        429,
    )
    assert "Request was throttled" in str(error)


def test_a_422_problem_is_not_retryable_and_carries_its_detail():
    provider = provider_with(lambda request: reply(422, "error_422"))

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    assert not caught.value.retryable
    assert "input.num_outputs: Must be less than or equal to 4" in str(caught.value)


def test_a_connect_timeout_on_create_is_not_reached():
    def handler(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).submit(make_request(), webhook_url=None)

    assert (caught.value.retryable, caught.value.reached) == (True, False)


def test_a_read_timeout_on_create_may_have_reached_replicate():
    def handler(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).submit(make_request(), webhook_url=None)

    assert (caught.value.retryable, caught.value.reached) == (True, True)


# Poll and cancel


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("prediction_starting", JobState.QUEUED),
        ("prediction_processing", JobState.RUNNING),
        ("prediction_canceled", JobState.CANCELLED),
        ("prediction_aborted", JobState.CANCELLED),
    ],
    ids=["starting_case", "processing_case", "canceled_case", "aborted_case"],
)
def test_poll_maps_the_prediction_status(name, state):
    sub = submission()
    seen = []
    handler = routes({("GET", sub.urls["get"]): reply(200, name)}, seen)

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is state
    assert outcome.outputs == ()
    assert seen == [("GET", sub.urls["get"])]


@pytest.mark.parametrize(
    ("name", "url_start", "content_type"),
    [
        ("prediction_succeeded_list", "https://replicate.delivery/xezq/", "image/webp"),
        ("prediction_succeeded_string", "https://replicate.delivery/pbxt/", "image/png"),
        ("prediction_succeeded_data_uri", "data:image/png;base64,iVBOR", "image/png"),
    ],
    ids=["list_case", "string_case", "data_uri_case"],
)
def test_poll_returns_the_outputs_of_a_succeeded_prediction(name, url_start, content_type):
    sub = submission()
    handler = routes({("GET", sub.urls["get"]): reply(200, name)})

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is JobState.SUCCEEDED
    assert len(outcome.outputs) == 1
    assert outcome.outputs[0].url.startswith(url_start)
    assert outcome.outputs[0].content_type == content_type
    assert outcome.seed == 42


def test_poll_reports_a_failed_prediction_with_its_error():
    sub = submission()
    handler = routes({("GET", sub.urls["get"]): reply(200, "prediction_failed")})

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is JobState.FAILED
    assert outcome.error.startswith("NSFW content detected")


def test_poll_reports_a_success_without_an_image_as_failed():
    sub = submission()
    prediction = {**fixture("prediction_succeeded_list"), "output": None, "data_removed": True}
    handler = routes({("GET", sub.urls["get"]): httpx.Response(200, json=prediction)})

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is JobState.FAILED
    assert "data_removed" in outcome.error


def test_poll_maps_a_401_to_a_non_retryable_error():
    sub = submission()
    handler = routes({("GET", sub.urls["get"]): reply(401, "error_401")})

    with pytest.raises(ProviderError, match="valid authentication token") as caught:
        provider_with(handler).poll(sub)

    assert not caught.value.retryable


def test_poll_honours_an_http_date_retry_after():
    sub = submission()
    when = datetime.fromtimestamp(time.time() + 120, tz=UTC)
    retry_at = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    handler = routes(
        {("GET", sub.urls["get"]): httpx.Response(503, headers={"Retry-After": retry_at})}
    )

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).poll(sub)

    assert caught.value.retryable
    assert 110 <= caught.value.retry_after <= 121


@pytest.mark.parametrize(
    "answer",
    [reply(200, "prediction_canceled"), httpx.Response(404, json={"detail": "Not found."})],
    ids=["canceled_case", "gone_case"],
)
def test_cancel_posts_the_cancel_url(answer):
    sub = submission()
    seen = []

    provider_with(routes({("POST", sub.urls["cancel"]): answer}, seen)).cancel(sub)

    assert seen == [("POST", sub.urls["cancel"])]


# Webhooks


def signed(body, *, secret=SECRET, msg_id="msg_2Lh9JfXYc8T4S3pQzRkV1", timestamp=None):
    stamp = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, body.decode()),
    }


def test_verify_webhook_accepts_a_signed_prediction():
    body = fixture_bytes("prediction_succeeded_list")
    provider = ReplicateImageProvider(webhook_secret=SECRET)

    delivery = provider.verify_webhook(signed(body), body)

    assert delivery.delivery_id == "msg_2Lh9JfXYc8T4S3pQzRkV1:succeeded"
    assert delivery.outcome.state is JobState.SUCCEEDED
    assert delivery.outcome.request_id == "avyjww80xnrgj0cjb2z8taq7nw"
    assert delivery.outcome.outputs[0].url == "https://replicate.delivery/xezq/Ab3dEf/out-0.webp"


def test_verify_webhook_reads_a_non_terminal_prediction_as_non_terminal():
    body = fixture_bytes("prediction_processing")
    headers = {key.title(): value for key, value in signed(body).items()}  # as Django shows them

    delivery = ReplicateImageProvider(webhook_secret=SECRET).verify_webhook(headers, body)

    assert delivery.outcome.state is JobState.RUNNING
    assert not delivery.outcome.state.terminal
    assert delivery.delivery_id.endswith(":processing")


def test_verify_webhook_rejects_an_altered_body():
    body = fixture_bytes("prediction_succeeded_list")
    headers = signed(body)

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        ReplicateImageProvider(webhook_secret=SECRET).verify_webhook(
            headers, body.replace(b"out-0.webp", b"out-1.webp")
        )


def test_verify_webhook_rejects_a_stale_delivery():
    body = fixture_bytes("prediction_succeeded_list")

    with pytest.raises(WebhookVerificationError, match="too old"):
        ReplicateImageProvider(webhook_secret=SECRET).verify_webhook(
            signed(body, timestamp=time.time() - 301), body
        )


@pytest.mark.parametrize(
    "header",
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ids=["id_case", "timestamp_case", "signature_case"],
)
def test_verify_webhook_rejects_a_missing_header(header):
    body = fixture_bytes("prediction_succeeded_list")
    headers = signed(body)
    del headers[header]

    with pytest.raises(WebhookVerificationError, match="Missing required headers"):
        ReplicateImageProvider(webhook_secret=SECRET).verify_webhook(headers, body)


@pytest.mark.parametrize(
    "signature",
    ["v1g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,abc,def", "v1,%%%notbase64"],
    ids=["no_comma_case", "two_commas_case", "bad_base64_case"],
)
def test_verify_webhook_rejects_a_malformed_signature_entry(signature):
    body = fixture_bytes("prediction_succeeded_list")
    headers = {**signed(body), "webhook-signature": signature}

    with pytest.raises(WebhookVerificationError):
        ReplicateImageProvider(webhook_secret=SECRET).verify_webhook(headers, body)


def test_the_published_test_vector_matches_a_plain_hmac():
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed_content = f"{VECTOR_ID}.{VECTOR_TIMESTAMP}.".encode() + VECTOR_BODY
    digest = hmac.new(key, signed_content, hashlib.sha256).digest()

    assert f"v1,{base64.b64encode(digest).decode()}" == VECTOR_SIGNATURE


def test_verify_standard_webhook_accepts_the_published_test_vector(monkeypatch):
    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(VECTOR_TIMESTAMP + 10, tz=tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", FrozenDatetime)
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        # Several entries, as during a key rotation; unknown versions are skipped.
        "webhook-signature": f"v1a,bm90IGEgc2lnbmF0dXJl {VECTOR_SIGNATURE}",
    }

    verify_standard_webhook(headers, VECTOR_BODY, secret=SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_standard_webhook(headers, VECTOR_BODY + b" ", secret=SECRET)


def test_the_published_test_vector_is_stale_today():
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }

    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_standard_webhook(headers, VECTOR_BODY, secret=SECRET)


def test_the_webhook_secret_is_fetched_once_when_not_configured():
    seen = []
    secret_url = f"{API}/v1/webhooks/default/secret"
    handler = routes({("GET", secret_url): reply(200, "webhook_secret")}, seen)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    body = fixture_bytes("prediction_succeeded_string")

    for _ in range(2):  # a new adapter per call, as the registry makes them
        provider = ReplicateImageProvider(client=client, api_token=TOKEN)
        assert provider.verify_webhook(signed(body), body).outcome.state is JobState.SUCCEEDED
        provider.verify_webhook(signed(body), body)

    assert seen == [("GET", secret_url)]


def test_a_failed_secret_fetch_is_a_retryable_provider_error():
    provider = provider_with(lambda request: httpx.Response(502, text="bad gateway"))
    body = fixture_bytes("prediction_succeeded_string")

    with pytest.raises(ProviderError) as caught:
        provider.verify_webhook(signed(body), body)

    assert caught.value.retryable
