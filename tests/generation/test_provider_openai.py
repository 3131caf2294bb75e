"""Tests for the synchronous OpenAI Images adapter."""

import base64
import json

import httpx
import pytest

from generation.providers.base import LoraSpec, ProviderError
from generation.providers.openai import OpenAIImageProvider
from tests.generation.provider_helpers import fixture_bytes as raw_fixture
from tests.generation.provider_helpers import load_fixture, typical_request

API_KEY = "sk-test-key"
URL = "https://api.openai.com/v1/images/generations"


def fixture(name):
    return load_fixture("openai", name)


def fixture_bytes(name):
    return raw_fixture("openai", name)


def make_request(**changes):
    defaults = {
        "model": "gpt-image-1",
        "height": 1536,
        "loras": (LoraSpec(path="acme/brand-lora", scale=0.8),),
        "params": {"quality": "high", "output_format": "png", "background": "opaque"},
    }
    return typical_request(**{**defaults, **changes})


def provider_with(handler, **options):
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAIImageProvider(client=client, **{"api_key": API_KEY, **options})


def reply(status_code, name, **kwargs):
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return httpx.Response(status_code, content=fixture_bytes(name), headers=headers, **kwargs)


def test_generate_posts_the_request_with_bearer_auth_and_returns_the_decoded_image():
    seen = []

    def handler(request):
        seen.append(request)
        assert request.method == "POST"
        assert str(request.url) == URL
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert json.loads(request.content) == fixture("generations_request")
        return reply(200, "generations_b64", headers={"x-request-id": "req_5c1e2b"})

    result = provider_with(handler).generate(make_request())

    expected = base64.b64decode(fixture("generations_b64")["data"][0]["b64_json"])
    assert result.image_bytes == expected
    assert (result.content_type, result.width, result.height) == ("image/png", 64, 48)
    assert (result.provider, result.model, result.request_id) == (
        "openai",
        "gpt-image-1",
        "req_5c1e2b",
    )
    assert result.sent["body"] == json.loads(seen[0].content)
    assert result.sent["url"] == URL
    assert API_KEY not in json.dumps(result.sent)


def test_generate_records_what_the_api_cannot_take_as_not_sent():
    result = provider_with(lambda request: reply(200, "generations_b64")).generate(make_request())

    assert result.sent["not_sent"] == {
        "seed": 42,
        "negative_prompt": "text, watermark",
        "loras": [{"path": "acme/brand-lora", "scale": 0.8}],
        "palette": ["#E63946", "#1D3557"],
    }
    body = result.sent["body"]
    assert "seed" not in body
    assert "negative_prompt" not in body
    assert "response_format" not in body  # GPT image models reject it


def test_dall_e_models_ask_for_b64_json():
    def handler(request):
        body = json.loads(request.content)
        assert body["response_format"] == "b64_json"
        assert body["model"] == "dall-e-3"
        assert body["size"] == "1024x1792"
        assert body["style"] == "natural"
        return reply(200, "generations_dalle_b64")

    request = make_request(model="dall-e-3", width=1024, height=1792, params={"style": "natural"})
    result = provider_with(handler).generate(request)

    assert result.model == "dall-e-3"
    assert result.sent["body"]["response_format"] == "b64_json"


def test_params_may_not_replace_derived_fields_or_ask_for_a_stream():
    def handler(request):
        body = json.loads(request.content)
        assert (body["n"], body["size"], body["prompt"]) == (
            1,
            "1024x1536",
            "a ceramic mug on an oak desk, brand colours",
        )
        assert "stream" not in body
        assert "response_format" not in body
        assert "quality" not in body  # None removes a key
        return reply(200, "generations_b64")

    params = {"n": 4, "size": "auto", "response_format": "url", "stream": True, "quality": None}
    result = provider_with(handler).generate(make_request(params=params))

    assert result.sent["not_sent"]["params"] == {
        "n": 4,
        "size": "auto",
        "response_format": "url",
        "stream": True,
    }


def test_a_url_answer_is_refused_rather_than_downloaded():
    requests = []

    def handler(request):
        requests.append(str(request.url))
        return reply(200, "generations_url")

    with pytest.raises(ProviderError, match="URL answers are not supported") as caught:
        provider_with(handler).generate(make_request(model="dall-e-2", width=512, height=512))

    assert not caught.value.retryable
    assert requests == [URL]  # the image URL was never fetched


def test_a_url_response_format_option_is_refused_before_sending():
    provider = provider_with(
        lambda request: pytest.fail("nothing may be sent"), response_format="url"
    )

    with pytest.raises(ProviderError, match="response_format") as caught:
        provider.generate(make_request(model="dall-e-3"))

    assert (caught.value.retryable, caught.value.reached) == (False, False)


def test_the_call_gets_a_long_read_timeout_for_slow_renders():
    def handler(request):
        timeout = request.extensions["timeout"]
        assert timeout["read"] == 240.0
        assert timeout["connect"] == 5.0
        return reply(200, "generations_b64")

    client = httpx.Client(
        transport=httpx.MockTransport(handler), timeout=httpx.Timeout(30.0, connect=5.0)
    )
    OpenAIImageProvider(client=client, api_key=API_KEY, read_timeout=240).generate(make_request())


@pytest.mark.parametrize(
    ("status_code", "name", "message"),
    [
        (400, "error_400", "rejected as a result of our safety system"),
        (400, "error_invalid_size", "Supported values are"),
        (429, "error_429_quota", "exceeded your current quota"),
    ],
    ids=["content_policy_case", "invalid_size_case", "quota_case"],
)
def test_errors_that_will_not_pass_are_not_retryable(status_code, name, message):
    provider = provider_with(lambda request: reply(status_code, name))

    with pytest.raises(ProviderError, match=message) as caught:
        provider.generate(make_request())

    assert not caught.value.retryable
    assert caught.value.status_code == status_code


def test_a_rate_limit_is_retryable_with_retry_after_and_not_reached():
    provider = provider_with(
        lambda request: reply(429, "error_429_rate", headers={"retry-after": "7"})
    )

    with pytest.raises(ProviderError, match="Rate limit reached") as caught:
        provider.generate(make_request())

    assert (caught.value.retryable, caught.value.retry_after, caught.value.reached) == (
        True,
        7.0,
        False,
    )


@pytest.mark.parametrize(
    ("answer", "retry_after", "reached"),
    [
        (httpx.Response(500, json={"error": {"message": "server error"}}), None, True),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), None, False),
        (httpx.Response(503, headers={"Retry-After": "-3"}), 0.0, False),
        (httpx.Response(504, headers={"Retry-After": "soon"}), None, True),
    ],
    ids=["500_case", "502_html_case", "negative_retry_after_case", "unreadable_retry_after_case"],
)
def test_server_errors_are_retryable(answer, retry_after, reached):
    """A 502/503 refused the request; after a 500/504 the upstream may have acted on it."""
    with pytest.raises(ProviderError) as caught:
        provider_with(lambda request: answer).generate(make_request())

    assert caught.value.retryable
    assert caught.value.reached is reached
    assert caught.value.retry_after == retry_after


def test_a_connect_error_is_not_reached_and_a_read_timeout_may_have_been():
    def refused(request):
        raise httpx.ConnectError("refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ProviderError) as not_reached:
        provider_with(refused).generate(make_request())
    with pytest.raises(ProviderError) as maybe_reached:
        provider_with(slow).generate(make_request())

    assert (not_reached.value.retryable, not_reached.value.reached) == (True, False)
    assert (maybe_reached.value.retryable, maybe_reached.value.reached) == (True, True)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, text="{not json"), "not a JSON object"),
        (httpx.Response(200, json={"data": []}), "no data"),
        (httpx.Response(200, json={"data": [{"b64_json": "@@@"}]}), "not base64"),
        (
            httpx.Response(
                200, json={"data": [{"b64_json": base64.b64encode(b"GIF89a...").decode()}]}
            ),
            "unusable",
        ),
    ],
    ids=["malformed_json_case", "empty_data_case", "bad_base64_case", "not_an_image_case"],
)
def test_a_malformed_answer_is_a_retryable_error(answer, message):
    with pytest.raises(ProviderError, match=message) as caught:
        provider_with(lambda request: answer).generate(make_request())

    assert caught.value.retryable


def test_a_missing_api_key_is_a_configuration_error():
    provider = OpenAIImageProvider(client=httpx.Client(transport=httpx.MockTransport(None)))

    with pytest.raises(ProviderError, match="api_key") as caught:
        provider.generate(make_request())

    assert not caught.value.retryable
