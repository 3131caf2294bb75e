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
class ScoreContext:
    """What a scorer compares against: the rendition's target size and threshold overrides."""

    target_width: int | None = None
    target_height: int | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreResult:
    value: float
    passed: bool
    details: dict[str, Any]


class Scorer(abc.ABC):
    """Base class for scorers, registered by ``name`` in the scorer registry.

    Subclasses set ``name``, ``version`` (bump it when the value for the same image
    changes), ``subject`` (``"master"`` for generated images, ``"rendition"`` for sized
    outputs) and ``default_threshold``, and implement ``score``. ``details`` must be
    JSON-serialisable because it is stored with the review item.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    subject: ClassVar[Subject]
    default_threshold: ClassVar[float | None] = None

    def threshold(self, ctx: ScoreContext) -> float | None:
        """Return the brand's override for this scorer, else its default threshold."""
        return ctx.thresholds.get(self.name, self.default_threshold)

    @abc.abstractmethod
    def score(self, image: Image.Image, ctx: ScoreContext) -> ScoreResult:
        """Return the measured value and whether it passes; never modify ``image``."""
        raise NotImplementedError(".score() must be overridden")


def target_size(scorer: Scorer, ctx: ScoreContext) -> tuple[int, int]:
    """Return the context's target size, which rendition scorers cannot work without."""
    if not ctx.target_width or not ctx.target_height:
        raise ValueError(f"{scorer.name} needs target_width and target_height in the context")
    return ctx.target_width, ctx.target_height
