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
from review.scoring.base import ScoreContext, Scorer, ScoreResult
from review.scoring.registry import get_scorer, register, scorer_names, scorers_for
from review.scoring.resolution import ResolutionScorer
from review.scoring.sharpness import SharpnessScorer, analysis_image

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
    ctx = rendition_context(256, 256)
    for scorer in (*scorers_for("master"), *scorers_for("rendition")):
        json.dumps(scorer.score(image, ctx).details)


def test_the_registry_groups_scorers_by_subject():
    assert {"aspect", "resolution", "sharpness"} <= set(scorer_names())
    assert scorer_names() == sorted(scorer_names())
    assert {s.name for s in scorers_for("rendition")} >= {"aspect", "resolution"}
    assert "sharpness" in {s.name for s in scorers_for("master")}
    assert all(s.subject == "master" for s in scorers_for("master"))
    assert isinstance(get_scorer("sharpness"), SharpnessScorer)
    with pytest.raises(ValueError, match="subject"):
        scorers_for("thumbnail")


def test_unknown_scorer_names_list_the_known_ones():
    with pytest.raises(ValidationError) as caught:
        get_scorer("nsfw")
    message = caught.value.messages[0]
    assert "unknown scorer 'nsfw'" in message
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
