"""Provides the contract for automated scorers that run before human review."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from PIL import Image

Subject = Literal["master", "rendition"]
SUBJECTS: tuple[Subject, ...] = ("master", "rendition")


@dataclass(frozen=True)
class Fingerprint:
    """What brand-consistency and near-duplicate checks compare: computed once per image."""

    phash: str  # 64-bit perceptual hash (imagehash.phash), as hex
    histogram: tuple[float, ...]  # normalised colour histogram, sums to 1


@dataclass(frozen=True)
class ScoreContext:
    """Everything a scorer may compare the asset's pixels against; gathered by the service.

    Scorers never touch the database: the review service reads the brand's palette, the
    fingerprints of its reference images, those of the other masters of the campaign and the
    asset's recipe (the provider's own flags), and passes them in here.
    """

    target_width: int | None = None
    target_height: int | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    palette: tuple[str, ...] = ()
    references: tuple[Fingerprint, ...] = ()
    neighbours: Mapping[str, str] = field(default_factory=dict)  # asset uid → phash hex
    recipe: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    value: float
    passed: bool
    details: dict[str, Any]


class Scorer(abc.ABC):
    """Base class for scorers, registered by ``name`` in the scorer registry.

    Subclasses set ``name``, ``label``, ``version`` (bump it when the value for the same image
    changes), ``subject`` (``"master"`` for generated images, ``"rendition"`` for sized
    outputs), ``default_threshold`` and ``higher_is_better``, and implement ``score``, which
    gets the asset's pixels and a ``ScoreContext``. ``details`` must be JSON-serialisable
    because it is stored with the score.
    """

    name: ClassVar[str]
    label: ClassVar[str] = ""
    version: ClassVar[int]
    subject: ClassVar[Subject]
    default_threshold: ClassVar[float | None] = None
    higher_is_better: ClassVar[bool] = True

    def unavailable(self) -> str | None:
        """Why this scorer cannot run here (a model not configured), or None when it can."""
        return None

    def threshold(self, ctx: ScoreContext) -> float | None:
        """Return the gate's threshold for this scorer, else its default threshold."""
        return ctx.thresholds.get(self.name, self.default_threshold)

    def passes(self, value: float, threshold: float | None) -> bool:
        """Whether ``value`` clears ``threshold`` in this scorer's direction (None: always)."""
        if threshold is None:
            return True
        return value >= threshold if self.higher_is_better else value <= threshold

    @abc.abstractmethod
    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        """Return the measured value and whether it passes; never modify ``image``."""
        raise NotImplementedError(".score() must be overridden")


def target_size(scorer: Scorer, ctx: ScoreContext) -> tuple[int, int]:
    """Return the context's target size, which rendition scorers cannot work without."""
    if not ctx.target_width or not ctx.target_height:
        raise ValueError(f"{scorer.name} needs target_width and target_height in the context")
    return ctx.target_width, ctx.target_height
