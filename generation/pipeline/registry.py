"""Provides the registry of refinement steps and validation of JSON step chains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError

from generation.pipeline.base import Step

S = TypeVar("S", bound=type[Step])

_STEPS: dict[str, type[Step]] = {}
_ENTRY_KEYS = frozenset({"step", "params", "version"})


def register(step_cls: S) -> S:
    """Class decorator adding a step under its ``name``; a second class with it raises."""
    name = getattr(step_cls, "name", "")
    if not name or not isinstance(getattr(step_cls, "version", None), int):
        raise TypeError(f"{step_cls.__qualname__} must define a name and an integer version")
    existing = _STEPS.get(name)
    if existing is not None and existing is not step_cls:
        raise ValueError(
            f"step {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
        )
    _STEPS[name] = step_cls
    return step_cls


def step_names() -> list[str]:
    return sorted(_STEPS)


def get_step(name: str) -> Step:
    """Return a new instance of the step registered under ``name``."""
    step_cls = _STEPS.get(name)
    if step_cls is None:
        known = ", ".join(step_names()) or "(none)"
        raise ValidationError(f"unknown step {name!r}; known steps: {known}", code="unknown_step")
    return step_cls()


def validate_chain(chain: object) -> list[dict[str, Any]]:
    """Check a chain ``[{"step": name, "params": {...}}, ...]`` and return it normalised.

    Each entry comes back as ``{"step", "version", "params"}`` with every parameter
    present. All problems are reported together, each prefixed with the entry's
    position (1-based) so the admin can point at it.
    """
    if not isinstance(chain, list):
        raise ValidationError(
            'the chain must be a list of steps, e.g. [{"step": ..., "params": {...}}]',
            code="invalid_chain",
        )
    entries: list[dict[str, Any]] = []
    errors: list[ValidationError] = []
    for position, entry in enumerate(chain, start=1):
        try:
            entries.append(_validate_entry(entry))
        except ValidationError as exc:
            errors.extend(
                ValidationError(f"step {position}: {message}", code=error.code)
                for error in exc.error_list
                for message in error.messages
            )
    if errors:
        raise ValidationError(errors)
    return entries


def _validate_entry(entry: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("step"), str):
        raise ValidationError(
            'each entry must be an object with a "step" name', code="invalid_chain"
        )
    name = entry["step"]
    extra = sorted(str(key) for key in entry if key not in _ENTRY_KEYS)
    if extra:
        raise ValidationError(f"{name}: unexpected key {extra[0]!r}", code="invalid_chain")
    step = get_step(name)
    # A stored chain may be validated again; it must not silently move to a newer version.
    if "version" in entry and entry["version"] != step.version:
        raise ValidationError(
            f"{name}: version {entry['version']!r} is not available "
            f"(current version is {step.version})",
            code="invalid_chain",
        )
    return {
        "step": name,
        "version": step.version,
        "params": step.validate_params(entry.get("params", {})),
    }
