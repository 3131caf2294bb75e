"""Tests for the watermark's safe area: the band along each side that the logo stays out of."""

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from generation.pipeline.base import StepContext
from generation.pipeline.registry import get_step, validate_chain
from generation.pipeline.watermark import ANCHORS

RED_LOGO = Image.new("RGBA", (100, 50), (255, 0, 0, 255))
SIZE = (400, 300)


def watermark(image=None, logo=RED_LOGO, **params):
    step = get_step("watermark")
    image = image if image is not None else Image.new("RGB", SIZE, "black")
    return step.run(image, step.validate_params(params), StepContext(logo, ("#000000",), 1))


def red_box(image):
    """(left, top, right, bottom) of the pixels that are clearly red."""
    array = np.asarray(image, dtype=int)
    rows, cols = np.nonzero((array[..., 0] > 100) & (array[..., 1] < 50))
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        # margin 0.04 x 300 = 12 px; safe area 0.1 x 400 = 40 px and 0.1 x 300 = 30 px
        ("top-left", (52, 42)),
        ("top-right", (248, 42)),
        ("bottom-left", (52, 208)),
        ("bottom-right", (248, 208)),
        ("center", (150, 125)),
    ],
)
def test_the_logo_sits_inside_margin_plus_safe_area(anchor, expected):
    out = watermark(anchor=anchor, scale=0.25, margin=0.04, opacity=1, safe_area=0.1)
    left, top = expected
    assert red_box(out) == (left, top, left + 100, top + 50)


@pytest.mark.parametrize("anchor", list(ANCHORS))
def test_no_logo_pixel_enters_the_safe_area(anchor):
    out = watermark(anchor=anchor, scale=0.5, margin=0.0, opacity=1, safe_area=0.2)
    left, top, right, bottom = red_box(out)
    assert left >= 80 and right <= 320
    assert top >= 60 and bottom <= 240


def test_a_logo_too_wide_for_the_room_left_is_shrunk_to_it():
    out = watermark(scale=0.5, margin=0.04, opacity=1, safe_area=0.3)
    left, top, right, bottom = red_box(out)
    # 400 - 2 x (12 + 120) = 136 px of room across.
    assert (right - left, bottom - top) == (136, 68)
    assert right == 400 - 12 - 120


def test_no_safe_area_gives_the_same_pixels_as_a_chain_stored_before_it_existed():
    image = Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 50).convert("RGB")
    step = get_step("watermark")
    ctx = StepContext(RED_LOGO, (), 1)
    stored = {"anchor": "bottom-right", "margin": 0.04, "opacity": 0.8, "scale": 0.18}
    old = step.run(image, stored, ctx)
    assert step.run(image, step.validate_params(stored), ctx).tobytes() == old.tobytes()
    assert red_box(old) == (316, 252, 388, 288)


def test_safe_area_is_validated_and_defaults_to_none():
    chain = validate_chain([{"step": "watermark"}])
    assert chain[0]["params"]["safe_area"] == 0.0 and chain[0]["version"] == 1
    with pytest.raises(ValidationError) as caught:
        validate_chain([{"step": "watermark", "params": {"safe_area": 0.4}}])
    assert caught.value.messages == ["step 1: watermark: 'safe_area' must be between 0 and 0.3"]


def test_the_safe_area_leaves_its_input_alone_and_is_deterministic():
    image = Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 50).convert("RGB")
    before = image.tobytes()
    first = watermark(image=image, safe_area=0.15)
    assert first.tobytes() == watermark(image=image, safe_area=0.15).tobytes()
    assert image.tobytes() == before
