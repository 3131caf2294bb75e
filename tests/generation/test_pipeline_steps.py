"""Tests for step parameter validation, chain validation, the watermark step and cover()."""

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from brandforge.images import cover
from generation.pipeline.base import ParamSpec, Step, StepContext, StepError
from generation.pipeline.registry import get_step, register, step_names, validate_chain
from generation.pipeline.watermark import WatermarkStep

RED_LOGO = Image.new("RGBA", (100, 50), (255, 0, 0, 255))
SIZE = (400, 300)


def context(logo=RED_LOGO, focal_point=(0.5, 0.5)):
    return StepContext(logo=logo, palette=("#000000",), seed=1, focal_point=focal_point)


def watermark(image=None, logo=RED_LOGO, **params):
    step = get_step("watermark")
    image = image if image is not None else Image.new("RGB", SIZE, "black")
    return step.run(image, step.validate_params(params), context(logo))


def red_box(image):
    """(left, top, right, bottom) of the pixels that are clearly red."""
    array = np.asarray(image.convert("RGB"), dtype=int)
    rows, cols = np.nonzero((array[..., 0] > 100) & (array[..., 1] < 50))
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def messages(excinfo):
    return " | ".join(excinfo.value.messages)


def test_validate_chain_normalises_entries_with_defaults():
    chain = validate_chain([{"step": "watermark", "params": {"opacity": 1, "anchor": "top"}}])
    assert chain == [
        {
            "step": "watermark",
            "version": 1,
            "params": {
                "anchor": "top",
                "margin": 0.04,
                "opacity": 1.0,
                "scale": 0.18,
                "safe_area": 0.0,
            },
        }
    ]
    assert isinstance(chain[0]["params"]["opacity"], float)


def test_validate_chain_accepts_missing_params_and_its_own_output():
    chain = validate_chain([{"step": "watermark"}])
    assert chain[0]["params"]["anchor"] == "bottom-right"
    assert validate_chain(chain) == chain


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ({"step": "watermark"}, "must be a list"),
        (["watermark"], "step 1: each entry must be an object"),
        ([{"step": "sharpness"}], "step 1: unknown step 'sharpness'; known steps: "),
        (
            [{"step": "watermark"}, {"step": "watermark", "params": {"opactiy": 0.5}}],
            "step 2: watermark: unknown parameter 'opactiy'",
        ),
        (
            [{"step": "watermark", "params": {"opacity": 1.5}}],
            "step 1: watermark: 'opacity' must be between 0 and 1",
        ),
        (
            [{"step": "watermark", "params": {"scale": 0.01}}],
            "step 1: watermark: 'scale' must be between 0.02 and 0.5",
        ),
        (
            [{"step": "watermark", "params": {"anchor": "middle"}}],
            "step 1: watermark: 'anchor' must be one of top-left, top, top-right",
        ),
        (
            [{"step": "watermark", "params": {"margin": "0.1"}}],
            "step 1: watermark: 'margin' must be a number",
        ),
        (
            [{"step": "watermark", "params": {"opacity": True}}],
            "step 1: watermark: 'opacity' must be a number",
        ),
        ([{"step": "watermark", "params": []}], "step 1: watermark: params must be an object"),
        ([{"step": "watermark", "version": 0}], "step 1: watermark: version 0 is not available"),
        ([{"step": "watermark", "extra": 1}], "step 1: watermark: unexpected key 'extra'"),
    ],
    ids=[
        "not-a-list",
        "not-an-object",
        "unknown-step",
        "unknown-param",
        "out-of-range",
        "below-minimum",
        "not-a-choice",
        "string-number",
        "bool-number",
        "params-not-object",
        "stale-version",
        "extra-key",
    ],
)
def test_validate_chain_errors_name_the_position_step_and_parameter(chain, expected):
    with pytest.raises(ValidationError) as caught:
        validate_chain(chain)
    assert expected in messages(caught)


def test_validate_chain_reports_every_bad_entry():
    with pytest.raises(ValidationError) as caught:
        validate_chain([{"step": "nope"}, {"step": "watermark", "params": {"opacity": -1}}])
    assert len(caught.value.messages) == 2


def test_validate_params_messages_match_the_documented_wording():
    with pytest.raises(ValidationError) as caught:
        WatermarkStep.validate_params({"opactiy": 0.5})
    assert caught.value.messages == ["watermark: unknown parameter 'opactiy'"]
    with pytest.raises(ValidationError) as caught:
        WatermarkStep.validate_params({"opacity": 2})
    assert caught.value.messages == ["watermark: 'opacity' must be between 0 and 1"]


def test_integer_params_accept_integral_floats_only():
    class Demo(Step):
        name = "demo"
        version = 1
        params = {"count": ParamSpec(int, 1, minimum=1), "flag": ParamSpec(bool, False)}

        def run(self, image, params, ctx):
            return image

    assert Demo.validate_params({"count": 3.0, "flag": True}) == {"count": 3, "flag": True}
    with pytest.raises(ValidationError, match="'count' must be an integer"):
        Demo.validate_params({"count": 2.5})
    with pytest.raises(ValidationError, match="'count' must be at least 1"):
        Demo.validate_params({"count": 0})
    with pytest.raises(ValidationError, match="'flag' must be true or false"):
        Demo.validate_params({"flag": 1})


def test_registering_a_second_step_under_a_taken_name_raises():
    class Impostor(Step):
        name = "watermark"
        version = 9

        def run(self, image, params, ctx):
            return image

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert get_step("watermark").__class__ is WatermarkStep


def test_get_step_returns_an_instance_and_unknown_names_list_known_steps():
    assert "watermark" in step_names()
    assert isinstance(get_step("watermark"), WatermarkStep)
    with pytest.raises(ValidationError, match=r"unknown step 'blur'; known steps: .*watermark"):
        get_step("blur")


def test_step_error_carries_the_step_name():
    error = StepError("watermark", "logo is empty")
    assert error.step == "watermark" and str(error) == "watermark: logo is empty"


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [
        # margin = 0.04 x 300 = 12 px; logo = 0.25 x 400 = 100 x 50 px
        ("top-left", (12, 12)),
        ("top", (150, 12)),
        ("top-right", (288, 12)),
        ("left", (12, 125)),
        ("center", (150, 125)),
        ("right", (288, 125)),
        ("bottom-left", (12, 238)),
        ("bottom", (150, 238)),
        ("bottom-right", (288, 238)),
    ],
)
def test_watermark_anchors_place_the_logo_inside_the_margin(anchor, expected):
    out = watermark(anchor=anchor, scale=0.25, margin=0.04, opacity=1)
    left, top = expected
    assert red_box(out) == (left, top, left + 100, top + 50)


def test_watermark_opacity_half_blends_half_way():
    out = watermark(anchor="center", scale=0.25, opacity=0.5)
    red, green, blue = out.getpixel((200, 150))
    assert abs(red - 128) <= 1 and green == 0 and blue == 0


def test_watermark_honours_the_logos_own_alpha():
    logo = Image.new("RGBA", (100, 50), (255, 0, 0, 128))
    out = watermark(logo=logo, anchor="center", scale=0.25, opacity=0.5)
    assert abs(out.getpixel((200, 150))[0] - 64) <= 1


@pytest.mark.parametrize(("scale", "width"), [(0.1, 40), (0.18, 72), (0.5, 200)])
def test_watermark_scale_sets_the_logo_width_and_keeps_its_aspect(scale, width):
    left, top, right, bottom = red_box(watermark(scale=scale, opacity=1))
    assert right - left == width
    assert bottom - top == width // 2


def test_a_tall_logo_is_shrunk_to_fit_inside_the_margins():
    tall = Image.new("RGBA", (50, 400), (255, 0, 0, 255))
    left, top, right, bottom = red_box(watermark(logo=tall, scale=0.5, margin=0.1, opacity=1))
    assert (top, bottom) == (30, 270)
    assert right - left == 30


def test_watermark_without_a_logo_passes_the_image_through():
    image = Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 50).convert("RGB")
    out = watermark(image=image, logo=None)
    assert out.mode == "RGB"
    assert np.array_equal(np.asarray(out), np.asarray(image))


def test_watermark_is_deterministic_and_leaves_its_input_alone():
    image = Image.effect_mandelbrot(SIZE, (-2, -1.5, 1, 1.5), 50).convert("RGB")
    before = np.asarray(image).copy()
    logo = Image.radial_gradient("L").resize((80, 80)).convert("RGBA")
    first, second = watermark(image=image, logo=logo), watermark(image=image, logo=logo)
    assert first.mode == "RGB"
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert np.array_equal(np.asarray(image), before)
    assert not np.array_equal(np.asarray(first), before)


def halves(width=200, height=100):
    """Left half red, right half blue."""
    image = Image.new("RGB", (width, height), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, width // 2, height))
    return image


@pytest.mark.parametrize("size", [(100, 100), (37, 91), (640, 160), (1, 1)])
def test_cover_returns_exactly_the_requested_size(size):
    out = cover(halves(), width=size[0], height=size[1])
    assert out.size == size


@pytest.mark.parametrize(
    ("focal_x", "expected"),
    [(0.0, (255, 0, 0)), (0.2, (255, 0, 0)), (1.0, (0, 0, 255)), (0.8, (0, 0, 255))],
)
def test_cover_crops_towards_the_focal_point(focal_x, expected):
    out = cover(halves(), width=50, height=100, focal_point=(focal_x, 0.5))
    array = np.asarray(out, dtype=int)
    assert np.abs(array - expected).max() <= 2


def test_cover_with_a_centred_focus_keeps_the_middle():
    out = np.asarray(cover(halves(), width=100, height=100), dtype=int)
    assert out[50, 5, 0] > 200 and out[50, 94, 2] > 200


def test_cover_scales_up_small_images_to_fill():
    out = cover(halves(20, 10), width=400, height=400, focal_point=(0.0, 0.5))
    array = np.asarray(out, dtype=int)
    assert out.size == (400, 400)
    assert np.abs(array[:, :150] - (255, 0, 0)).max() <= 2


def test_cover_rejects_empty_sizes():
    with pytest.raises(ValueError, match="positive"):
        cover(halves(), width=0, height=10)
