"""Tests that the scorers' default thresholds separate real photographs from degraded copies.

The photos and degradations are those of bench/calibrate_scorers.py, at a long side of 512 px
to keep this fast (the scorers analyse at 512 px anyway). Rocket and the Hubble deep field are
left out: too dark for ×1.8 to over-expose them, and Hubble too grey for a hue rotation to
move its palette (see the calibration section of bench/README.md).
"""

import functools

import pytest

from bench.calibrate_scorers import (
    blur,
    brightness,
    corner_crops,
    crop,
    greyscale,
    hue_rotate,
    jpeg,
    load_photo,
    rescale,
)
from review.scoring.base import ScoreContext
from review.scoring.fingerprint import fingerprint, phash_hex
from review.scoring.palette import dominant_colours, to_hex
from review.scoring.registry import get_scorer

SIDE = 512
PHOTOS = ["astronaut", "chelsea", "coffee", "retina", "immunohistochemistry", "stereo_motorcycle"]


@functools.cache
def photo(name):
    return load_photo(name, SIDE)


@functools.cache
def own_palette(name):
    return tuple(to_hex(colour) for colour, _ in dominant_colours(photo(name)))


@functools.cache
def own_references(name):
    return tuple(fingerprint(part) for part in corner_crops(photo(name)))


def unrelated(name):
    return PHOTOS[(PHOTOS.index(name) + 1) % len(PHOTOS)]


def score(scorer_name, image, **context):
    return get_scorer(scorer_name).score(image, ScoreContext(**context))


@pytest.mark.parametrize("name", PHOTOS)
def test_the_original_passes_every_image_scorer(name):
    ctx = ScoreContext(
        palette=own_palette(name),
        references=own_references(name),
        neighbours={other: phash_hex(photo(other)) for other in PHOTOS if other != name},
    )
    for scorer_name in (
        "sharpness",
        "exposure",
        "colourfulness",
        "palette",
        "brand_consistency",
        "duplicate",
    ):
        result = get_scorer(scorer_name).score(photo(name), ctx)
        assert result.passed, (scorer_name, result)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("radius", [3, 6])
def test_a_blurred_photo_fails_sharpness(name, radius):
    assert not score("sharpness", blur(photo(name), radius)).passed


@pytest.mark.parametrize("name", PHOTOS)
def test_an_over_exposed_photo_fails_exposure(name):
    result = score("exposure", brightness(photo(name), 1.8))
    assert not result.passed
    assert result.details["highlights"] > 0.3


@pytest.mark.parametrize("name", PHOTOS)
def test_a_greyscale_photo_fails_colourfulness(name):
    result = score("colourfulness", greyscale(photo(name)))
    assert result.value == pytest.approx(0.0, abs=1e-6) and not result.passed


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("degrees", [120, 180])
def test_a_hue_rotated_photo_fails_its_own_palette(name, degrees):
    palette = own_palette(name)
    assert score("palette", crop(photo(name), 0.5, 0.5, 0.6), palette=palette).passed
    result = score("palette", hue_rotate(photo(name), degrees), palette=palette)
    assert not result.passed
    assert {match["nearest"] for match in result.details["dominant"]} <= set(palette)


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize(
    "copy",
    [jpeg, lambda image: rescale(image, 0.9), lambda image: brightness(image, 1.05)],
    ids=["jpeg-q70", "resize-90", "bright-105"],
)
def test_a_near_duplicate_fails_while_a_different_photo_passes(name, copy):
    neighbours = {"the-original": phash_hex(photo(name))}
    near = score("duplicate", copy(photo(name)), neighbours=neighbours)
    assert not near.passed and near.details["nearest"] == "the-original"
    assert score("duplicate", photo(unrelated(name)), neighbours=neighbours).passed


@pytest.mark.parametrize("name", PHOTOS)
def test_brand_consistency_prefers_the_brands_own_pictures(name):
    references = own_references(name)
    own = score("brand_consistency", photo(name), references=references)
    other = score("brand_consistency", photo(unrelated(name)), references=references)
    assert own.passed and own.value < other.value
    # Its references score it closer than another photo's references do.
    foreign = score("brand_consistency", photo(name), references=own_references(unrelated(name)))
    assert own.value < foreign.value
    for degrees in (120, 180):
        off_palette = score(
            "brand_consistency", hue_rotate(photo(name), degrees), references=references
        )
        assert not off_palette.passed
