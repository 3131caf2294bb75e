"""Tests for the procedural local provider and the provider registry."""

import dataclasses
import itertools
import time
from decimal import Decimal
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from brandforge.images import sha256_hex
from generation.providers.base import (
    GenerationRequest,
    GenerationResult,
    ImageProvider,
    LoraSpec,
    ProviderError,
)
from generation.providers.local import LocalImageProvider
from generation.providers.registry import UnknownProviderError, get_provider, provider_names

PALETTE = ("#E63946", "#1D3557", "#f1faee", "#A8DADC")
UNRELATED = ("#2A9D8F", "#E9C46A", "#6A4C93")


def make_request(**changes):
    request = GenerationRequest(
        prompt="a ceramic mug on a desk",
        negative_prompt="text, watermark",
        width=256,
        height=192,
        seed=42,
        model="procedural-v1",
        palette=PALETTE,
    )
    return dataclasses.replace(request, **changes)


def pixels(result):
    return np.asarray(Image.open(BytesIO(result.image_bytes)).convert("RGB"), dtype=np.float64)


def rgb(palette):
    return np.array([list(bytes.fromhex(colour.lstrip("#"))) for colour in palette], float)


def distance_to_mixes(colours, palette):
    """Distance from each colour to the nearest blend of two palette colours."""
    best = np.full(len(colours), np.inf)
    for start, end in itertools.combinations_with_replacement(rgb(palette), 2):
        span = end - start
        length = float(span @ span)
        t = np.clip((colours - start) @ span / length, 0, 1) if length else 0.0
        nearest = start + np.multiply.outer(t, span) if length else start
        best = np.minimum(best, np.linalg.norm(colours - nearest, axis=-1))
    return best


def test_the_same_request_gives_identical_bytes():
    first = LocalImageProvider().generate(make_request())
    second = LocalImageProvider().generate(make_request())
    assert first.image_bytes == second.image_bytes
    assert sha256_hex(first.image_bytes) == sha256_hex(second.image_bytes)


def test_a_different_seed_gives_a_substantially_different_image():
    first = pixels(LocalImageProvider().generate(make_request(seed=1)))
    second = pixels(LocalImageProvider().generate(make_request(seed=2)))
    changed = np.abs(first - second).max(axis=-1) > 24
    assert changed.mean() > 0.3


def test_a_different_prompt_gives_a_different_image():
    first = pixels(LocalImageProvider().generate(make_request(prompt="a mug")))
    second = pixels(LocalImageProvider().generate(make_request(prompt="a teapot")))
    assert (np.abs(first - second).max(axis=-1) > 24).mean() > 0.3


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_palette_colours_dominate(seed):
    image = pixels(LocalImageProvider().generate(make_request(seed=seed)))
    colours = image.reshape(-1, 3)
    # Everything drawn is a palette colour or a blend of two, give or take the grain.
    assert (distance_to_mixes(colours, PALETTE) < 20).mean() > 0.9
    assert (distance_to_mixes(colours, UNRELATED) < 20).mean() < 0.3
    binned, counts = np.unique(colours // 16, axis=0, return_counts=True)
    most_frequent = binned[np.argmax(counts)] * 16 + 8
    assert np.linalg.norm(rgb(PALETTE) - most_frequent, axis=-1).min() < 40


def test_an_empty_palette_falls_back_to_neutral_colours():
    image = pixels(LocalImageProvider().generate(make_request(palette=())))
    saturation = image.max(axis=-1) - image.min(axis=-1)
    assert np.percentile(saturation, 95) < 40


def test_a_single_colour_palette_renders():
    image = pixels(LocalImageProvider().generate(make_request(palette=("#ff8800",))))
    assert image.std() > 10


@pytest.mark.parametrize("size", [(64, 64), (256, 192), (100, 333), (1024, 64)])
def test_the_requested_size_is_honoured(size):
    result = LocalImageProvider().generate(make_request(width=size[0], height=size[1]))
    image = Image.open(BytesIO(result.image_bytes))
    assert image.format == "PNG" and image.mode == "RGB"
    assert image.size == size == (result.width, result.height)


@pytest.mark.parametrize(
    "changes",
    [{"width": 32}, {"height": 5000}, {"seed": -1}, {"palette": ("red",)}],
    ids=["too-narrow", "too-tall", "negative-seed", "bad-colour"],
)
def test_invalid_requests_raise_a_non_retryable_provider_error(changes):
    with pytest.raises(ProviderError) as caught:
        LocalImageProvider().generate(make_request(**changes))
    assert caught.value.retryable is False


def test_the_result_records_what_was_sent():
    request = make_request(
        loras=(LoraSpec(path="s3://loras/brand.safetensors", scale=0.7, trigger="brandstyle"),),
        params={"steps": 30},
    )
    result = LocalImageProvider().generate(request)
    assert isinstance(result, GenerationResult)
    assert result.sent == {
        "prompt": "a ceramic mug on a desk",
        "negative_prompt": "text, watermark",
        "width": 256,
        "height": 192,
        "seed": 42,
        "model": "procedural-v1",
        "palette": list(PALETTE),
        "loras": [{"path": "s3://loras/brand.safetensors", "scale": 0.7}],
        "params": {"steps": 30},
    }
    assert result.provider == "local" and result.model == "procedural-v1"
    assert result.content_type == "image/png"
    assert result.cost == Decimal("0")


def test_1024_squared_renders_quickly():
    provider = LocalImageProvider()
    request = make_request(width=1024, height=1024)
    provider.generate(request)
    started = time.perf_counter()
    provider.generate(request)
    # The target is well under 300 ms; the slack absorbs slow, shared CI machines.
    assert time.perf_counter() - started < 1.0


def test_the_registry_returns_a_new_local_provider_per_call():
    assert "local" in provider_names()
    provider = get_provider("local")
    assert isinstance(provider, LocalImageProvider) and isinstance(provider, ImageProvider)
    assert provider is not get_provider("local")


def test_an_unknown_provider_name_lists_the_known_ones():
    with pytest.raises(UnknownProviderError) as caught:
        get_provider("midjourney")
    assert isinstance(caught.value, KeyError)
    message = str(caught.value)
    assert "midjourney" in message
    assert all(name in message for name in provider_names())


def test_providers_are_resolved_from_settings(settings):
    settings.BRANDFORGE_PROVIDERS = {
        "local": "generation.providers.local.LocalImageProvider",
        "procedural": "generation.providers.local.LocalImageProvider",
    }
    assert provider_names() == ["local", "procedural"]
    assert isinstance(get_provider("procedural"), LocalImageProvider)


def test_a_bad_provider_path_names_the_setting(settings):
    settings.BRANDFORGE_PROVIDERS = {"broken": "generation.providers.nowhere.Provider"}
    with pytest.raises(ImportError, match=r"BRANDFORGE_PROVIDERS\['broken'\]"):
        get_provider("broken")
