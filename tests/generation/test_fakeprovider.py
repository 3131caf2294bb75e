"""Tests for the fake provider server: fal, Replicate and OpenAI protocols, webhooks, faults."""

import base64
import hashlib
import io
import json
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from PIL import Image
from standardwebhooks import Webhook, WebhookVerificationError

from generation.fakeprovider import FakeConfig, FakeProvider
from generation.fakeprovider.config import ConfigError

FAL_AUTH = {"Authorization": "Key test-key"}
BEARER = {"Authorization": "Bearer test-token"}
SMALL = {"width": 96, "height": 64}


class Receiver:
    """A webhook endpoint on loopback that records raw deliveries and answers scripted codes."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.answers: deque[int] = deque()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.answers.popleft() if receiver.answers else 200
                    receiver._changed.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.calls) < count and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return list(self.calls)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    with FakeProvider(FakeConfig(latency=0.2, seed=7, webhook_backoff=0.05)) as provider:
        yield provider


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as http:
        yield http


@pytest.fixture
def receiver():
    hook = Receiver()
    yield hook
    hook.close()


def fal_submit(client, fake, path="fal-ai/flux/dev", webhook=None, **body):
    payload = {"prompt": "a ceramic mug", "image_size": SMALL, "output_format": "png", **body}
    params = {"fal_webhook": webhook} if webhook else None
    return client.post(f"{fake.fal_url}/{path}", json=payload, params=params, headers=FAL_AUTH)


def wait_until(check, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def fal_status(client, status_url):
    return client.get(status_url, headers=FAL_AUTH).json()["status"]


def decode(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def verify_fal(jwks: dict, headers: dict[str, str], body: bytes) -> bool:
    """The documented fal check: Ed25519 over rid, uid, ts and sha256(body), keys from JWKS."""
    message = "\n".join(
        [
            headers["x-fal-webhook-request-id"],
            headers["x-fal-webhook-user-id"],
            headers["x-fal-webhook-timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    signature = bytes.fromhex(headers["x-fal-webhook-signature"])
    for jwk in jwks["keys"]:
        x = jwk["x"]
        key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


# -- fal -------------------------------------------------------------------------------------


def test_fal_submit_returns_queue_urls_without_the_model_subpath(fake, client):
    response = fal_submit(client, fake)

    assert response.status_code == 200
    answer = response.json()
    request_id = answer["request_id"]
    base = f"{fake.base_url}/fal/fal-ai/flux/requests/{request_id}"
    assert answer["response_url"] == base
    assert answer["status_url"] == f"{base}/status"
    assert answer["cancel_url"] == f"{base}/cancel"
    assert answer["gateway_request_id"] == request_id
    assert answer["status"] == "IN_QUEUE"
    assert answer["queue_position"] == 0


def test_fal_status_completes_after_latency_and_result_serves_a_png(fake, client):
    answer = fal_submit(client, fake, seed=2**60 + 3).json()

    first = client.get(answer["status_url"], headers=FAL_AUTH)
    assert first.status_code == 202
    assert first.json()["status"] in ("IN_QUEUE", "IN_PROGRESS")
    assert client.get(answer["response_url"], headers=FAL_AUTH).status_code == 400
    assert wait_until(lambda: fal_status(client, answer["status_url"]) == "COMPLETED")

    done = client.get(answer["status_url"], params={"logs": 1}, headers=FAL_AUTH)
    assert done.status_code == 200
    assert done.json()["error"] is None and done.json()["metrics"]["inference_time"] >= 0.2
    assert done.json()["logs"][0]["message"]
    result = client.get(answer["response_url"], headers=FAL_AUTH).json()
    assert result["seed"] == 2**60 + 3
    assert result["has_nsfw_concepts"] == [False]
    image = result["images"][0]
    assert (image["width"], image["height"], image["content_type"]) == (96, 64, "image/png")
    download = client.get(image["url"])
    assert download.status_code == 200 and len(download.content) == image["file_size"]
    picture = decode(download.content)
    assert (picture.format, picture.size) == ("PNG", (96, 64))


def test_fal_polling_with_the_subpath_gets_404_or_405(fake, client):
    answer = fal_submit(client, fake).json()
    with_subpath = f"{fake.fal_url}/fal-ai/flux/dev/requests/{answer['request_id']}"

    assert client.get(f"{with_subpath}/status", headers=FAL_AUTH).status_code in (404, 405)
    assert client.get(with_subpath, headers=FAL_AUTH).status_code in (404, 405)
    assert client.put(f"{with_subpath}/cancel", headers=FAL_AUTH).status_code in (404, 405)


def test_fal_rejects_other_auth_schemes_with_401(fake, client):
    response = client.post(f"{fake.fal_url}/fal-ai/flux/dev", json={"prompt": "x"}, headers=BEARER)

    assert response.status_code == 401
    assert "detail" in response.json()


def test_fal_cancel_semantics(fake, client):
    fake.configure(latency=5)
    answer = fal_submit(client, fake).json()

    cancel = client.put(answer["cancel_url"], headers=FAL_AUTH)
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    status = client.get(answer["status_url"], headers=FAL_AUTH).json()
    assert status["status"] == "COMPLETED" and status["error"]
    again = client.put(answer["cancel_url"], headers=FAL_AUTH)
    assert (again.status_code, again.json()) == (200, {"status": "ALREADY_COMPLETED"})
    unknown = answer["cancel_url"].replace(answer["request_id"], "no-such-request")
    missing = client.put(unknown, headers=FAL_AUTH)
    assert (missing.status_code, missing.json()) == (404, {"status": "NOT_FOUND"})


def test_fal_failed_job_completes_with_an_error_and_the_result_is_an_http_error(fake, client):
    fake.push_script({"match": "fal.submit", "fault": "fail_job"})
    failed = fal_submit(client, fake).json()
    invalid = client.post(
        f"{fake.fal_url}/fal-ai/flux/dev", json={"image_size": "square"}, headers=FAL_AUTH
    ).json()
    assert wait_until(lambda: fal_status(client, failed["status_url"]) == "COMPLETED")
    assert wait_until(lambda: fal_status(client, invalid["status_url"]) == "COMPLETED")

    status = client.get(failed["status_url"], headers=FAL_AUTH).json()
    assert status["error_type"] == "runner_disconnected"
    result = client.get(failed["response_url"], headers=FAL_AUTH)
    assert result.status_code == 503 and result.headers["x-fal-error-type"] == "runner_disconnected"
    validation = client.get(invalid["response_url"], headers=FAL_AUTH)
    assert validation.status_code == 422
    assert validation.json()["detail"][0]["loc"] == ["body", "prompt"]


def test_fal_webhook_is_signed_with_ed25519_over_the_raw_body(fake, client, receiver):
    answer = fal_submit(client, fake, webhook=receiver.url).json()
    [(headers, body)] = receiver.wait_for(1)
    jwks = client.get(fake.jwks_url).json()

    assert jwks["keys"][0]["kty"] == "OKP" and "=" not in jwks["keys"][0]["x"]
    delivery = json.loads(body)
    assert delivery["request_id"] == answer["request_id"] == headers["x-fal-webhook-request-id"]
    assert delivery["status"] == "OK"
    assert delivery["payload"]["images"][0]["width"] == 96
    assert headers["x-fal-webhook-user-id"] == fake.fal_user_id
    assert abs(int(headers["x-fal-webhook-timestamp"]) - time.time()) < 10
    assert verify_fal(jwks, headers, body)
    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 0x01
    assert not verify_fal(jwks, headers, bytes(tampered))
    assert not verify_fal(jwks, {**headers, "x-fal-webhook-user-id": "someone-else"}, body)


def test_fal_webhook_error_and_payload_error_variants(fake, client, receiver):
    fake.push_script(
        {"match": "fal.submit", "fault": "fail_job"},
        {"match": "fal.submit", "fault": "payload_error"},
    )
    fal_submit(client, fake, webhook=receiver.url)
    fal_submit(client, fake, webhook=receiver.url)
    deliveries = {json.loads(body)["status"]: json.loads(body) for _, body in receiver.wait_for(2)}

    assert deliveries["ERROR"]["error"] == "Invalid status code: 503"
    assert deliveries["ERROR"]["payload"]["detail"] == "Runner disconnected"
    assert deliveries["OK"]["payload"] is None and deliveries["OK"]["payload_error"]


def test_fal_webhook_delivery_is_retried_after_a_failure(fake, client, receiver):
    receiver.answers.extend([500, 503])
    fal_submit(client, fake, webhook=receiver.url)
    calls = receiver.wait_for(3)

    assert len(calls) == 3
    assert len({json.loads(body)["request_id"] for _, body in calls}) == 1
    assert wait_until(lambda: fake.stats(log=False)["webhooks"]["succeeded"] == 1)


# -- Replicate -------------------------------------------------------------------------------


def wait_prediction(client, url, statuses=("succeeded", "failed", "canceled", "aborted")):
    return wait_until(
        lambda: (p := client.get(url, headers=BEARER).json())["status"] in statuses and p
    )


def test_replicate_create_by_version_and_by_model_reach_succeeded(fake, client):
    version = "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    by_version = client.post(
        f"{fake.replicate_url}/predictions",
        json={"version": version, "input": {"prompt": "a mug", **SMALL}},
        headers=BEARER,
    )
    by_model = client.post(
        f"{fake.replicate_url}/models/black-forest-labs/flux-schnell/predictions",
        json={"input": {"prompt": "a mug", "aspect_ratio": "3:2", "num_outputs": 2}},
        headers=BEARER,
    )

    for response in (by_version, by_model):
        assert response.status_code == 201
        created = response.json()
        assert len(created["id"]) == 26 and created["id"].isalnum() and created["id"].islower()
        assert created["status"] == "starting" and created["output"] is None
        assert created["logs"] == "" and created["error"] is None
        assert created["data_removed"] is False
        assert set(created["urls"]) == {"get", "cancel", "stream"}
    assert by_version.json()["version"] == version
    assert by_model.json()["model"] == "black-forest-labs/flux-schnell"
    done = wait_prediction(client, by_model.json()["urls"]["get"])
    assert done["status"] == "succeeded" and done["metrics"]["predict_time"] >= 0.2
    assert done["completed_at"].endswith("Z") and len(done["output"]) == 2
    assert decode(client.get(done["output"][0]).content).size == (1024, 683)


def test_replicate_data_uri_output_mode(fake, client):
    fake.configure(replicate_output="data_uri", latency=0.05)
    created = client.post(
        f"{fake.replicate_url}/models/owner/model/predictions",
        json={"input": {"prompt": "x", **SMALL}},
        headers=BEARER,
    ).json()
    done = wait_prediction(client, created["urls"]["get"])

    assert done["output"].startswith("data:image/png;base64,")
    image = decode(base64.b64decode(done["output"].split(",", 1)[1]))
    assert image.size == (96, 64)


def test_replicate_validation_errors_are_422_problem_details(fake, client):
    response = client.post(
        f"{fake.replicate_url}/predictions", json={"input": {"prompt": "x"}}, headers=BEARER
    )
    no_prompt = client.post(
        f"{fake.replicate_url}/models/o/m/predictions", json={"input": {}}, headers=BEARER
    )

    assert response.status_code == 422 and response.json()["status"] == 422
    assert no_prompt.status_code == 422 and "prompt" in no_prompt.json()["detail"]


def replicate_create(client, fake, receiver, **extra):
    body = {"input": {"prompt": "x", **SMALL}, "webhook": receiver.url, **extra}
    return client.post(
        f"{fake.replicate_url}/models/owner/model/predictions", json=body, headers=BEARER
    ).json()


def test_replicate_completed_filter_sends_one_verifiable_webhook(fake, client, receiver):
    secret = client.get(f"{fake.replicate_url}/webhooks/default/secret", headers=BEARER).json()
    created = replicate_create(client, fake, receiver, webhook_events_filter=["completed"])
    receiver.wait_for(1)
    time.sleep(0.3)

    assert secret["key"] == fake.replicate_secret and secret["key"].startswith("whsec_")
    [(headers, body)] = receiver.calls
    payload = Webhook(secret["key"]).verify(body, headers)
    assert payload["id"] == created["id"] and payload["status"] == "succeeded"
    assert payload["output"][0].startswith(fake.base_url)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret["key"]).verify(body.replace(b"succeeded", b"succeedeD"), headers)


def test_replicate_webhooks_without_filter_send_start_and_completed(fake, client, receiver):
    created = replicate_create(client, fake, receiver)
    calls = receiver.wait_for(2)
    time.sleep(0.2)

    assert len(receiver.calls) == 2
    statuses = [
        Webhook(fake.replicate_secret).verify(body, headers)["status"] for headers, body in calls
    ]
    assert statuses == ["starting", "succeeded"]
    assert len({headers["webhook-id"] for headers, _ in calls}) == 2
    assert all(json.loads(body)["id"] == created["id"] for _, body in calls)


def test_replicate_webhook_id_is_stable_across_a_retry(fake, client, receiver):
    receiver.answers.append(500)
    replicate_create(client, fake, receiver, webhook_events_filter=["completed"])
    calls = receiver.wait_for(2)

    assert len(calls) == 2
    (first, first_body), (second, second_body) = calls
    assert first["webhook-id"] == second["webhook-id"]
    assert first_body == second_body
    Webhook(fake.replicate_secret).verify(second_body, second)


def test_replicate_cancel_and_cancel_after(fake, client):
    fake.configure(latency=5, queue_delay=0.5)
    url = f"{fake.replicate_url}/models/o/m/predictions"
    running = client.post(url, json={"input": {"prompt": "x"}}, headers=BEARER).json()
    deadline = client.post(
        url, json={"input": {"prompt": "x"}}, headers={**BEARER, "Cancel-After": "200ms"}
    ).json()

    cancelled = client.post(running["urls"]["cancel"], headers=BEARER)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"
    assert wait_prediction(client, deadline["urls"]["get"])["status"] == "aborted"
    missing = client.get(f"{fake.replicate_url}/predictions/doesnotexist", headers=BEARER)
    assert missing.status_code == 404


# -- OpenAI ----------------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_openai_images_decode_at_the_requested_size(fake, client, response_format):
    response = client.post(
        f"{fake.openai_url}/images/generations",
        json={
            "model": "dall-e-2",
            "prompt": "a mug",
            "n": 2,
            "size": "80x48",
            "response_format": response_format,
        },
        headers=BEARER,
    )

    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data) == 2 and isinstance(response.json()["created"], int)
    if response_format == "b64_json":
        content = base64.b64decode(data[0]["b64_json"])
    else:
        content = client.get(data[0]["url"]).content
    assert decode(content).size == (80, 48)


def test_openai_rejects_a_missing_prompt_in_its_error_envelope(fake, client):
    response = client.post(f"{fake.openai_url}/images/generations", json={}, headers=BEARER)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


# -- faults, control and stats ---------------------------------------------------------------


def test_scripted_429_carries_retry_after_and_requests_are_logged(fake, client):
    fake.push_script({"match": "submit", "status": 429, "retry_after": 2})

    throttled = fal_submit(client, fake)
    accepted = fal_submit(client, fake)

    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
    assert accepted.status_code == 200
    log = fake.requests("fal.submit")
    assert [entry["status"] for entry in log] == [429, 200]
    assert log[0]["fault"] == "status_429" and log[0]["mono"] <= log[1]["mono"]
    assert fake.stats(log=False)["statuses"]["fal.submit"] == {"429": 1, "200": 1}


def test_replicate_throttle_body_matches_the_real_wording(fake, client):
    fake.push_script({"match": "replicate.submit", "fault": "rate_limit", "retry_after": 7})
    response = client.post(
        f"{fake.replicate_url}/models/o/m/predictions",
        json={"input": {"prompt": "x"}},
        headers=BEARER,
    )

    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json() == {"detail": "Request was throttled. Your rate limit resets in ~7s."}


def test_down_answers_every_request_with_503(fake, client):
    fake.configure(down=True)

    assert fal_submit(client, fake).status_code == 503
    assert client.get(f"{fake.replicate_url}/predictions/x", headers=BEARER).status_code == 503
    assert client.get(fake.jwks_url).status_code == 503
    fake.configure(down=False)
    assert fal_submit(client, fake).status_code == 200


def test_malformed_answer_is_invalid_json_with_status_200(fake, client):
    fake.push_script({"match": "fal.submit", "fault": "malformed"})
    response = fal_submit(client, fake)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_hang_holds_the_request_after_accepting_it(fake, client):
    fake.configure(hang_seconds=2)
    fake.push_script({"match": "fal.submit", "fault": "hang"})

    with pytest.raises(httpx.ReadTimeout):
        fal_submit(httpx.Client(timeout=0.3), fake)
    assert fake.stats(log=False)["submits"]["total"] == 1


def test_file_faults_truncated_image_and_redirect(fake, client):
    fake.configure(latency=0.05)
    answer = fal_submit(client, fake).json()
    assert wait_until(lambda: fal_status(client, answer["status_url"]) == "COMPLETED")
    url = client.get(answer["response_url"], headers=FAL_AUTH).json()["images"][0]["url"]
    fake.push_script(
        {"match": "file", "fault": "truncated_image"},
        {"match": "file", "fault": "redirect"},
    )

    cut = client.get(url)
    assert cut.status_code == 200 and cut.content.startswith(b"\x89PNG")
    with pytest.raises(OSError):
        decode(cut.content)
    redirect = client.get(url)
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "http://169.254.169.254/latest/meta-data/"
    assert decode(client.get(url).content).size == (96, 64)


def test_control_endpoints_configure_script_stats_and_reset(fake, client):
    control = f"{fake.base_url}/_control"
    assert client.post(f"{control}/config", json={"latency": 0.05}).json()["latency"] == 0.05
    assert client.post(f"{control}/config", json={"nope": 1}).status_code == 400
    client.post(f"{control}/script", json=[{"match": "status", "status": 500}])
    answer = fal_submit(client, fake).json()
    fal_submit(client, fake)

    assert client.get(answer["status_url"], headers=FAL_AUTH).status_code == 500
    stats = client.get(f"{control}/stats").json()
    assert stats["requests"]["fal.submit"] == 2
    assert stats["submits"]["duplicates"] == 1
    assert stats["jobs"]["fal"]
    client.post(f"{control}/reset")
    assert client.get(f"{control}/stats").json()["requests"] == {}
    assert client.get(answer["status_url"], headers=FAL_AUTH).status_code == 404


def test_config_rejects_unknown_faults():
    with pytest.raises(ConfigError):
        FakeConfig().updated({"faults": {"gremlins": 0.5}})


def test_images_are_deterministic_in_seed_and_prompt(fake, client):
    fake.configure(latency=0.0)
    urls = []
    for seed in (1, 1, 2):
        answer = fal_submit(client, fake, seed=seed).json()
        result = client.get(answer["response_url"], headers=FAL_AUTH).json()
        urls.append(result["images"][0]["url"])
    first, again, other = (client.get(url).content for url in urls)

    assert first == again != other


def test_500_fal_submits_complete_without_a_thread_per_job(fake, client):
    fake.configure(latency=0.5)
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    started = time.monotonic()
    with httpx.Client(limits=limits, timeout=10) as pool, ThreadPoolExecutor(16) as workers:
        answers = list(workers.map(lambda _: fal_submit(pool, fake).json(), range(500)))
        submitted = time.monotonic()
        threads_in_flight = threading.active_count()
        pending = {answer["status_url"] for answer in answers}
        while pending and time.monotonic() - started < 15:
            done = workers.map(lambda url: (url, fal_status(pool, url)), sorted(pending))
            pending -= {url for url, status in done if status == "COMPLETED"}
            time.sleep(0.1)
    elapsed = time.monotonic() - started

    assert not pending
    assert threads_in_flight < 100
    assert elapsed < 10, f"submits took {submitted - started:.2f}s, all done after {elapsed:.2f}s"
    assert fake.stats(log=False)["jobs"]["fal"] == {"done": 500}


def test_download_hardening_file_faults(fake, client):
    fake.configure(
        latency=0.0,
        huge_bytes=1 << 20,
        bomb_bytes=8 << 20,
        mismatch_bytes=1 << 20,
        bomb_image_side=3000,
        drip_rate=40_000,
    )
    answer = fal_submit(client, fake).json()
    url = client.get(answer["response_url"], headers=FAL_AUTH).json()["images"][0]["url"]
    for name in ("huge_stream", "gzip_bomb", "length_mismatch", "huge_image", "redirect_loop"):
        fake.push_script({"match": "file", "fault": name})

    with client.stream("GET", url) as stream:
        assert "content-length" not in stream.headers
        assert sum(len(chunk) for chunk in stream.iter_raw()) == 1 << 20
    bomb = client.get(url)
    assert bomb.headers["content-encoding"] == "gzip" and len(bomb.content) == 8 << 20
    with client.stream("GET", url) as stream:
        assert stream.headers["content-length"] == "100"
    assert Image.open(io.BytesIO(client.get(url).content)).size == (3000, 3000)
    hop = client.get(url)
    assert hop.status_code == 302 and hop.headers["location"].endswith("/files/_loop/1")
    assert client.get(hop.headers["location"]).headers["location"].endswith("/files/_loop/2")
    fake.push_script({"match": "file", "fault": "slow_drip"})
    started = time.monotonic()
    dripped = client.get(url)
    assert time.monotonic() - started > 0.1
    assert decode(dripped.content).size == (96, 64)


def test_concurrency_limit_queues_jobs_in_order(fake, client):
    fake.configure(latency=0.3, concurrency=1)
    answers = [fal_submit(client, fake).json() for _ in range(3)]

    assert [answer["queue_position"] for answer in answers] == [0, 0, 1]
    last = client.get(answers[2]["status_url"], headers=FAL_AUTH).json()
    assert last == {"status": "IN_QUEUE", "queue_position": 1, "response_url": ANY_URL}
    assert wait_until(lambda: fal_status(client, answers[2]["status_url"]) == "COMPLETED")


class _AnyUrl:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith("http://127.0.0.1:")


ANY_URL = _AnyUrl()


def test_replicate_prefer_wait_answers_with_the_finished_prediction(fake, client):
    fake.configure(latency=0.1)
    response = client.post(
        f"{fake.replicate_url}/models/o/m/predictions",
        json={"input": {"prompt": "x", **SMALL}},
        headers={**BEARER, "Prefer": "wait=5"},
    )

    assert response.status_code == 201 and response.headers["preference-applied"] == "wait"
    assert response.json()["status"] == "succeeded"


def test_drop_stall_and_duplicate_webhook_faults(fake, client, receiver):
    fake.push_script(
        {"match": "fal.submit", "fault": "drop"},
        {"match": "fal.submit", "fault": "stall"},
        {"match": "fal.submit", "fault": "webhook_duplicate"},
    )

    with pytest.raises(httpx.RemoteProtocolError):
        fal_submit(client, fake)
    stalled = fal_submit(client, fake).json()
    fal_submit(client, fake, webhook=receiver.url)
    calls = receiver.wait_for(2)

    assert len(calls) == 2 and calls[0][1] == calls[1][1]
    assert fal_status(client, stalled["status_url"]) == "IN_PROGRESS"


def test_control_sign_forges_verifiable_variants(fake, client):
    jwks = fake.jwks()
    body = '{"request_id": "r1"}'
    stale = int(time.time()) - 301
    answer = client.post(
        f"{fake.base_url}/_control/sign",
        json={"provider": "fal", "body": body, "id": "r1", "timestamp": stale},
    ).json()["headers"]
    replicate = client.post(
        f"{fake.base_url}/_control/sign",
        json={"provider": "replicate", "body": body, "id": "msg_1"},
    ).json()["headers"]

    lowered = {key.lower(): value for key, value in answer.items()}
    assert lowered["x-fal-webhook-timestamp"] == str(stale)
    assert verify_fal(jwks, lowered, body.encode())
    assert Webhook(fake.replicate_secret).verify(body, replicate) == {"request_id": "r1"}


def test_seeded_keys_are_reproducible():
    first, second = FakeProvider(FakeConfig(seed=5)), FakeProvider(FakeConfig(seed=5))

    assert first.jwks() == second.jwks()
    assert first.replicate_secret == second.replicate_secret
    assert FakeProvider(FakeConfig(seed=6)).jwks() != first.jwks()


def test_management_command_serves_until_terminated():
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
        [
            sys.executable,
            str(manage),
            "fakeprovider",
            "--port",
            "0",
            "--latency",
            "2",
            "--error-rate",
            "0.05",
            "--fault",
            "fail_job=0.1",
            "--auth-key",
            "k1",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        base = first.rsplit(" ", 1)[1].strip()
        config = httpx.get(f"{base}/_control/config", timeout=5).json()
        assert config["latency"] == 2 and config["auth_keys"] == ["k1"]
        assert config["faults"] == {"fail_job": 0.1} and config["error_rate"] == 0.05
        assert httpx.get(f"{base}/fal/.well-known/jwks.json", timeout=5).status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
