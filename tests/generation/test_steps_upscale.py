"""Tests for the local upscale step: sizes, sharpening, limits and memory."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from generation.pipeline.base import StepContext, StepError
from generation.pipeline.looks import unsharp_luma
from generation.pipeline.registry import get_step
from generation.pipeline.upscale import sharpen_in_bands

ROOT = Path(__file__).resolve().parents[2]


def upscale(image, **params):
    step = get_step("upscale_local")
    return step.run(image, step.validate_params(params), StepContext(None, (), 1))


def picture(size=(64, 48), mode="RGB"):
    return Image.effect_mandelbrot(size, (-2, -1.2, 1, 1.2), 60).convert(mode)


def pixels(image):
    return np.asarray(image, dtype=int)


@pytest.mark.parametrize(
    ("size", "params", "expected"),
    [
        ((64, 48), {}, (128, 96)),
        ((64, 48), {"factor": 2.5}, (160, 120)),
        ((63, 47), {"factor": 1.5}, (94, 70)),
        ((64, 48), {"factor": 8}, (512, 384)),
        ((64, 48), {"long_side": 200}, (200, 150)),
        ((48, 64), {"long_side": 333, "factor": 4}, (250, 333)),
        ((64, 48), {"long_side": 32}, (32, 24)),
    ],
    ids=["default", "factor", "rounding", "factor-max", "long-side", "long-side-wins", "smaller"],
)
def test_upscale_gives_exactly_the_computed_size(size, params, expected):
    out = upscale(picture(size), **params)
    assert out.size == expected and out.mode == "RGB"


def test_factor_one_returns_the_same_pixels():
    assert np.array_equal(pixels(upscale(picture(), factor=1)), pixels(picture()))


def test_without_sharpening_it_is_a_plain_lanczos_resize():
    expected = picture().resize((128, 96), Image.Resampling.LANCZOS)
    assert upscale(picture(), sharpen=0).tobytes() == expected.tobytes()


def test_sharpening_steepens_the_enlarged_edges():
    image = Image.new("RGB", (32, 16), (90, 90, 90))
    image.paste((170, 170, 170), (16, 0, 32, 16))
    plain = pixels(upscale(image, factor=4, sharpen=0))[32, :, 0]
    sharp = pixels(upscale(image, factor=4, sharpen=150))[32, :, 0]
    # The edge lies at x = 64: steeper across it, darker before it, brighter after it.
    assert sharp[65] - sharp[62] > plain[65] - plain[62] + 20
    assert sharp[56:64].min() < plain[56:64].min() - 10
    assert sharp[64:72].max() > plain[64:72].max() + 10
    assert np.array_equal(sharp[:40], plain[:40])  # flat far from the edge: untouched


def test_banded_sharpening_equals_sharpening_the_whole_image():
    image = picture((300, 700))
    whole = unsharp_luma(image, radius=4.8, percent=120, threshold=2)
    banded = image.copy()
    sharpen_in_bands(banded, radius=4.8, percent=120)
    assert banded.tobytes() == whole.tobytes()


def test_upscale_is_deterministic_leaves_its_input_alone_and_flattens():
    image = picture(mode="RGBA")
    image.putalpha(150)
    before = image.tobytes()
    first, second = upscale(image, factor=3), upscale(image, factor=3)
    assert first.mode == "RGB"
    assert first.tobytes() == second.tobytes()
    assert image.tobytes() == before


def test_an_output_over_the_pixel_limit_is_a_step_error_before_any_work():
    with pytest.raises(StepError, match=r"upscale_local: 16384 x 12288 pixels is over the limit"):
        upscale(picture(), long_side=16384)


def test_the_remote_upscales_fallback_parameters_validate():
    params = get_step("upscale_local").validate_params({"factor": 4.0})
    assert params == {"factor": 4.0, "long_side": 0, "sharpen": 60}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"factor": 0.5}, "upscale_local: 'factor' must be between 1 and 8"),
        ({"factor": 9}, "upscale_local: 'factor' must be between 1 and 8"),
        ({"long_side": -1}, "upscale_local: 'long_side' must be between 0 and 16384"),
        ({"long_side": 1000.5}, "upscale_local: 'long_side' must be an integer"),
        ({"scale": 2}, "upscale_local: unknown parameter 'scale'"),
    ],
)
def test_invalid_upscale_params_name_the_parameter(params, expected):
    with pytest.raises(ValidationError) as caught:
        get_step("upscale_local").validate_params(params)
    assert caught.value.messages == [expected]


PEAK = """
import json, re
import numpy as np
from PIL import Image
from generation.pipeline.base import StepContext
from generation.pipeline.registry import get_step

def high_water_kb():
    # VmHWM belongs to this process's own memory map; getrusage's ru_maxrss would also count the
    # parent's (pytest's) peak, which Linux carries across fork and exec.
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1))

noise = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
image = Image.fromarray(noise)
before = high_water_kb()
step = get_step("upscale_local")
out = step.run(image, step.validate_params({"long_side": 4096}), StepContext(None, (), 0))
after = high_water_kb()
print(json.dumps({"size": out.size, "before_kb": before, "after_kb": after}))
"""


def test_a_4096_pixel_upscale_keeps_the_memory_peak_small():
    # The output alone is 64 MB (Pillow keeps RGB in 4 bytes a pixel); one or two more copies
    # are fine, unbanded sharpening's four or five are not.
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PEAK], cwd=ROOT, capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout)
    assert report["size"] == [4096, 4096]
    assert (report["after_kb"] - report["before_kb"]) / 1024 < 160
    assert report["after_kb"] / 1024 < 400  # the ceiling for a 4096² print upscale
