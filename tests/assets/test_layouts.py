"""Tests brand layouts: the layer validator, the renderer pixel by pixel, fonts and layout rows."""

import pytest
from django.core.exceptions import ValidationError
from PIL import Image, ImageChops, ImageFont

from assets.layouts import (
    ELLIPSIS,
    MAX_FONT_BYTES,
    fill_slots,
    font_format,
    render_layout,
    text_fits,
    validate_layers,
)
from assets.models import Layout
from assets.selectors import brand_fonts
from assets.services import asset_create, asset_set_focal_point, brand_font_create
from brandforge.images import encode_image
from tests.factories import BrandFactory, BrandFontFactory, LayoutFactory, font_bytes

PALETTE = ["#0B3D91", "#FC3D21", "#F5F5F0"]
WHITE = (255, 255, 255)
LONG = "Summer sale on every handmade ceramic mug, this week only, while stocks last"


def render(layers, *, size=(120, 80), design=None, **kwargs):
    options = {
        "image": None,
        "variables": {},
        "palette": PALETTE,
        "fonts": {},
        "logo": None,
    } | kwargs
    return render_layout(
        layers, width=size[0], height=size[1], design_size=design or size, **options
    )


def fits(layers, *, size=(120, 80), design=None, variables=None, fonts=None):
    return text_fits(
        layers,
        width=size[0],
        height=size[1],
        design_size=design or size,
        variables=variables or {},
        fonts=fonts or {},
    )


def ink(image, background=WHITE):
    """The bounding box of every pixel that differs from a blank canvas."""
    return ImageChops.difference(image, Image.new("RGB", image.size, background)).getbbox()


def text_layer(**overrides):
    return {"type": "text", "box": [20, 20, 100, 60], "text": "{{headline}}", "colour": 0} | (
        overrides
    )


def halves(size=(200, 100), left=(255, 0, 0), right=(0, 0, 255)):
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize("align", ["left", "center", "right"])
@pytest.mark.parametrize("valign", ["top", "middle", "bottom"])
def test_a_long_headline_never_draws_outside_its_box(align, valign):
    layer = text_layer(size=30, min_size=12, align=align, valign=valign, max_lines=None)
    headline = LONG + " Supercalifragilisticexpialidocious"
    image = render([layer], variables={"headline": headline})

    left, top, right, bottom = ink(image)
    assert (left, top) >= (20, 20) and (right, bottom) <= (100, 60)
    assert image.getpixel((0, 0)) == WHITE and image.getpixel((119, 79)) == WHITE


def test_a_word_wider_than_the_box_is_broken_and_still_clipped_to_it():
    layer = text_layer(box=[10, 10, 40, 70], size=14, min_size=14)
    image = render([layer], variables={"headline": "Wwwwwwwwwwwwwwwwwwwwwwww"})

    left, top, right, bottom = ink(image)
    assert left >= 10 and top >= 10 and right <= 40 and bottom <= 70
    (fit,) = fits([layer], variables={"headline": "Wwwwwwwwwwwwwwwwwwwwwwww"})
    assert len(fit.lines) > 1
    assert all(set(line.removesuffix(ELLIPSIS)) <= {"W", "w"} for line in fit.lines)
    face = ImageFont.load_default(size=14)
    assert all(face.getlength(line) <= 30 for line in fit.lines)


def test_shrink_to_fit_picks_a_smaller_size_but_not_below_min_size():
    layer = text_layer(size=28, min_size=10)  # one line of 28 px type is 35 px tall: it fits

    (short,) = fits([layer], variables={"headline": "Hi"})
    (long,) = fits([layer], variables={"headline": "Summer sale on every mug"})
    (longest,) = fits([layer], variables={"headline": LONG * 3})

    assert short.size == 28 and not short.truncated
    assert 10 <= long.size < 28 and not long.truncated
    assert longest.size == 10 and longest.truncated


def test_the_chosen_size_is_the_largest_that_fits():
    layer = text_layer(size=40, min_size=10)
    (fit,) = fits([layer], variables={"headline": "Summer sale on every mug"})

    (one_larger,) = fits(
        [text_layer(size=fit.size + 1, min_size=fit.size + 1)],
        variables={"headline": "Summer sale on every mug"},
    )
    assert one_larger.truncated


def test_text_that_does_not_fit_at_min_size_ends_with_an_ellipsis_within_max_lines():
    layer = text_layer(size=12, min_size=12, max_lines=2)
    (fit,) = fits([layer], variables={"headline": LONG})

    assert fit.truncated and len(fit.lines) == 2
    assert fit.lines[-1].endswith(ELLIPSIS)
    face = ImageFont.load_default(size=12)
    assert all(face.getlength(line) <= 80 for line in fit.lines)


def test_without_ellipsis_overflowing_text_is_cut_silently():
    layer = text_layer(size=12, min_size=12, max_lines=2, ellipsis=False)
    (fit,) = fits([layer], variables={"headline": LONG})

    assert fit.truncated and len(fit.lines) == 2
    assert ELLIPSIS not in "".join(fit.lines)


def test_max_lines_is_kept_even_when_the_box_has_room_for_more():
    layer = text_layer(box=[0, 0, 120, 80], size=20, min_size=20, max_lines=1)
    (fit,) = fits([layer], variables={"headline": "One two three four five six seven"})
    assert fit.lines == (fit.lines[0],) and fit.lines[0].endswith(ELLIPSIS)


def test_explicit_line_breaks_are_kept():
    layer = text_layer(box=[0, 0, 120, 80], size=12)
    (fit,) = fits([layer], variables={"headline": "Summer\nsale"})
    assert fit.lines == ("Summer", "sale")


def test_align_left_and_right_put_the_ink_at_the_box_edges():
    left = ink(render([text_layer(size=12, align="left")], variables={"headline": "Hi"}))
    right = ink(render([text_layer(size=12, align="right")], variables={"headline": "Hi"}))
    centre = ink(render([text_layer(size=12, align="center")], variables={"headline": "Hi"}))

    assert left[0] - 20 <= 2 and 100 - left[2] > 50
    assert 100 - right[2] <= 2 and right[0] - 20 > 50
    assert abs((centre[0] + centre[2]) / 2 - 60) <= 2


def test_valign_puts_the_ink_at_the_top_middle_or_bottom_of_the_box():
    tops = {
        valign: ink(render([text_layer(size=12, valign=valign)], variables={"headline": "gy"}))
        for valign in ("top", "middle", "bottom")
    }
    assert tops["top"][1] - 20 <= 6
    assert 60 - tops["bottom"][3] <= 2
    assert tops["top"][1] < tops["middle"][1] < tops["bottom"][1]
    assert abs((tops["middle"][1] + tops["middle"][3]) / 2 - 40) <= 4


def test_text_is_drawn_in_the_palette_colour_or_hex_with_opacity():
    by_index = render([text_layer(size=30, colour=1)], variables={"headline": "HH"})
    by_hex = render([text_layer(size=30, colour="#fc3d21")], variables={"headline": "HH"})

    assert by_index.tobytes() == by_hex.tobytes()
    assert (252, 61, 33) in {colour for _, colour in by_index.getcolors(10_000)}
    faded = render([text_layer(size=30, colour=1, opacity=0.5)], variables={"headline": "HH"})
    assert (252, 61, 33) not in {colour for _, colour in faded.getcolors(10_000)}


def test_a_brand_font_is_used_and_an_unknown_family_falls_back_to_the_built_in_font():
    fonts = {"Sans": font_bytes()}
    brand = render([text_layer(size=20, font="Sans")], variables={"headline": "Ag"}, fonts=fonts)
    builtin = render([text_layer(size=20)], variables={"headline": "Ag"})
    missing = render([text_layer(size=20, font="Gone")], variables={"headline": "Ag"})

    assert brand.tobytes() != builtin.tobytes()
    assert missing.tobytes() == builtin.tobytes()


# --- slots ------------------------------------------------------------------------------------


def test_slots_are_filled_from_variables_and_a_missing_one_is_empty():
    layer = text_layer(box=[0, 0, 120, 80], text="{{headline}} {{ cta }}!", size=12)

    (fit,) = fits([layer], variables={"headline": "Summer", "cta": "Shop"})
    assert fit.lines == ("Summer Shop!",)
    (partial,) = fits([layer], variables={"headline": "Summer"})
    assert partial.lines == ("Summer !",)


def test_a_text_layer_whose_slots_are_all_missing_draws_nothing():
    (fit,) = fits([text_layer()], variables={})
    assert fit is None
    assert ink(render([text_layer()], variables={"other": "x"})) is None


def test_slot_values_are_never_expanded_again_nor_formatted():
    values = {"headline": "{{cta}} {0} {headline!r}", "cta": "x"}
    assert fill_slots("{{headline}}", values) == "{{cta}} {0} {headline!r}"


# --- scrim, shape, logo, image ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "start", "end"),
    [
        ("to-bottom", (60, 0), (60, 79)),
        ("to-top", (60, 79), (60, 0)),
        ("to-right", (0, 40), (119, 40)),
        ("to-left", (119, 40), (0, 40)),
    ],
)
def test_a_scrim_goes_from_start_to_end_opacity(direction, start, end):
    layer = {
        "type": "scrim",
        "direction": direction,
        "start_colour": "#000000",
        "start_opacity": 0.0,
        "end_opacity": 1.0,
    }
    image = render([layer])

    assert image.getpixel(start) == WHITE
    assert image.getpixel(end) == (0, 0, 0)
    line = [image.getpixel(start)[0]]
    steps = 8
    for i in range(1, steps + 1):
        point = tuple(round(a + (b - a) * i / steps) for a, b in zip(start, end, strict=True))
        line.append(image.getpixel(point)[0])
    assert line == sorted(line, reverse=True)


def test_a_scrim_can_blend_two_palette_colours_inside_its_box():
    layer = {
        "type": "scrim",
        "box": [0, 40, 120, 80],
        "start_colour": 0,
        "end_colour": 1,
        "start_opacity": 1.0,
        "end_opacity": 1.0,
    }
    image = render([layer])
    assert image.getpixel((60, 40)) == (11, 61, 145)
    assert image.getpixel((60, 79)) == (252, 61, 33)
    assert ink(image) == (0, 40, 120, 80)


def test_a_shape_is_filled_with_its_colour_and_rounded_corners_stay_clear():
    layer = {"type": "shape", "box": [20, 30, 100, 70], "colour": 1, "radius": 12}
    image = render([layer])

    assert image.getpixel((60, 50)) == (252, 61, 33)
    assert image.getpixel((20, 30)) == WHITE  # cut off by the rounded corner
    assert ink(image) == (20, 30, 100, 70)


def test_a_shape_with_opacity_blends_with_what_is_below():
    image = render([{"type": "shape", "box": [20, 30, 100, 70], "colour": 2, "opacity": 0.5}])
    red, green, blue = image.getpixel((60, 50))
    assert (abs(red - 250), abs(green - 250), abs(blue - 248)) <= (1, 1, 1)


def test_a_cta_button_is_a_shape_with_text_on_the_same_box():
    box = [20, 50, 100, 76]
    layers = [
        {"type": "shape", "box": box, "colour": 1, "radius": 6},
        text_layer(box=box, text="{{cta}}", colour="#FFFFFF", align="center", valign="middle"),
    ]
    image = render(layers, variables={"cta": "Shop now"})
    assert ink(image) == (20, 50, 100, 76)
    assert WHITE in {image.getpixel((x, 63)) for x in range(20, 100)}


@pytest.mark.parametrize(
    ("box", "anchor", "expected"),
    [
        ([10, 10, 110, 40], "top-right", (50, 10, 110, 40)),
        ([10, 10, 110, 40], "bottom-left", (10, 10, 70, 40)),
        ([10, 10, 110, 40], "center", (30, 10, 90, 40)),
        ([10, 10, 40, 70], "top-right", (10, 10, 40, 25)),
        ([10, 10, 40, 70], "bottom", (10, 55, 40, 70)),
    ],
)
def test_a_logo_keeps_its_aspect_and_sits_at_its_anchor(box, anchor, expected):
    logo = Image.new("RGBA", (20, 10), (255, 0, 0, 255))
    image = render([{"type": "logo", "box": box, "anchor": anchor}], logo=logo)
    assert ink(image) == expected


def test_a_logo_is_drawn_with_its_opacity_and_skipped_without_a_logo():
    logo = Image.new("RGBA", (20, 10), (255, 0, 0, 255))
    layer = {"type": "logo", "box": [10, 10, 110, 60], "opacity": 0.5}

    red, green, blue = render([layer], logo=logo).getpixel((60, 35))
    assert red == 255 and abs(green - 128) <= 1 and abs(blue - 128) <= 1
    assert ink(render([layer], logo=None)) is None


def test_the_image_layer_covers_its_box_around_the_focal_point():
    layer = {"type": "image", "box": [40, 0, 80, 80]}
    source = halves()

    left = render([layer], image=source, focal_point=(0.0, 0.5))
    right = render([layer], image=source, focal_point=(1.0, 0.5))

    assert ink(left) == ink(right) == (40, 0, 80, 80)
    assert {colour for _, colour in left.crop((40, 0, 80, 80)).getcolors()} == {(255, 0, 0)}
    assert {colour for _, colour in right.crop((40, 0, 80, 80)).getcolors()} == {(0, 0, 255)}


def test_an_image_at_the_canvas_size_is_cropped_without_resampling():
    source = halves(size=(120, 80), left=(10, 20, 30), right=(200, 100, 50))
    image = render([{"type": "image"}], image=source)
    assert image.tobytes() == source.tobytes()


def test_layers_paint_in_order():
    shape = {"type": "shape", "box": [0, 0, 120, 80], "colour": 2}
    image = render([{"type": "image"}, shape], image=halves())
    assert ink(image, background=(245, 245, 240)) is None


# --- scaling and determinism -----------------------------------------------------------------


def test_rendering_at_twice_the_design_size_doubles_every_box():
    layers = [
        {"type": "shape", "box": [10, 20, 50, 40], "colour": 0},
        text_layer(box=[60, 20, 110, 70], size=12),
    ]
    small = render(layers[:1])
    large = render(layers[:1], size=(240, 160), design=(120, 80))

    assert large.size == (240, 160)
    assert ink(small) == (10, 20, 50, 40)
    assert ink(large) == (20, 40, 100, 80)
    (at_1x,) = fits(layers, variables={"headline": "Hi"})
    (at_2x,) = fits(layers, size=(240, 160), design=(120, 80), variables={"headline": "Hi"})
    assert at_2x.size == 2 * at_1x.size == 24


def test_a_different_aspect_scales_boxes_per_axis_and_text_by_the_smaller_factor():
    layers = [{"type": "shape", "box": [10, 20, 50, 40], "colour": 0}]
    wide = render(layers, size=(240, 80), design=(120, 80))
    assert ink(wide) == (20, 20, 100, 40)

    (fit,) = fits(
        [text_layer(box=[0, 0, 120, 80], size=12)],
        size=(240, 80),
        design=(120, 80),
        variables={"headline": "Hi"},
    )
    assert fit.size == 12


def test_the_same_inputs_give_identical_bytes():
    layers = [
        {"type": "image"},
        {"type": "scrim", "box": [0, 40, 120, 80], "end_opacity": 0.7},
        text_layer(font="Sans", size=18, min_size=8, max_lines=2),
        {"type": "shape", "box": [8, 62, 60, 76], "colour": 1, "radius": 5, "opacity": 0.9},
        {"type": "logo", "box": [90, 4, 116, 20], "anchor": "top-right", "opacity": 0.8},
    ]
    kwargs = {
        "image": halves(),
        "variables": {"headline": LONG},
        "fonts": {"Sans": font_bytes()},
        "logo": Image.new("RGBA", (30, 12), (0, 200, 0, 180)),
        "focal_point": (0.3, 0.4),
    }
    first = encode_image(render(layers, **kwargs), fmt="PNG")
    second = encode_image(render(layers, **kwargs), fmt="PNG")
    assert first == second


def test_the_output_is_rgb_at_exactly_the_requested_size():
    image = render([{"type": "image"}], size=(97, 33), design=(120, 80), image=halves())
    assert (image.mode, image.size) == ("RGB", (97, 33))


# --- validation -------------------------------------------------------------------------------


def validate(layers, fonts=frozenset({"Inter"})):
    return validate_layers(layers, width=1080, height=1080, fonts=set(fonts), palette_size=3)


def test_validation_fills_in_the_defaults():
    text, image = validate(
        [{"type": "text", "box": [0, 0, 100, 50], "text": "{{headline}}"}, {"type": "image"}]
    )
    assert text == {
        "type": "text",
        "box": [0, 0, 100, 50],
        "text": "{{headline}}",
        "font": None,
        "size": 48,
        "min_size": 24,
        "colour": 0,
        "opacity": 1.0,
        "align": "left",
        "valign": "top",
        "line_height": 1.2,
        "max_lines": None,
        "ellipsis": True,
    }
    assert image == {"type": "image", "box": [0, 0, 1080, 1080], "opacity": 1.0}


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"type": "text", "box": [900, 40, 1200, 200], "text": "x"},
            "layer 2 (text): box 900,40,1200,200 is outside the 1080×1080 canvas",
        ),
        ({"type": "video"}, "layer 2: unknown type 'video'; use one of image, scrim, text"),
        ({"box": [0, 0, 10, 10]}, "layer 2: unknown type None"),
        (
            {"type": "shape", "box": [0, 0, 10, 10], "colr": 1},
            "layer 2 (shape): unknown key(s) 'colr'; shape layers take box, colour",
        ),
        (
            {"type": "shape", "box": [0, 0, 10, 10], "colour": 3},
            "layer 2 (shape): colour: palette index 3 is out of range; the brand palette has 3",
        ),
        (
            {"type": "shape", "box": [0, 0, 10, 10], "colour": "navy"},
            "colour must be a palette index (0 = main colour) or #RRGGBB, got 'navy'",
        ),
        (
            {"type": "text", "box": [0, 0, 10, 10], "text": "x", "font": "Comic"},
            "layer 2 (text): unknown font family 'Comic'; the brand's fonts are: Inter",
        ),
        (
            {"type": "text", "box": [0, 0, 10, 10], "text": "Hi {{Headline}}"},
            "layer 2 (text): malformed slot {{Headline}} in text",
        ),
        (
            {"type": "text", "box": [0, 0, 10, 10], "text": "Hi {{headline"},
            "malformed slot {{headline in text",
        ),
        ({"type": "text", "box": [0, 0, 10, 10]}, "layer 2 (text): text is required"),
        (
            {"type": "text", "box": [0, 0, 10, 10], "text": "x", "size": 20, "min_size": 30},
            "min_size 30 is larger than size 20",
        ),
        ({"type": "logo", "box": [10, 10, 10, 20]}, "box 10,10,10,20 is empty"),
        ({"type": "logo", "box": [0, 0, 10]}, "box must be [x0, y0, x1, y1] in whole canvas px"),
        (
            {"type": "logo", "box": [0, 0, 10, 10], "anchor": "middle"},
            "anchor must be one of top-left, top,",
        ),
        (
            {"type": "scrim", "end_opacity": 1.5},
            "end_opacity must be a number from 0 to 1, got 1.5",
        ),
        (
            {"type": "text", "box": [0, 0, 10, 10], "text": "x", "max_lines": 0},
            "max_lines must be a whole number from 1 to 100 or null",
        ),
        ("text", "layer 2: expected an object"),
    ],
    ids=[
        "box_outside",
        "unknown_type",
        "missing_type",
        "unknown_key",
        "palette_index",
        "colour_name",
        "unknown_font",
        "malformed_slot",
        "unclosed_slot",
        "missing_text",
        "min_size",
        "empty_box",
        "short_box",
        "anchor",
        "opacity",
        "max_lines",
        "not_an_object",
    ],
)
def test_a_bad_layer_is_reported_with_its_number_type_and_key(layer, message):
    with pytest.raises(ValidationError) as caught:
        validate([{"type": "image"}, layer])
    assert any(message in text for text in caught.value.messages), caught.value.messages


def test_every_bad_layer_is_reported_at_once():
    with pytest.raises(ValidationError) as caught:
        validate([{"type": "video"}, {"type": "image", "opacity": 2}])
    assert len(caught.value.messages) == 2
    assert caught.value.messages[1].startswith("layer 2 (image): opacity")


def test_layers_must_be_a_list():
    with pytest.raises(ValidationError, match="Layers are a list"):
        validate({"type": "image"})


# --- fonts ------------------------------------------------------------------------------------


def test_a_real_truetype_font_is_accepted():
    assert font_format(font_bytes()) == "ttf"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"This is a text file renamed to .ttf\n", "is not a TrueType/OpenType font"),
        (b"wOFF" + b"\0" * 100, "is a WOFF web font"),
        (b"ttcf" + b"\0" * 100, "is a font collection (.ttc)"),
        (b"\x00\x01\x00\x00" + b"\0" * 200, "that can be drawn with (damaged?)"),
    ],
    ids=["text_file", "woff", "collection", "damaged"],
)
def test_a_file_that_is_not_a_usable_font_is_rejected_with_a_clear_message(data, message):
    with pytest.raises(ValidationError) as caught:
        font_format(data, name="“notes.ttf”")
    assert caught.value.messages[0].startswith("“notes.ttf” ")
    assert message in caught.value.messages[0]


def test_a_truncated_font_is_rejected():
    with pytest.raises(ValidationError, match="damaged"):
        font_format(font_bytes()[:2000])


def test_a_font_over_the_size_limit_is_rejected_before_parsing():
    with pytest.raises(ValidationError, match="larger than 10 MB"):
        font_format(b"\x00\x01\x00\x00" + b"\0" * MAX_FONT_BYTES)


# --- rows: fonts, layouts, focal point --------------------------------------------------------


@pytest.mark.django_db
def test_brand_fonts_reads_every_font_of_the_brand_in_one_query(django_assert_num_queries):
    brand = BrandFactory()
    BrandFontFactory(brand=brand, family="Sans")
    BrandFontFactory(brand=brand, family="Sans Two")
    BrandFontFactory(family="Other brand")

    with django_assert_num_queries(1):
        fonts = brand_fonts(brand)
    assert sorted(fonts) == ["Sans", "Sans Two"]
    assert fonts["Sans"] == font_bytes()


@pytest.mark.django_db
def test_brand_font_create_stores_the_font_under_a_server_chosen_name():
    font = brand_font_create(brand=BrandFactory(), family="Brand Sans", data=font_bytes())
    assert font.file.name.endswith(f"/brandfont/{font.uid}.ttf")
    with pytest.raises(ValidationError, match="not a TrueType/OpenType font"):
        brand_font_create(brand=font.brand, family="Notes", data=b"hello")


@pytest.mark.django_db
def test_a_layout_may_only_use_the_brands_own_fonts_and_palette():
    brand = BrandFactory()
    layout = LayoutFactory.build(
        brand=brand,
        layers=[{"type": "text", "box": [0, 0, 60, 40], "text": "x", "font": "Sans", "colour": 2}],
    )
    with pytest.raises(ValidationError) as caught:
        layout.full_clean()
    assert "layer 1 (text): unknown font family 'Sans'" in caught.value.message_dict["layers"][0]

    BrandFontFactory(brand=brand, family="Sans")
    layout.full_clean()
    brand.palette = ["#000000"]
    with pytest.raises(ValidationError, match="palette index 2 is out of range"):
        layout.full_clean()


@pytest.mark.django_db
def test_a_layout_box_outside_its_canvas_is_an_error_on_the_layers_field():
    layout = LayoutFactory.build(
        brand=BrandFactory(), layers=[{"type": "logo", "box": [0, 0, 200, 40]}]
    )
    with pytest.raises(ValidationError) as caught:
        layout.full_clean()
    assert caught.value.message_dict["layers"] == [
        "layer 1 (logo): box 0,0,200,40 is outside the 120×80 canvas"
    ]


@pytest.mark.django_db
def test_sample_values_are_names_to_text():
    layout = LayoutFactory.build(brand=BrandFactory(), sample_values={"Head Line": 3})
    with pytest.raises(ValidationError, match="Sample value 'Head Line'"):
        layout.full_clean()
    assert Layout.objects.count() == 0


@pytest.mark.django_db
def test_the_focal_point_is_set_by_hand_both_coordinates_or_neither():
    asset, _ = asset_create(
        brand=BrandFactory(), key="focal", image=halves(), recipe={"prompt": "x"}
    )
    assert asset.focal_point is None

    asset_set_focal_point(asset=asset, focal_x=0.25, focal_y=0.75)
    asset.refresh_from_db()
    assert asset.focal_point == (0.25, 0.75)

    with pytest.raises(ValidationError, match="Set both focal_x and focal_y"):
        asset_set_focal_point(asset=asset, focal_x=0.25, focal_y=None)
    with pytest.raises(ValidationError):
        asset_set_focal_point(asset=asset, focal_x=1.5, focal_y=0.5)
