"""Tests for the scorers that depend on optional models: NSFW (NudeNet) and aesthetic (ONNX)."""

import json
import os
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from review.scoring import aesthetic, nsfw
from review.scoring.aesthetic import AestheticScorer, model_input
from review.scoring.base import ScoreContext
from review.scoring.nsfw import NsfwScorer

EXPOSED = {"class": "FEMALE_BREAST_EXPOSED", "score": 0.81, "box": [10, 20, 30, 40]}
FACE = {"class": "FACE_FEMALE", "score": 0.92, "box": [1, 2, 3, 4]}


class FakeDetector:
    def __init__(self, detections):
        self.detections = detections
        self.seen = []

    def detect(self, image):
        self.seen.append(image)
        return self.detections


@pytest.fixture
def local_nsfw(settings, monkeypatch):
    """Turn the local detector on, as if NudeNet were installed, with a fake detector."""
    settings.BRANDFORGE_NSFW_LOCAL = True
    monkeypatch.setattr(nsfw, "nudenet_installed", lambda: True)

    def install(detections):
        detector = FakeDetector(detections)
        monkeypatch.setattr(nsfw, "local_detector", lambda: detector)
        return detector

    return install


def nsfw_score(recipe=None, image=None):
    image = image or Image.new("RGB", (64, 48), "white")
    return NsfwScorer().score(image, ScoreContext(recipe=recipe or {}))


@pytest.mark.parametrize(
    ("flag", "passed"),
    [(True, False), (False, True), (None, True), ([False, True], False), ([False], True)],
    ids=["flagged", "clear", "no-verdict", "fal-list-flagged", "fal-list-clear"],
)
def test_nsfw_follows_the_providers_flag(settings, flag, passed):
    settings.BRANDFORGE_NSFW_LOCAL = False
    result = nsfw_score({"nsfw": flag})
    assert result.passed is passed
    assert result.value == (0.0 if passed else 1.0)
    assert result.details["provider"] == (None if flag is None else not passed)


def test_nsfw_local_detector_is_off_by_default_and_says_so():
    result = nsfw_score()
    assert result.passed and result.value == 0.0
    assert result.details == {"provider": None, "local": "off", "threshold": 0.5}
    assert NsfwScorer().unavailable() is None


def test_nsfw_local_detection_of_an_exposed_class_fails(local_nsfw):
    detector = local_nsfw([FACE, EXPOSED])
    red = Image.new("RGB", (64, 48), (255, 0, 0))
    result = nsfw_score({"nsfw": False}, red)
    assert not result.passed and result.value == 1.0
    assert result.details["provider"] is False
    assert result.details["local"] == [EXPOSED]  # the face is not counted
    json.dumps(result.details)
    (seen,) = detector.seen
    assert seen.shape == (48, 64, 3) and seen[0, 0].tolist() == [0, 0, 255]  # BGR


@pytest.mark.parametrize(
    "detections",
    [[], [FACE], [{**EXPOSED, "score": 0.49}], [{**EXPOSED, "class": "BELLY_EXPOSED"}]],
    ids=["nothing", "face", "low-score", "not-an-unsafe-class"],
)
def test_nsfw_local_detections_that_are_not_exposed_pass(local_nsfw, detections):
    local_nsfw(detections)
    result = nsfw_score()
    assert result.passed and result.details["local"] == []


def test_nsfw_provider_flag_still_counts_with_the_local_detector_on(local_nsfw):
    local_nsfw([])
    assert not nsfw_score({"nsfw": True}).passed


def test_nsfw_unavailable_when_asked_for_but_nudenet_is_missing(settings, monkeypatch):
    settings.BRANDFORGE_NSFW_LOCAL = True
    monkeypatch.setattr(nsfw, "nudenet_installed", lambda: False)
    message = NsfwScorer().unavailable()
    assert message and "BRANDFORGE_NSFW_LOCAL" in message and "NudeNet is not installed" in message
    result = nsfw_score({"nsfw": True})
    assert result.details["local"] == "not installed" and not result.passed


def test_nsfw_detector_is_created_once_per_process(monkeypatch):
    created = []

    class NudeDetector:
        def __init__(self):
            created.append(self)

    monkeypatch.setitem(sys.modules, "nudenet", types.SimpleNamespace(NudeDetector=NudeDetector))
    monkeypatch.setattr(nsfw, "_detector", None)
    first, second = nsfw.local_detector(), nsfw.local_detector()
    assert first is second and created == [first]


# --- aesthetic --------------------------------------------------------------------------------


def write_model(path, *, scale=2.0, bias=5.0):
    """Write an ONNX model that follows the scorer's contract: bias + scale × mean(input)."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias"], ["score"]),
        ],
        "tiny-aesthetic",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])],
        initializer=[
            helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
            helper.make_tensor("bias", TensorProto.FLOAT, [], [bias]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


@pytest.fixture
def aesthetic_model(settings, tmp_path):
    settings.BRANDFORGE_AESTHETIC_MODEL = write_model(tmp_path / "aesthetic.onnx")
    return settings.BRANDFORGE_AESTHETIC_MODEL


def test_aesthetic_is_disabled_without_a_model(settings):
    settings.BRANDFORGE_AESTHETIC_MODEL = ""
    scorer = AestheticScorer()
    assert scorer.unavailable() == (
        "No aesthetic model configured (set BRANDFORGE_AESTHETIC_MODEL to an ONNX file)."
    )
    result = scorer.score(Image.new("RGB", (32, 32)), ScoreContext())
    assert result.passed and result.details["skipped"] == scorer.unavailable()


def test_aesthetic_scores_with_the_model(aesthetic_model):
    scorer = AestheticScorer()
    assert scorer.unavailable() is None
    bright, dark = Image.new("RGB", (300, 200), "white"), Image.new("RGB", (300, 200), "black")
    high, low = scorer.score(bright, ScoreContext()), scorer.score(dark, ScoreContext())
    expected = 5.0 + 2.0 * float(model_input(bright).mean(dtype=np.float64))
    assert high.value == pytest.approx(expected, rel=1e-4)  # float32 sums in the model
    assert high.value > 8.5 and high.passed
    assert low.value < 2.0 and not low.passed
    assert high.details == {"model": "aesthetic.onnx", "threshold": 5.0}
    strict = scorer.score(bright, ScoreContext(thresholds={"aesthetic": 9.5}))
    assert not strict.passed and strict.details["threshold"] == 9.5


def test_aesthetic_input_is_a_clip_normalised_centre_crop():
    wide = Image.new("RGB", (448, 224), "black")
    wide.paste((255, 255, 255), (112, 0, 336, 224))  # only the centre square is white
    pixels = model_input(wide)
    assert pixels.shape == (1, 3, 224, 224) and pixels.dtype == np.float32
    expected = (1.0 - aesthetic.CLIP_MEAN) / aesthetic.CLIP_STD
    np.testing.assert_allclose(pixels[0, :, 112, 112], expected, rtol=1e-5)
    np.testing.assert_allclose(pixels[0].mean(axis=(1, 2)), expected, rtol=0.02)


def test_aesthetic_session_is_cached_until_the_file_changes(aesthetic_model):
    image = Image.new("RGB", (64, 64), "grey")
    first = AestheticScorer().score(image, ScoreContext()).value
    path = aesthetic_model
    stamp = os.stat(path).st_mtime_ns
    session = aesthetic.load_session(path, stamp)
    assert aesthetic.load_session(path, stamp) is session
    write_model(path, bias=6.0)
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert AestheticScorer().score(image, ScoreContext()).value == pytest.approx(first + 1.0)


def test_aesthetic_unavailable_when_the_model_file_is_missing(settings, tmp_path):
    settings.BRANDFORGE_AESTHETIC_MODEL = str(tmp_path / "missing.onnx")
    message = AestheticScorer().unavailable()
    assert message == (
        f"The aesthetic model {tmp_path / 'missing.onnx'} (BRANDFORGE_AESTHETIC_MODEL) "
        "does not exist."
    )


def test_aesthetic_unavailable_when_the_model_file_is_not_onnx(settings, tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    settings.BRANDFORGE_AESTHETIC_MODEL = str(path)
    assert AestheticScorer().unavailable().startswith(f"The aesthetic model {path} could not be")


def test_aesthetic_unavailable_without_onnxruntime(aesthetic_model, monkeypatch):
    monkeypatch.setattr(aesthetic, "onnxruntime_installed", lambda: False)
    message = AestheticScorer().unavailable()
    assert "needs onnxruntime" in message and "brandforge[aesthetic]" in message
