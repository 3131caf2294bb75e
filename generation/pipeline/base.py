"""Provides the contract for refinement steps: typed parameters, context and the Step class."""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from PIL import Image


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a step: its type, default and allowed values."""

    type: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""


@dataclass(frozen=True)
class StepContext:
    """Brand inputs a step may need beyond its own parameters."""

    logo: Image.Image | None
    palette: tuple[str, ...]
    seed: int
    focal_point: tuple[float, float] = (0.5, 0.5)


class StepError(Exception):
    """A step failed while running on valid parameters."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


class Step(abc.ABC):
    """Base class for refinement steps, registered by ``name`` in the step registry.

    Subclasses set ``name`` (the key used in chains), ``version`` (bump it whenever the
    output for the same input and parameters changes, because stored renditions are keyed
    on it) and ``params``, and implement ``run``. Parameters are checked when a chain is
    built, with ``validate_params``, so ``run`` only ever sees complete, typed values.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    params: ClassVar[dict[str, ParamSpec]] = {}
    # An overlay is placed relative to the frame (a watermark in a corner): renditions apply it
    # again after reframing instead of cropping it away with the rest of the image.
    overlay: ClassVar[bool] = False

    @classmethod
    def validate_params(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``raw`` with defaults filled in and numbers coerced to their spec type.

        Raise ``ValidationError`` naming the step and the parameter for unknown keys,
        wrong types, values out of range and values not among the choices.
        """
        if not isinstance(raw, Mapping):
            raise ValidationError(f"{cls.name}: params must be an object", code="invalid_params")
        unknown = sorted(str(key) for key in raw if key not in cls.params)
        if unknown:
            raise ValidationError(
                f"{cls.name}: unknown parameter {unknown[0]!r}", code="unknown_param"
            )
        return {
            key: _coerce(cls.name, key, spec, raw[key]) if key in raw else spec.default
            for key, spec in cls.params.items()
        }

    @abc.abstractmethod
    def run(self, image: Image.Image, params: dict[str, Any], ctx: StepContext) -> Image.Image:
        """Return a new image; never modify ``image``.

        ``params`` has been through ``validate_params``. The result must depend only on
        the arguments, so the same input and parameters give identical pixels. Raise
        ``StepError`` for failures that valid parameters can still run into.
        """
        raise NotImplementedError(".run() must be overridden")


def _coerce(step: str, key: str, spec: ParamSpec, value: Any) -> Any:
    coerced = _coerce_type(step, key, spec.type, value)
    if spec.choices is not None and coerced not in spec.choices:
        options = ", ".join(str(choice) for choice in spec.choices)
        raise ValidationError(f"{step}: {key!r} must be one of {options}", code="invalid_param")
    _check_range(step, key, spec, coerced)
    return coerced


def _coerce_type(step: str, key: str, kind: type, value: Any) -> Any:
    # bool is an int subclass, and JSON has no int/float distinction: accept 2.0 as an int
    # and 1 as a float, but never True as a number or "1" as anything but a string.
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValidationError(f"{step}: {key!r} must be true or false", code="invalid_param")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValidationError(f"{step}: {key!r} must be a string", code="invalid_param")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is float and is_number and math.isfinite(value):
        return float(value)
    if kind is int and is_number and math.isfinite(value) and float(value).is_integer():
        return int(value)
    expected = "an integer" if kind is int else "a number"
    raise ValidationError(f"{step}: {key!r} must be {expected}", code="invalid_param")


def _check_range(step: str, key: str, spec: ParamSpec, value: Any) -> None:
    low, high = spec.minimum, spec.maximum
    if low is None and high is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            message = f"must be between {low:g} and {high:g}"
        elif low is not None:
            message = f"must be at least {low:g}"
        else:
            message = f"must be at most {high:g}"
        raise ValidationError(f"{step}: {key!r} {message}", code="invalid_param")
