"""Tests for the fal.ai queue adapter, the shared HTTP error mapping and fal webhook checks."""

import base64
import dataclasses
import hashlib
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from generation.providers import webhooks
from generation.providers.base import (
    JobState,
    LoraSpec,
    ProviderError,
    Submission,
    WebhookVerificationError,
)
from generation.providers.fal import FalImageProvider
from generation.providers.webhooks import JwksCache, verify_fal_webhook
from tests.generation.provider_helpers import fixture_bytes as raw_fixture
from tests.generation.provider_helpers import load_fixture, typical_request

API_KEY = "fal-key-id:fal-key-secret"
USER_ID = "github|4321"
WEBHOOK_URL = "https://brandforge.example/api/v1/webhooks/fal/?job=7"
SUBMIT_URL = "https://queue.fal.run/fal-ai/flux/dev"
JWKS_URL = "https://rest.fal.ai/.well-known/jwks.json"


def fixture(name):
    return load_fixture("fal", name)


def fixture_bytes(name):
    return raw_fixture("fal", name)


def make_request(**changes):
    return typical_request(**{"model": "fal-ai/flux/dev", "height": 768, **changes})


def provider_with(handler, **options):
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return FalImageProvider(client=client, **{"api_key": API_KEY, **options})


def submission():
    answer = fixture("submit_response")
    urls = {key: answer[key] for key in ("status_url", "response_url", "cancel_url")}
    return Submission(request_id=answer["request_id"], urls=urls, sent={}, raw=answer)


def reply(status_code, name=None, **kwargs):
    if name is not None:
        kwargs["content"] = fixture_bytes(name)
        kwargs.setdefault("headers", {})["content-type"] = "application/json"
    return httpx.Response(status_code, **kwargs)


def routes(table, seen=None):
    """Answer each (method, url) from ``table``; fail the test on any other request."""

    def handler(request):
        key = (request.method, str(request.url))
        assert key in table, f"unexpected request {key}"
        assert request.headers["authorization"] == f"Key {API_KEY}"
        if seen is not None:
            seen.append(key)
        return table[key]() if callable(table[key]) else table[key]

    return handler


# Submit


def test_submit_posts_the_flux_body_to_the_model_with_key_auth_and_the_webhook_param():
    seen = []

    def handler(request):
        seen.append(request)
        assert request.method == "POST"
        assert str(request.url) == (
            f"{SUBMIT_URL}?fal_webhook=https%3A%2F%2Fbrandforge.example%2Fapi%2Fv1"
            "%2Fwebhooks%2Ffal%2F%3Fjob%3D7"
        )
        assert request.url.params["fal_webhook"] == WEBHOOK_URL
        assert request.headers["authorization"] == f"Key {API_KEY}"
        assert "bearer" not in request.headers["authorization"].lower()
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.content) == fixture("submit_request")
        return reply(200, "submit_response")

    result = provider_with(handler).submit(make_request(), webhook_url=WEBHOOK_URL)

    assert len(seen) == 1
    assert result.request_id == "80e732af-660e-45cd-bd63-580e4f2a94cc"
    assert result.sent["body"] == json.loads(seen[0].content)
    assert result.sent["url"] == str(seen[0].url)
    assert result.sent["not_sent"] == {
        "negative_prompt": "text, watermark",
        "palette": ["#E63946", "#1D3557"],
    }
    assert "negative_prompt" not in result.sent["body"]
    assert result.raw == fixture("submit_response")


def test_submit_keeps_the_status_result_and_cancel_urls_from_the_answer():
    provider = provider_with(lambda request: reply(200, "submit_response"))

    result = provider.submit(make_request(), webhook_url=None)

    answer = fixture("submit_response")
    assert result.urls == {
        "status_url": answer["status_url"],
        "response_url": answer["response_url"],
        "cancel_url": answer["cancel_url"],
    }
    # The answer's URLs drop the model's subpath and name another host: nothing built.
    assert all(
        url.startswith("https://queue.falrun.com/fal-ai/flux/requests/")
        for url in result.urls.values()
    )


def test_submit_without_a_webhook_sends_no_query():
    def handler(request):
        assert str(request.url) == SUBMIT_URL
        return reply(200, "submit_response")

    result = provider_with(handler).submit(make_request(), webhook_url=None)

    assert result.sent["url"] == SUBMIT_URL


def test_params_override_flux_defaults_and_none_removes_a_default():
    def handler(request):
        body = json.loads(request.content)
        assert body["num_inference_steps"] == 40
        assert body["output_format"] == "png"
        assert body["acceleration"] == "regular"
        assert "enable_safety_checker" not in body
        assert body["prompt"] == "a ceramic mug on an oak desk, brand colours"
        assert body["seed"] == 42
        assert "sync_mode" not in body
        return reply(200, "submit_response")

    params = {
        "num_inference_steps": 40,
        "output_format": "png",
        "acceleration": "regular",
        "enable_safety_checker": None,
        "prompt": "something else",
        "seed": 1,
        "sync_mode": True,
    }
    result = provider_with(handler).submit(make_request(params=params), webhook_url=None)

    assert result.sent["not_sent"]["params"] == {
        "prompt": "something else",
        "seed": 1,
        "sync_mode": True,
    }


def test_loras_are_sent_to_a_lora_model():
    loras = (LoraSpec(path="https://cdn.example/brand.safetensors", scale=0.8, trigger="BRND"),)

    def handler(request):
        assert str(request.url) == "https://queue.fal.run/fal-ai/flux-lora"
        body = json.loads(request.content)
        assert body["loras"] == [{"path": "https://cdn.example/brand.safetensors", "scale": 0.8}]
        return reply(200, "submit_response")

    result = provider_with(handler).submit(
        make_request(model="fal-ai/flux-lora", loras=loras), webhook_url=None
    )

    assert "loras" not in result.sent["not_sent"]


def test_loras_for_a_model_without_lora_support_are_recorded_as_not_sent():
    loras = (LoraSpec(path="owner/brand-lora", scale=1.0),)

    def handler(request):
        assert "loras" not in json.loads(request.content)
        return reply(200, "submit_response")

    result = provider_with(handler).submit(make_request(loras=loras), webhook_url=None)

    assert result.sent["not_sent"]["loras"] == [{"path": "owner/brand-lora", "scale": 1.0}]


@pytest.mark.parametrize(
    "model",
    ["flux-dev", "fal-ai/../admin", "https://evil.example/x", "fal-ai/flux dev", "@evil/x"],
    ids=["no_owner_case", "dotdot_case", "url_case", "space_case", "at_case"],
)
def test_a_malformed_model_id_is_refused_before_sending(model):
    def handler(request):
        raise AssertionError("nothing may be sent")

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).submit(make_request(model=model), webhook_url=None)

    assert not caught.value.retryable
    assert not caught.value.reached


def test_a_missing_api_key_is_a_configuration_error():
    provider = FalImageProvider(client=httpx.Client(transport=httpx.MockTransport(None)))

    with pytest.raises(ProviderError, match="api_key") as caught:
        provider.submit(make_request(), webhook_url=None)

    assert not caught.value.retryable


# Error mapping (generation/providers/http.py)


def test_without_an_injected_client_the_adapter_makes_one_with_short_timeouts():
    client = FalImageProvider(api_key=API_KEY).http

    assert isinstance(client, httpx.Client)
    assert (client.timeout.connect, client.timeout.read) == (5.0, 30.0)


def test_a_queue_url_with_an_unsupported_scheme_is_a_configuration_error():
    provider = provider_with(lambda request: pytest.fail("nothing may be sent"))
    provider.queue_url = "ftp://queue.fal.run"
    provider.client = httpx.Client()  # a real transport, which refuses ftp before connecting

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    assert (caught.value.retryable, caught.value.reached) == (False, False)


def test_a_429_on_submit_is_retryable_with_retry_after_and_not_reached():
    provider = provider_with(
        lambda request: httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "busy"})
    )

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    error = caught.value
    assert (error.retryable, error.retry_after, error.reached) == (True, 7.0, False)
    assert error.status_code == 429
    assert "busy" in str(error)


def test_a_connect_error_is_retryable_and_surely_not_reached():
    def handler(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).submit(make_request(), webhook_url=None)

    assert (caught.value.retryable, caught.value.reached) == (True, False)


@pytest.mark.parametrize(
    "exc_type",
    [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteError],
    ids=["read_timeout_case", "protocol_case", "write_case"],
)
def test_a_failure_after_sending_a_submit_may_have_reached_the_provider(exc_type):
    def handler(request):
        raise exc_type("gone", request=request)

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).submit(make_request(), webhook_url=None)

    assert (caught.value.retryable, caught.value.reached) == (True, True)
    assert "may have been received" in str(caught.value)


def test_a_422_is_not_retryable_and_carries_fals_validation_detail():
    provider = provider_with(lambda request: reply(422, "error_422"))

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    error = caught.value
    assert not error.retryable
    assert error.status_code == 422
    assert "body.prompt: field required" in str(error)
    assert "body.image_size.width: ensure this value is less than or equal to 14142" in str(error)


def test_a_504_with_a_string_detail_is_retryable():
    provider = provider_with(
        lambda request: reply(504, "error_timeout", headers={"X-Fal-Error-Type": "request_timeout"})
    )

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    assert caught.value.retryable
    assert caught.value.reached
    assert "Request timed out (request_timeout)" in str(caught.value)


def test_a_malformed_json_answer_is_retryable():
    provider = provider_with(lambda request: httpx.Response(200, text="<html>bad gateway</html>"))

    with pytest.raises(ProviderError) as caught:
        provider.submit(make_request(), webhook_url=None)

    assert caught.value.retryable


def test_a_401_is_not_retryable():
    provider = provider_with(lambda request: httpx.Response(401, json={"detail": "No key"}))

    with pytest.raises(ProviderError, match="No key") as caught:
        provider.submit(make_request(), webhook_url=None)

    assert not caught.value.retryable


# Poll


@pytest.mark.parametrize(
    ("status_fixture", "state"),
    [("status_in_queue", JobState.QUEUED), ("status_in_progress", JobState.RUNNING)],
    ids=["in_queue_case", "in_progress_case"],
)
def test_poll_maps_a_202_queue_status(status_fixture, state):
    sub = submission()
    seen = []
    handler = routes({("GET", sub.urls["status_url"]): reply(202, status_fixture)}, seen)

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is state
    assert not outcome.state.terminal
    assert outcome.request_id == sub.request_id
    assert seen == [("GET", sub.urls["status_url"])]


def test_poll_fetches_a_completed_result_from_the_response_url():
    sub = submission()
    seen = []
    handler = routes(
        {
            ("GET", sub.urls["status_url"]): reply(200, "status_completed"),
            ("GET", sub.urls["response_url"]): reply(200, "result"),
        },
        seen,
    )

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is JobState.SUCCEEDED
    assert [(ref.url, ref.content_type, ref.width, ref.height) for ref in outcome.outputs] == [
        ("https://v3.fal.media/files/tiger/6Yd1a3Hc_mug.jpeg", "image/jpeg", 1024, 768)
    ]
    # Above 2**53: a float would have rounded it.
    assert outcome.seed == 196619188014358660
    assert outcome.seed > 2**53
    assert outcome.nsfw is False
    assert seen == [("GET", sub.urls["status_url"]), ("GET", sub.urls["response_url"])]


def test_poll_flags_nsfw_when_any_image_has_nsfw_concepts():
    sub = submission()
    handler = routes(
        {
            ("GET", sub.urls["status_url"]): reply(200, "status_completed"),
            ("GET", sub.urls["response_url"]): reply(200, "result_nsfw"),
        }
    )

    outcome = provider_with(handler).poll(sub)

    assert outcome.nsfw is True
    assert len(outcome.outputs) == 2
    assert outcome.outputs[1].width is None
    assert outcome.outputs[1].content_type == ""


def test_poll_reports_a_completed_request_with_an_error_as_failed_with_its_detail():
    sub = submission()
    handler = routes(
        {
            ("GET", sub.urls["status_url"]): reply(200, "status_completed_error"),
            ("GET", sub.urls["response_url"]): reply(422, "error_422"),
        }
    )

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is JobState.FAILED
    assert "validation_error: Invalid status code: 422" in outcome.error
    assert "body.prompt: field required" in outcome.error
    assert outcome.outputs == ()


def test_poll_reports_an_http_error_from_the_response_url_as_failed():
    sub = submission()
    handler = routes(
        {
            ("GET", sub.urls["status_url"]): reply(200, "status_completed"),
            ("GET", sub.urls["response_url"]): reply(422, "error_422"),
        }
    )

    outcome = provider_with(handler).poll(sub)

    assert outcome.state is JobState.FAILED
    assert "HTTP 422" in outcome.error


def test_poll_raises_retryable_on_a_transient_response_url_error():
    sub = submission()
    handler = routes(
        {
            ("GET", sub.urls["status_url"]): reply(200, "status_completed"),
            ("GET", sub.urls["response_url"]): httpx.Response(503, text="upstream unavailable"),
        }
    )

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).poll(sub)

    assert caught.value.retryable


def test_poll_refuses_an_unknown_queue_status():
    sub = submission()
    handler = routes({("GET", sub.urls["status_url"]): httpx.Response(200, json={"status": "X"})})

    with pytest.raises(ProviderError, match="unknown queue status"):
        provider_with(handler).poll(sub)


def test_poll_refuses_to_send_the_key_over_plain_http():
    sub = dataclasses.replace(
        submission(), urls={"status_url": "http://queue.falrun.com/fal-ai/flux/requests/1/status"}
    )

    with pytest.raises(ProviderError, match="non-https"):
        provider_with(lambda request: pytest.fail("nothing may be sent")).poll(sub)


# Cancel


@pytest.mark.parametrize(
    "answer",
    [
        reply(202, "cancel_requested"),
        reply(400, "cancel_already_completed"),
        httpx.Response(404, json={"status": "NOT_FOUND"}),
        httpx.Response(404, text="not found"),
    ],
    ids=["requested_case", "already_completed_case", "not_found_case", "plain_404_case"],
)
def test_cancel_puts_the_cancel_url_and_treats_finished_requests_as_done(answer):
    sub = submission()
    seen = []
    handler = routes({("PUT", sub.urls["cancel_url"]): answer}, seen)

    provider_with(handler).cancel(sub)

    assert seen == [("PUT", sub.urls["cancel_url"])]


def test_cancel_raises_on_other_errors():
    sub = submission()
    handler = routes({("PUT", sub.urls["cancel_url"]): httpx.Response(500, text="boom")})

    with pytest.raises(ProviderError) as caught:
        provider_with(handler).cancel(sub)

    assert caught.value.retryable


# Webhooks


@pytest.fixture
def signing_key():
    return Ed25519PrivateKey.generate()


def jwk_for(private_key):
    raw = private_key.public_key().public_bytes_raw()
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": hashlib.sha256(raw).hexdigest()[:16],
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
    }


def jwks_for(*private_keys):
    return {"keys": [jwk_for(key) for key in private_keys]}


def signed_headers(private_key, body, *, request_id=None, user_id=USER_ID, timestamp=None):
    request_id = request_id or json.loads(body)["request_id"]
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    message = "\n".join([request_id, user_id, stamp, hashlib.sha256(body).hexdigest()])
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": private_key.sign(message.encode()).hex(),
    }


def test_the_test_jwks_has_unpadded_base64url_keys(signing_key):
    x = jwk_for(signing_key)["x"]
    assert len(x) == 43
    assert "=" not in x


def test_verify_webhook_accepts_a_valid_ok_delivery(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body)
    provider = FalImageProvider(api_key=API_KEY, jwks=jwks_for(signing_key), user_id=USER_ID)

    delivery = provider.verify_webhook(headers, body)

    request_id = "123e4567-e89b-12d3-a456-426614174000"
    assert delivery.delivery_id == f"{request_id}:OK"
    outcome = delivery.outcome
    assert (outcome.request_id, outcome.state, outcome.needs_fetch) == (
        request_id,
        JobState.SUCCEEDED,
        False,
    )
    assert outcome.outputs[0].url == "https://v3.fal.media/files/monkey/image.png"
    assert (outcome.outputs[0].width, outcome.outputs[0].height) == (1024, 1024)
    assert outcome.seed == 196619188014358660
    assert outcome.raw["status"] == "OK"


def test_verify_webhook_accepts_any_key_of_the_jwks_and_lower_case_headers(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = {k.lower(): v for k, v in signed_headers(signing_key, body).items()}
    jwks = jwks_for(Ed25519PrivateKey.generate(), signing_key)
    jwks["keys"].insert(0, {"kty": "RSA", "n": "AQAB", "e": "AQAB"})
    provider = FalImageProvider(jwks=jwks)

    assert provider.verify_webhook(headers, body).outcome.state is JobState.SUCCEEDED


def test_verify_webhook_reads_an_error_delivery_as_failed(signing_key):
    body = fixture_bytes("webhook_error")
    provider = FalImageProvider(jwks=jwks_for(signing_key))

    delivery = provider.verify_webhook(signed_headers(signing_key, body), body)

    assert delivery.delivery_id.endswith(":ERROR")
    assert delivery.outcome.state is JobState.FAILED
    assert delivery.outcome.error == "Invalid status code: 422: body.prompt: field required"


def test_verify_webhook_asks_for_a_fetch_when_the_payload_could_not_be_sent(signing_key):
    body = fixture_bytes("webhook_payload_error")
    provider = FalImageProvider(jwks=jwks_for(signing_key))

    outcome = provider.verify_webhook(signed_headers(signing_key, body), body).outcome

    assert outcome.state is JobState.SUCCEEDED
    assert outcome.needs_fetch
    assert outcome.outputs == ()
    assert outcome.raw["payload_error"].startswith("Response payload is not JSON serializable")


def test_verify_webhook_rejects_an_altered_body(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body)
    provider = FalImageProvider(jwks=jwks_for(signing_key))

    with pytest.raises(WebhookVerificationError, match="does not match"):
        provider.verify_webhook(headers, body.replace(b"image.png", b"other.png"))


def test_verify_webhook_rejects_a_body_for_another_request(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body, request_id="another-request")
    provider = FalImageProvider(jwks=jwks_for(signing_key))

    with pytest.raises(WebhookVerificationError, match="request_id"):
        provider.verify_webhook(headers, body)


def test_verify_webhook_rejects_a_key_not_in_the_jwks(signing_key):
    body = fixture_bytes("webhook_ok")
    provider = FalImageProvider(jwks=jwks_for(Ed25519PrivateKey.generate()))

    with pytest.raises(WebhookVerificationError):
        provider.verify_webhook(signed_headers(signing_key, body), body)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-301, "stale"), (301, "future")],
    ids=["stale_case", "future_case"],
)
def test_verify_fal_webhook_rejects_a_timestamp_beyond_the_tolerance(signing_key, offset, reason):
    body = fixture_bytes("webhook_ok")
    now = 1_790_000_000
    headers = signed_headers(signing_key, body, timestamp=now + offset)

    with pytest.raises(WebhookVerificationError, match=reason):
        verify_fal_webhook(headers, body, jwks=jwks_for(signing_key), user_id=None, now=now)


@pytest.mark.parametrize("offset", [-300, 300], ids=["old_edge_case", "new_edge_case"])
def test_verify_fal_webhook_accepts_a_timestamp_at_the_tolerance(signing_key, offset):
    body = fixture_bytes("webhook_ok")
    now = 1_790_000_000
    headers = signed_headers(signing_key, body, timestamp=now + offset)

    verify_fal_webhook(headers, body, jwks=jwks_for(signing_key), user_id=None, now=now)


@pytest.mark.parametrize(
    "header",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
    ids=["request_id_case", "user_id_case", "timestamp_case", "signature_case"],
)
def test_verify_fal_webhook_rejects_a_missing_header(signing_key, header):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body)
    del headers[header]

    with pytest.raises(WebhookVerificationError, match=f"missing header.*{header.lower()}"):
        verify_fal_webhook(headers, body, jwks=jwks_for(signing_key), user_id=None)


def test_verify_fal_webhook_rejects_a_signature_that_is_not_hex(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body)
    headers["X-Fal-Webhook-Signature"] = "zz" + headers["X-Fal-Webhook-Signature"][2:]

    with pytest.raises(WebhookVerificationError, match="not hex"):
        verify_fal_webhook(headers, body, jwks=jwks_for(signing_key), user_id=None)


def test_verify_fal_webhook_rejects_a_timestamp_that_is_not_an_integer(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body)
    headers["X-Fal-Webhook-Timestamp"] += ".5"

    with pytest.raises(WebhookVerificationError, match="not an integer"):
        verify_fal_webhook(headers, body, jwks=jwks_for(signing_key), user_id=None)


def test_verify_fal_webhook_rejects_another_user_when_one_is_pinned(signing_key):
    body = fixture_bytes("webhook_ok")
    headers = signed_headers(signing_key, body, user_id="someone-else")
    jwks = jwks_for(signing_key)

    verify_fal_webhook(headers, body, jwks=jwks, user_id=None)  # authentic when unpinned
    with pytest.raises(WebhookVerificationError, match="user id"):
        verify_fal_webhook(headers, body, jwks=jwks, user_id=USER_ID)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def jwks_client(documents, seen):
    """Serve the JWKS documents in turn (the last one repeatedly)."""

    def handler(request):
        assert str(request.url) == JWKS_URL
        seen.append(request)
        return httpx.Response(200, json=documents[min(len(seen), len(documents)) - 1])

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_jwks_cache_fetches_once_and_again_after_max_age(signing_key):
    seen, clock = [], Clock()
    client = jwks_client([jwks_for(signing_key)], seen)
    cache = JwksCache(JWKS_URL, max_age=600, clock=clock)
    body = fixture_bytes("webhook_ok")

    cache.verify(signed_headers(signing_key, body), body, client=client, user_id=None)
    clock.now += 599
    cache.verify(signed_headers(signing_key, body), body, client=client, user_id=None)
    assert len(seen) == 1

    clock.now += 1
    cache.get(client)
    assert len(seen) == 2


def test_jwks_cache_never_keeps_keys_longer_than_a_day():
    assert JwksCache(JWKS_URL, max_age=7 * 86400).max_age == 86400


def test_jwks_cache_refetches_once_on_a_miss_for_a_rotated_key(signing_key):
    old_key = Ed25519PrivateKey.generate()
    seen, clock = [], Clock()
    client = jwks_client([jwks_for(old_key), jwks_for(old_key, signing_key)], seen)
    cache = JwksCache(JWKS_URL, clock=clock)
    body = fixture_bytes("webhook_ok")
    cache.get(client)
    clock.now += 61

    cache.verify(signed_headers(signing_key, body), body, client=client, user_id=None)

    assert len(seen) == 2


def test_jwks_cache_refetches_at_most_once_a_minute(signing_key):
    seen, clock = [], Clock()
    client = jwks_client([jwks_for(Ed25519PrivateKey.generate())], seen)
    cache = JwksCache(JWKS_URL, clock=clock)
    body = fixture_bytes("webhook_ok")
    forged = signed_headers(signing_key, body)

    for _ in range(5):
        with pytest.raises(WebhookVerificationError):
            cache.verify(forged, body, client=client, user_id=None)
    assert len(seen) == 1  # the first fetch is under a minute old: no refetch

    clock.now += 60
    with pytest.raises(WebhookVerificationError):
        cache.verify(forged, body, client=client, user_id=None)
    assert len(seen) == 2


def test_a_failed_jwks_fetch_raises_a_retryable_provider_error(signing_key):
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(503)))
    body = fixture_bytes("webhook_ok")

    with pytest.raises(ProviderError) as caught:
        JwksCache(JWKS_URL).verify(
            signed_headers(signing_key, body), body, client=client, user_id=None
        )

    assert caught.value.retryable


def test_the_provider_fetches_the_jwks_from_the_configured_url(signing_key, monkeypatch):
    monkeypatch.setattr(webhooks, "_jwks_caches", {})
    seen = []
    url = "https://rest.alpha.fal.ai/.well-known/jwks.json"

    def handler(request):
        seen.append(str(request.url))
        return httpx.Response(200, json=jwks_for(signing_key))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    body = fixture_bytes("webhook_ok")
    for _ in range(2):  # a new adapter per call, as the registry makes them
        provider = FalImageProvider(client=client, jwks_url=url, user_id=USER_ID)
        provider.verify_webhook(signed_headers(signing_key, body), body)

    assert seen == [url]
