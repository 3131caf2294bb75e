"""Tests for the automated scorers and their registry."""

import dataclasses
import json
from io import BytesIO

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image, ImageFilter

from generation.providers.base import GenerationRequest
from generation.providers.local import LocalImageProvider
from review.scoring.aspect import AspectScorer
from review.scoring.base import Fingerprint, ScoreContext, Scorer, ScoreResult
from review.scoring.brand_consistency import BrandConsistencyScorer
from review.scoring.colourfulness import ColourfulnessScorer
from review.scoring.duplicate import DuplicateScorer
from review.scoring.exposure import ExposureScorer
from review.scoring.fingerprint import (
    HISTOGRAM_BINS,
    fingerprint,
    histogram_distance,
    phash_distance,
)
from review.scoring.palette import PaletteScorer, dominant_colours
from review.scoring.registry import get_scorer, register, scorer_names, scorers_for
from review.scoring.resolution import ResolutionScorer
from review.scoring.sharpness import SharpnessScorer, analysis_image

BUILT_IN = {
    "aesthetic": "master",
    "aspect": "rendition",
    "brand_consistency": "master",
    "colourfulness": "master",
    "duplicate": "master",
    "exposure": "master",
    "nsfw": "master",
    "palette": "master",
    "resolution": "rendition",
    "sharpness": "master",
}

BLUR = ImageFilter.GaussianBlur(6)


def rendition_context(width, height, **thresholds):
    return ScoreContext(target_width=width, target_height=height, thresholds=thresholds)


def checkerboard(size=256, cell=16):
    ys, xs = np.indices((size, size))
    return Image.fromarray((((xs // cell + ys // cell) % 2) * 255).astype(np.uint8)).convert("RGB")


def local_master(seed, size=1024, palette=("#E63946", "#1D3557", "#F1FAEE", "#A8DADC")):
    request = GenerationRequest(
        prompt="a ceramic mug on a desk",
        negative_prompt="",
        width=size,
        height=size,
        seed=seed,
        model="procedural-v1",
        palette=palette,
    )
    return Image.open(BytesIO(LocalImageProvider().generate(request).image_bytes))


@pytest.mark.parametrize(
    ("size", "value", "passed"),
    [
        ((1200, 628), 1.0, True),
        ((2400, 1256), 4.0, True),
        ((1199, 628), 1199 / 1200, False),
        ((2400, 600), 2400 * 600 / (1200 * 628), False),
    ],
    ids=["exact", "larger", "one-pixel-short", "wide-but-short"],
)
def test_resolution_passes_only_when_both_sides_reach_the_target(size, value, passed):
    result = ResolutionScorer().score(Image.new("RGB", size), rendition_context(1200, 628))
    assert result.value == pytest.approx(value)
    assert result.passed is passed
    assert result.details == {"actual": list(size), "target": [1200, 628]}


def test_resolution_ignores_a_gate_threshold():
    ctx = rendition_context(1200, 628, resolution=0.5)
    assert ResolutionScorer().threshold(ctx) is None
    assert not ResolutionScorer().score(Image.new("RGB", (1199, 628)), ctx).passed


def test_rendition_scorers_need_a_target_size():
    with pytest.raises(ValueError, match="target_width"):
        ResolutionScorer().score(Image.new("RGB", (10, 10)), ScoreContext())


@pytest.mark.parametrize(
    ("size", "passed"),
    [((1200, 628), True), ((1205, 628), True), ((1080, 1080), False), ((628, 1200), False)],
    ids=["exact", "within-1-percent", "square", "rotated"],
)
def test_aspect_passes_within_the_default_one_percent(size, passed):
    result = AspectScorer().score(Image.new("RGB", size), rendition_context(1200, 628))
    target = 1200 / 628
    assert result.value == pytest.approx(abs(size[0] / size[1] - target) / target)
    assert result.passed is passed
    assert result.details["threshold"] == 0.01


def test_aspect_threshold_can_be_overridden_per_gate():
    image = Image.new("RGB", (1080, 1000))
    assert not AspectScorer().score(image, rendition_context(1000, 1000)).passed
    assert AspectScorer().score(image, rendition_context(1000, 1000, aspect=0.1)).passed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sharpness_passes_local_provider_output_and_fails_it_blurred(seed):
    master = local_master(seed)
    sharp = SharpnessScorer().score(master, ScoreContext())
    blurred = SharpnessScorer().score(master.filter(BLUR), ScoreContext())
    assert sharp.passed and not blurred.passed
    # Clear of the default threshold on both sides, not just across it.
    assert sharp.value > 2 * SharpnessScorer.default_threshold
    assert blurred.value < SharpnessScorer.default_threshold / 5


def test_sharpness_passes_a_checkerboard_and_fails_it_blurred():
    board = checkerboard()
    assert SharpnessScorer().score(board, ScoreContext()).passed
    assert not SharpnessScorer().score(board.filter(BLUR), ScoreContext()).passed


def test_sharpness_of_a_flat_image_is_zero():
    result = SharpnessScorer().score(Image.new("RGB", (300, 200), "teal"), ScoreContext())
    assert result.value == pytest.approx(0.0) and not result.passed


def test_sharpness_analyses_at_a_long_side_of_512():
    assert analysis_image(Image.new("RGB", (2048, 1024))).size == (512, 256)
    assert analysis_image(Image.new("RGBA", (100, 400))).size == (128, 512)
    result = SharpnessScorer().score(checkerboard(1024, 64), ScoreContext())
    assert result.details["analysed_size"] == [512, 512]


def test_sharpness_is_comparable_across_sizes():
    # The same pattern at 1024 and 3072 px: raw Laplacian variance would differ about 3 times.
    small = SharpnessScorer().score(checkerboard(1024, 64), ScoreContext()).value
    large = SharpnessScorer().score(checkerboard(3072, 192), ScoreContext()).value
    assert large == pytest.approx(small, rel=0.15)


def test_sharpness_threshold_comes_from_the_context():
    master = local_master(0)
    strict = SharpnessScorer().score(master, ScoreContext(thresholds={"sharpness": 1e9}))
    assert not strict.passed and strict.details["threshold"] == 1e9


def test_score_details_are_json_serialisable():
    image = checkerboard()
    ctx = ScoreContext(
        target_width=256,
        target_height=256,
        palette=("#000000", "#FFFFFF"),
        references=(fingerprint(image),),
        neighbours={"a1": fingerprint(image.rotate(90)).phash},
        recipe={"nsfw": False},
    )
    for scorer in (*scorers_for("master"), *scorers_for("rendition")):
        json.dumps(scorer.score(image, ctx).details)


def test_every_built_in_scorer_is_registered_and_described():
    assert BUILT_IN.items() <= {name: get_scorer(name).subject for name in scorer_names()}.items()
    for name in BUILT_IN:
        scorer = get_scorer(name)
        assert scorer.label and scorer.label[0].isupper()
        assert scorer.version == 1
        assert isinstance(scorer.higher_is_better, bool)


@pytest.mark.parametrize(
    ("higher_is_better", "value", "threshold", "passed"),
    [
        (True, 5.0, 5.0, True),
        (True, 4.9, 5.0, False),
        (False, 5.0, 5.0, True),
        (False, 5.1, 5.0, False),
        (False, 1e9, None, True),
    ],
)
def test_passes_follows_the_direction(higher_is_better, value, threshold, passed):
    scorer = ColourfulnessScorer()
    scorer.higher_is_better = higher_is_better
    assert scorer.passes(value, threshold) is passed


def test_the_registry_groups_scorers_by_subject():
    assert set(BUILT_IN) <= set(scorer_names())
    assert scorer_names() == sorted(scorer_names())
    assert {s.name for s in scorers_for("rendition")} >= {"aspect", "resolution"}
    assert "sharpness" in {s.name for s in scorers_for("master")}
    assert all(s.subject == "master" for s in scorers_for("master"))
    assert isinstance(get_scorer("sharpness"), SharpnessScorer)
    with pytest.raises(ValueError, match="subject"):
        scorers_for("thumbnail")


def test_unknown_scorer_names_list_the_known_ones():
    with pytest.raises(ValidationError) as caught:
        get_scorer("watermark")
    message = caught.value.messages[0]
    assert "unknown scorer 'watermark'" in message
    assert all(name in message for name in scorer_names())


def test_registering_a_second_scorer_under_a_taken_name_raises():
    class Impostor(Scorer):
        name = "sharpness"
        version = 2
        subject = "master"

        def score(self, image, ctx):
            return ScoreResult(value=0.0, passed=True, details={})

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert isinstance(get_scorer("sharpness"), SharpnessScorer)


def test_score_values_are_frozen():
    result = ScoreResult(value=1.0, passed=True, details={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 2.0


# --- colour, fingerprint and duplicate scorers on synthetic images -------------------------------


def test_exposure_counts_crushed_shadows_and_blown_highlights():
    image = Image.new("RGB", (400, 400), (128, 128, 128))
    image.paste((0, 0, 0), (0, 0, 400, 100))  # a quarter crushed to black
    image.paste((255, 40, 40), (0, 100, 400, 140))  # a tenth with its red channel blown
    result = ExposureScorer().score(image, ScoreContext())
    assert result.details["shadows"] == pytest.approx(0.25, abs=0.01)
    assert result.details["highlights"] == pytest.approx(0.10, abs=0.01)
    assert result.value == pytest.approx(0.35, abs=0.01)
    assert not result.passed
    assert result.details["mean_luma"] == pytest.approx(0.65 * 128 + 0.1 * 105, abs=2)
    assert ExposureScorer().score(Image.new("RGB", (64, 64), "grey"), ScoreContext()).passed


def test_colourfulness_is_zero_for_grey_and_high_for_saturated_colours():
    grey = ColourfulnessScorer().score(checkerboard(), ScoreContext())
    assert grey.value == pytest.approx(0.0) and not grey.passed
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, :32] = (230, 30, 30)
    stripes[:, 32:] = (30, 60, 230)
    vivid = ColourfulnessScorer().score(Image.fromarray(stripes), ScoreContext())
    assert vivid.value > 100 and vivid.passed


def test_palette_without_a_brand_palette_passes_and_says_why():
    result = PaletteScorer().score(checkerboard(), ScoreContext())
    assert result.value == 0.0 and result.passed
    assert result.details["note"] == "brand has no palette"


def test_palette_matches_dominant_colours_to_the_nearest_brand_colour():
    image = Image.new("RGB", (200, 100), "#E63946")
    image.paste(Image.new("RGB", (50, 100), "#1D3557"), (150, 0))
    on_brand = PaletteScorer().score(image, ScoreContext(palette=("#1D3557", "#E63946")))
    assert on_brand.value == pytest.approx(0.0, abs=0.5) and on_brand.passed
    assert [(d["nearest"], d["share"]) for d in on_brand.details["dominant"]] == [
        ("#E63946", 0.75),
        ("#1D3557", 0.25),
    ]
    off_brand = PaletteScorer().score(image, ScoreContext(palette=("#2A9D8F", "#F4A261")))
    assert off_brand.value > 20 and not off_brand.passed
    assert all(d["delta_e"] > 10 for d in off_brand.details["dominant"])


def test_dominant_colours_have_shares_that_sum_to_one():
    colours = dominant_colours(local_master(3, size=256))
    assert 1 <= len(colours) <= 5
    assert sum(share for _, share in colours) == pytest.approx(1.0)
    assert [share for _, share in colours] == sorted((s for _, s in colours), reverse=True)


def test_fingerprints_are_deterministic_and_normalised():
    image = local_master(4, size=512)
    first, again = fingerprint(image), fingerprint(image.copy())
    assert first == again
    assert len(first.phash) == 16 and int(first.phash, 16) >= 0
    assert len(first.histogram) == HISTOGRAM_BINS
    assert sum(first.histogram) == pytest.approx(1.0)
    # The fingerprint is computed at a fixed size, so the image's size barely matters.
    larger = fingerprint(image.resize((1024, 1024), Image.Resampling.LANCZOS))
    assert phash_distance(first.phash, larger.phash) <= 2
    assert histogram_distance(first.histogram, larger.histogram) < 0.1


def test_fingerprint_distances():
    assert phash_distance("0000000000000000", "000000000000000f") == 4
    assert phash_distance("ffffffffffffffff", "0000000000000000") == 64
    assert histogram_distance((0.5, 0.5), (0.5, 0.5)) == pytest.approx(0.0, abs=1e-7)
    assert histogram_distance((1.0, 0.0), (0.0, 1.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="length"):
        histogram_distance((1.0,), (0.5, 0.5))


def test_brand_consistency_without_references_passes_and_says_why():
    result = BrandConsistencyScorer().score(checkerboard(), ScoreContext())
    assert result.value == 0.0 and result.passed
    assert result.details["note"] == "brand has no reference images"


def test_brand_consistency_measures_the_nearest_reference():
    image = local_master(5, size=256)
    unrelated = Fingerprint(phash="ffffffffffffffff", histogram=(1.0,) + (0.0,) * 127)
    ctx = ScoreContext(references=(unrelated, fingerprint(image)))
    result = BrandConsistencyScorer().score(image, ctx)
    assert result.value == pytest.approx(0.0, abs=1e-6) and result.passed
    assert result.details["nearest_reference"] == 1
    assert result.details["phash_distance"] == 0 and result.details["references"] == 2


def test_duplicate_without_neighbours_scores_64_and_reports_its_own_hash():
    image = local_master(6, size=256)
    result = DuplicateScorer().score(image, ScoreContext())
    assert result.value == 64 and result.passed
    assert result.details["phash"] == fingerprint(image).phash
    assert result.details["nearest"] is None


def test_duplicate_names_the_nearest_neighbour():
    image = local_master(7, size=256)
    own = fingerprint(image).phash
    flipped = f"{int(own, 16) ^ 0b111:016x}"  # three bits away
    ctx = ScoreContext(neighbours={"far": f"{int(own, 16) ^ (2**40 - 1):016x}", "near": flipped})
    result = DuplicateScorer().score(image, ctx)
    assert result.value == 3 and not result.passed
    assert result.details["nearest"] == "near"
