"""Tests for the authenticity looks, and for the same bytes from every new step in a new process."""

import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from generation.pipeline.base import StepContext
from generation.pipeline.registry import get_step

LOOKS = ["film_grain", "color_temperature", "glow", "vignette", "lens_distortion", "sharpen"]
GREY = (128, 128, 128)
ROOT = Path(__file__).resolve().parents[2]


def look(name, image, seed=1, **params):
    step = get_step(name)
    return step.run(image, step.validate_params(params), StepContext(None, (), seed))


def pixels(image):
    return np.asarray(image, dtype=int)


def picture(mode="RGB"):
    return Image.effect_mandelbrot((64, 48), (-2, -1.2, 1, 1.2), 60).convert(mode)


def test_grain_changes_pixels_by_about_amount_around_zero():
    flat = Image.new("RGB", (64, 48), GREY)
    delta = pixels(look("film_grain", flat, amount=0.08, size=1)) - 128
    assert abs(delta.std() / 255 - 0.08) < 0.08 * 0.15
    assert abs(delta.mean()) < 1.5


@pytest.mark.parametrize("size", [1.0, 2.5, 6.0])
def test_grain_amount_means_the_same_at_every_grain_size(size):
    flat = Image.new("RGB", (96, 96), GREY)
    delta = pixels(look("film_grain", flat, amount=0.05, size=size)) - 128
    assert abs(delta.std() / 255 - 0.05) < 0.05 * 0.2


def test_larger_grain_is_coarser():
    flat = Image.new("RGB", (96, 96), GREY)

    def neighbour_correlation(size):
        delta = pixels(look("film_grain", flat, amount=0.05, size=size))[..., 0] - 128.0
        return np.corrcoef(delta[:, :-1].ravel(), delta[:, 1:].ravel())[0, 1]

    assert neighbour_correlation(1.0) < 0.2
    assert neighbour_correlation(4.0) > 0.7


def test_grain_is_the_same_for_the_same_seed_and_differs_for_another():
    image = picture()
    first = look("film_grain", image, seed=7).tobytes()
    assert look("film_grain", image, seed=7).tobytes() == first
    assert look("film_grain", image, seed=8).tobytes() != first
    assert look("film_grain", image, seed=7, seed_offset=1).tobytes() != first
    # Negative seeds are valid seeds too, and distinct from their positive counterpart.
    assert look("film_grain", image, seed=-7).tobytes() != first


def test_monochrome_grain_moves_all_channels_together_and_colour_grain_does_not():
    flat = Image.new("RGB", (64, 48), GREY)
    mono = pixels(look("film_grain", flat, amount=0.06, monochrome=True))
    assert np.array_equal(mono[..., 0], mono[..., 1]) and np.array_equal(mono[..., 1], mono[..., 2])
    colour = pixels(look("film_grain", flat, amount=0.06, monochrome=False))
    assert np.mean(colour[..., 0] != colour[..., 2]) > 0.5


def test_warm_shift_raises_red_over_blue_and_keeps_brightness():
    flat = Image.new("RGB", (8, 8), GREY)
    warm = pixels(look("color_temperature", flat, shift=0.8))[0, 0]
    cool = pixels(look("color_temperature", flat, shift=-0.8))[0, 0]
    assert warm[0] > 128 > warm[2]
    assert cool[2] > 128 > cool[0]
    for red, green, blue in (warm, cool):
        assert abs(0.299 * red + 0.587 * green + 0.114 * blue - 128) <= 4
    neutral = look("color_temperature", picture(), shift=0.0)
    assert np.array_equal(pixels(neutral), pixels(picture()))


def test_glow_brightens_around_highlights_only():
    image = Image.new("RGB", (64, 64), (40, 40, 40))
    image.paste((255, 255, 255), (28, 28, 36, 36))
    out = pixels(look("glow", image, radius=0.05, strength=0.8, threshold=0.5))
    assert out[32, 38, 0] > 60  # next to the highlight: lit
    assert np.array_equal(out[:8, :8], pixels(image)[:8, :8])  # far away: untouched
    assert np.array_equal(out[30:34, 30:34], pixels(image)[30:34, 30:34])  # white stays white


def test_glow_leaves_an_image_without_highlights_alone():
    dim = Image.new("RGB", (64, 48), (100, 120, 90))
    assert np.array_equal(pixels(look("glow", dim, threshold=0.6)), pixels(dim))


def test_vignette_darkens_corners_more_than_edges_and_leaves_the_centre():
    flat = Image.new("RGB", (65, 49), (200, 180, 160))
    out = pixels(look("vignette", flat, strength=0.6, radius=0.3, feather=0.6))[..., 0]
    assert out[24, 32] == 200
    corners = [out[0, 0], out[0, 64], out[48, 0], out[48, 64]]
    edges = [out[0, 32], out[24, 0], out[24, 64], out[48, 32]]
    assert max(corners) < min(edges) < 200
    assert max(corners) < 200 * (1 - 0.6 * 0.8)
    diagonal = [out[i * 24 // 32, i] for i in range(33)]
    assert all(a <= b for a, b in itertools.pairwise(diagonal))


def test_lens_distortion_keeps_the_centre_and_bows_straight_lines_outwards():
    image = Image.new("RGB", (65, 49), "white")
    image.paste((0, 0, 0), (12, 0, 14, 49))
    image.putpixel((32, 24), (255, 0, 0))
    out = pixels(look("lens_distortion", image, amount=0.2))
    assert tuple(out[24, 32]) == (255, 0, 0)

    def line_x(row):
        darkness = 255 - out[row, :32, 0]
        return (darkness * np.arange(32)).sum() / darkness.sum()

    # Barrel: the line sits further from the centre halfway down than at the top and bottom.
    assert line_x(24) < line_x(0) - 0.5
    assert abs(line_x(0) - line_x(48)) < 0.05


def test_lens_distortion_leaves_no_empty_border():
    white = Image.new("RGB", (64, 48), "white")
    assert pixels(look("lens_distortion", white, amount=0.2)).min() == 255


def test_sharpen_raises_contrast_across_an_edge_and_keeps_flat_areas():
    image = Image.new("RGB", (64, 48), (100, 100, 100))
    image.paste((150, 150, 150), (32, 0, 64, 48))
    out = pixels(look("sharpen", image, radius=1.5, percent=150, threshold=0))
    assert out[20, 31, 0] < 100 and out[20, 32, 0] > 150
    assert np.array_equal(out[:, :20], pixels(image)[:, :20])
    # Below the threshold nothing is sharpened.
    calm = look("sharpen", image, radius=1.5, percent=150, threshold=40)
    assert np.array_equal(pixels(calm), pixels(image))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("film_grain", {"amount": 0.0}),
        ("glow", {"strength": 0.0}),
        ("vignette", {"strength": 0.0}),
        ("lens_distortion", {"amount": 0.0}),
        ("sharpen", {"percent": 0}),
    ],
)
def test_a_look_at_zero_strength_changes_nothing(name, params):
    assert np.array_equal(pixels(look(name, picture(), **params)), pixels(picture()))


@pytest.mark.parametrize("name", LOOKS)
def test_every_look_is_deterministic_and_leaves_its_input_alone(name):
    image = picture("RGBA")
    image.putalpha(180)
    before = image.tobytes()
    first, second = look(name, image), look(name, image)
    assert first.mode == "RGB" and first.size == image.size
    assert first.tobytes() == second.tobytes()
    assert image.tobytes() == before
    assert first.tobytes() != image.convert("RGB").tobytes()


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("film_grain", {"amount": 0.5}, "film_grain: 'amount' must be between 0 and 0.25"),
        ("film_grain", {"grain": 1}, "film_grain: unknown parameter 'grain'"),
        ("film_grain", {"monochrome": 1}, "film_grain: 'monochrome' must be true or false"),
        ("color_temperature", {"shift": 2}, "color_temperature: 'shift' must be between -1 and 1"),
        ("glow", {"threshold": 1.0}, "glow: 'threshold' must be between 0 and 0.95"),
        ("vignette", {"radius": 0}, "vignette: 'radius' must be between 0.1 and 1"),
        ("lens_distortion", {"amount": 0.3}, "lens_distortion: 'amount' must be between 0 and 0.2"),
        ("sharpen", {"percent": 12.5}, "sharpen: 'percent' must be an integer"),
    ],
)
def test_invalid_look_params_name_the_step_and_the_parameter(name, params, expected):
    with pytest.raises(ValidationError) as caught:
        get_step(name).validate_params(params)
    assert caught.value.messages == [expected]


CHAINS = [
    ("film_grain", {"monochrome": False, "size": 2.0}),
    ("color_temperature", {}),
    ("glow", {}),
    ("vignette", {}),
    ("lens_distortion", {}),
    ("sharpen", {}),
    ("reframe", {"aspect": "9:16"}),
    ("reframe", {"aspect": "16:9", "fill": "blur"}),
    ("upscale_local", {"factor": 1.7}),
]

DIGESTS = """
import hashlib, json, sys
from PIL import Image
from generation.pipeline.base import StepContext
from generation.pipeline.registry import get_step
image = Image.effect_mandelbrot((64, 48), (-2, -1.2, 1, 1.2), 60).convert("RGB")
digests = []
for name, params in json.loads(sys.argv[1]):
    step = get_step(name)
    out = step.run(image, step.validate_params(params), StepContext(None, (), 5))
    digests.append(hashlib.sha256(out.tobytes()).hexdigest())
print(json.dumps(digests))
"""


def test_every_new_step_gives_the_same_bytes_in_a_fresh_process():
    image = Image.effect_mandelbrot((64, 48), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    here = []
    for name, params in CHAINS:
        step = get_step(name)
        out = step.run(image, step.validate_params(params), StepContext(None, (), 5))
        here.append(hashlib.sha256(out.tobytes()).hexdigest())
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", DIGESTS, json.dumps(CHAINS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "random", "PATH": ""},
    )
    assert json.loads(result.stdout) == here
