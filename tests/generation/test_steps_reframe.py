"""Tests for the reframe step, reframe_to and the automatic focal point and subject box."""

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from generation.pipeline.base import StepContext
from generation.pipeline.focal import find_focal_point, subject_box
from generation.pipeline.reframe import reframe_to
from generation.pipeline.registry import get_step, validate_chain

GREY = (120, 130, 140)
RED = (220, 30, 30)


def reframe(image, focal_point=(0.5, 0.5), **params):
    step = get_step("reframe")
    ctx = StepContext(logo=None, palette=(), seed=1, focal_point=focal_point)
    return step.run(image, step.validate_params(params), ctx)


def scene(box, size=(96, 48)):
    """A grey picture with a red rectangle (left, top, right, bottom) as its subject."""
    image = Image.new("RGB", size, GREY)
    image.paste(RED, box)
    return image


def red_count(image):
    array = np.asarray(image, dtype=int)
    return int(((array[..., 0] > 180) & (array[..., 1] < 80)).sum())


def halves(width=96, height=48):
    """Left half red, right half blue."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


def pixels(image):
    return np.asarray(image, dtype=int)


def test_auto_focus_keeps_an_off_centre_subject_whole():
    image = scene((70, 16, 86, 32))
    out = reframe(image, aspect="9:16", fill="crop")
    assert out.size == (27, 48)
    assert red_count(out) == red_count(image) == 16 * 16
    # The centre of the frame holds no red at all: the crop did move to the subject.
    centred = reframe(image, aspect="9:16", fill="crop", focus="manual")
    assert red_count(centred) == 0


def test_a_crop_keeps_the_source_pixels_unscaled():
    image = Image.effect_mandelbrot((96, 48), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    out = reframe(image, aspect="1:1", fill="crop", focus="manual", focus_x=0.0)
    assert out.size == (48, 48)
    assert np.array_equal(pixels(out), pixels(image)[:, :48])


@pytest.mark.parametrize(
    ("params", "focal_point", "colour"),
    [
        ({"focus_x": 0.0}, (0.5, 0.5), (255, 0, 0)),
        ({"focus_x": 1.0}, (0.0, 0.5), (0, 0, 255)),
        ({}, (1.0, 0.5), (0, 0, 255)),
        ({}, (0.0, 0.5), (255, 0, 0)),
    ],
    ids=["param-left", "param-wins-over-context", "context-right", "context-left"],
)
def test_manual_focus_takes_the_params_else_the_assets_focal_point(params, focal_point, colour):
    out = reframe(halves(), focal_point, aspect="1:2", fill="crop", focus="manual", **params)
    assert out.size == (24, 48)
    assert np.array_equal(np.unique(pixels(out).reshape(-1, 3), axis=0), [colour])


def test_fill_blur_extends_to_the_exact_aspect_around_the_untouched_image():
    image = halves()
    out = reframe(image, aspect="1:1", fill="blur")
    assert out.size == (96, 96)
    assert np.array_equal(pixels(out)[24:72], pixels(image))
    # The bands are the picture blurred and darkened a little: reddish left, bluish right.
    top_left, top_right = pixels(out)[2, 4], pixels(out)[2, 91]
    assert 170 <= top_left[0] < 250 and top_left[2] < 60
    assert 170 <= top_right[2] < 250 and top_right[0] < 60


def test_fill_mirror_reflects_the_edges_into_the_new_bands():
    image = Image.effect_mandelbrot((48, 40), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    out = pixels(reframe(image, aspect="16:9", fill="mirror"))
    assert out.shape == (40, 71, 3)
    left = (71 - 48) // 2
    assert np.array_equal(out[:, left : left + 48], pixels(image))
    for step in range(left):
        assert np.array_equal(out[:, left - 1 - step], out[:, left + step])
    right = left + 48
    for step in range(71 - right):
        assert np.array_equal(out[:, right + step], out[:, right - 1 - step])


def test_fill_auto_extends_rather_than_cutting_a_wide_subject():
    image = scene((8, 18, 88, 30))
    out = reframe(image, aspect="9:16", fill="auto")
    assert out.size == (96, 171)
    top = (171 - 48) // 2
    assert np.array_equal(pixels(out)[top : top + 48], pixels(image))
    assert red_count(out) >= red_count(image)


def test_fill_auto_crops_when_the_subject_fits():
    image = scene((62, 14, 80, 34))
    out = reframe(image, aspect="9:16", fill="auto")
    assert out.size == (27, 48)
    assert red_count(out) == red_count(image)


def test_fill_auto_shifts_the_window_to_keep_a_subject_the_focal_point_would_cut():
    # The focal point is set by hand at the far left; the subject still fits in the window.
    image = scene((18, 10, 38, 38))
    out = reframe(image, (0.0, 0.5), aspect="9:16", fill="auto", focus="manual")
    assert out.size == (27, 48)
    assert red_count(out) == red_count(image)


def test_an_image_already_at_the_aspect_comes_back_unchanged():
    image = Image.effect_mandelbrot((64, 36), (-2, -1.2, 1, 1.2), 40).convert("RGB")
    for fill in ("crop", "blur", "mirror", "auto"):
        out = reframe(image, aspect="16:9", fill=fill)
        assert np.array_equal(pixels(out), pixels(image))


@pytest.mark.parametrize("fill", ["crop", "blur", "mirror", "auto"])
def test_reframe_is_deterministic_leaves_its_input_alone_and_flattens(fill):
    image = Image.effect_mandelbrot((64, 48), (-2, -1.2, 1, 1.2), 40).convert("RGBA")
    image.putalpha(200)
    before = image.tobytes()
    first, second = (reframe(image, aspect="9:16", fill=fill) for _ in range(2))
    assert first.mode == "RGB"
    assert first.tobytes() == second.tobytes()
    assert image.tobytes() == before


@pytest.mark.parametrize("fill", ["crop", "blur", "mirror", "auto"])
@pytest.mark.parametrize("size", [(1080, 1920), (1200, 628), (50, 50), (1, 7)])
def test_reframe_to_returns_exactly_the_requested_size(fill, size):
    out = reframe_to(scene((70, 16, 86, 32)), width=size[0], height=size[1], fill=fill)
    assert out.size == size and out.mode == "RGB"


def test_reframe_to_crops_and_scales_towards_the_focal_point():
    out = reframe_to(halves(200, 100), width=50, height=100, focal_point=(0.0, 0.5), fill="crop")
    assert np.abs(pixels(out) - (255, 0, 0)).max() <= 2


def test_reframe_to_blur_scales_the_whole_image_into_the_frame():
    out = pixels(reframe_to(halves(200, 100), width=100, height=100, fill="blur"))
    middle = out[25:75]
    assert np.abs(middle[:, :45] - (255, 0, 0)).max() <= 2
    assert np.abs(middle[:, 55:] - (0, 0, 255)).max() <= 2


def test_reframe_to_auto_keeps_a_small_subject_of_a_rendition():
    image = scene((140, 32, 172, 64), size=(192, 96))
    out = reframe_to(image, width=90, height=160, focal_point=find_focal_point(image))
    assert out.size == (90, 160)
    # Cropped (no backdrop) and scaled by 160 / 96: the subject is whole and larger.
    assert red_count(out) >= 32 * 32 * (160 / 96) ** 2 * 0.9


def test_reframe_to_rejects_bad_sizes_and_fills():
    with pytest.raises(ValueError, match="positive"):
        reframe_to(halves(), width=0, height=10)
    with pytest.raises(ValueError, match="fill must be one of"):
        reframe_to(halves(), width=10, height=10, fill="stretch")


def test_find_focal_point_finds_the_subject_and_defaults_to_the_centre():
    x, y = find_focal_point(scene((70, 16, 86, 32)))
    assert 70 / 96 <= x <= 86 / 96 and 16 / 48 <= y <= 32 / 48
    assert find_focal_point(Image.new("RGB", (80, 60), GREY)) == (0.5, 0.5)


def test_subject_box_holds_the_subject():
    left, top, right, bottom = subject_box(scene((10, 8, 40, 20)))
    assert left <= 10 / 96 + 0.03 and right >= 40 / 96 - 0.03
    assert top <= 8 / 48 + 0.03 and bottom >= 20 / 48 - 0.03
    assert right - left < 0.5 and bottom - top < 0.5
    assert subject_box(Image.new("L", (80, 60), 90)) == (0.5, 0.5, 0.5, 0.5)


@pytest.mark.parametrize("aspect", ["0:5", "wide", "16/9", "9:", "-1:2", "1:20", "1.5:1"])
def test_a_bad_aspect_names_the_step_and_the_parameter(aspect):
    with pytest.raises(ValidationError) as caught:
        validate_chain([{"step": "reframe", "params": {"aspect": aspect}}])
    message = caught.value.messages[0]
    assert message.startswith("step 1: reframe: 'aspect' must be")
    assert repr(aspect) in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"aspekt": "1:1"}, "reframe: unknown parameter 'aspekt'"),
        ({"fill": "stretch"}, "reframe: 'fill' must be one of crop, blur, mirror, auto"),
        ({"focus": "manual", "focus_x": 1.5}, "reframe: 'focus_x' must be between -1 and 1"),
        (
            {"focus": "manual", "focus_y": -0.5},
            "reframe: 'focus_y' must be between 0 and 1, or -1 for the asset's focal point",
        ),
        ({"focus_x": 0.3}, "reframe: 'focus_x' is only used with focus 'manual'"),
    ],
    ids=["unknown", "fill", "range", "negative", "focus-auto"],
)
def test_invalid_reframe_params_name_the_parameter(params, expected):
    with pytest.raises(ValidationError) as caught:
        get_step("reframe").validate_params(params)
    assert caught.value.messages == [expected]


def test_reframe_params_normalise_with_defaults_and_validate_again():
    chain = validate_chain([{"step": "reframe", "params": {"aspect": "9:16"}}])
    assert chain == [
        {
            "step": "reframe",
            "version": 1,
            "params": {
                "aspect": "9:16",
                "focus": "auto",
                "focus_x": -1.0,
                "focus_y": -1.0,
                "fill": "auto",
            },
        }
    ]
    assert validate_chain(chain) == chain
