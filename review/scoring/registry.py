"""Provides the registry of automated scorers."""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ValidationError

from review.scoring.base import SUBJECTS, Scorer

S = TypeVar("S", bound=type[Scorer])

_SCORERS: dict[str, type[Scorer]] = {}


def register(scorer_cls: S) -> S:
    """Class decorator adding a scorer under its ``name``; a second class with it raises."""
    name = getattr(scorer_cls, "name", "")
    if not name or not isinstance(getattr(scorer_cls, "version", None), int):
        raise TypeError(f"{scorer_cls.__qualname__} must define a name and an integer version")
    if getattr(scorer_cls, "subject", None) not in SUBJECTS:
        raise TypeError(f"{scorer_cls.__qualname__}.subject must be one of {', '.join(SUBJECTS)}")
    existing = _SCORERS.get(name)
    if existing is not None and existing is not scorer_cls:
        raise ValueError(
            f"scorer {name!r} is already registered by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    _SCORERS[name] = scorer_cls
    return scorer_cls


def scorer_names() -> list[str]:
    return sorted(_SCORERS)


def get_scorer(name: str) -> Scorer:
    """Return a new instance of the scorer registered under ``name``."""
    scorer_cls = _SCORERS.get(name)
    if scorer_cls is None:
        known = ", ".join(scorer_names()) or "(none)"
        raise ValidationError(
            f"unknown scorer {name!r}; known scorers: {known}", code="unknown_scorer"
        )
    return scorer_cls()


def scorers_for(subject: str) -> list[Scorer]:
    """Return one instance of every scorer for ``subject``, ordered by name."""
    if subject not in SUBJECTS:
        raise ValueError(f"unknown subject {subject!r}; use one of {', '.join(SUBJECTS)}")
    return [_SCORERS[name]() for name in scorer_names() if _SCORERS[name].subject == subject]
