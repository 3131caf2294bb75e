"""Provides the safe `{{name}}` prompt renderer (never `str.format` on text a user wrote)."""

import re
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError

from brandforge.slots import SLOT, SLOT_NAME, malformed_slot

MAX_BODY = 4000
MAX_VALUE = 500

# Filled by BrandForge for every brief; templates may use them without declaring them.
BUILTIN_SLOTS = frozenset({"brand", "locale"})


def template_slots(body: str) -> list[str]:
    """Return the slot names used in `body`, in order, or raise on a malformed slot."""
    if len(body) > MAX_BODY:
        raise ValidationError(f"The template is longer than {MAX_BODY} characters.")
    if (bad := malformed_slot(body)) is not None:
        raise ValidationError(
            "Malformed slot %(slot)s: a slot is {{name}} with lowercase letters, digits and _.",
            code="malformed_slot",
            params={"slot": bad},
        )
    return [match.group(1) for match in SLOT.finditer(body)]


def validate_template(body: str, declared: Iterable[str]) -> None:
    """Raise unless every slot in `body` is declared (or built in) and every name is well formed."""
    declared = list(declared)
    for name in declared:
        if not isinstance(name, str) or not SLOT_NAME.fullmatch(name):
            raise ValidationError(
                "Variable name %(name)s must be lowercase letters, digits and _ (max 40).",
                code="invalid_variable",
                params={"name": repr(name)},
            )
    allowed = set(declared) | BUILTIN_SLOTS
    unknown = sorted({slot for slot in template_slots(body) if slot not in allowed})
    if unknown:
        raise ValidationError(
            "Unknown slot(s) %(slots)s: declare them as variables or use a built-in "
            "(%(builtins)s).",
            code="unknown_slot",
            params={
                "slots": ", ".join("{{" + slot + "}}" for slot in unknown),
                "builtins": ", ".join(sorted(BUILTIN_SLOTS)),
            },
        )


def validate_values(declared: Iterable[str], values: object) -> dict[str, str]:
    """Check brief variables against the declared names: none missing, none unknown, all text."""
    if not isinstance(values, Mapping):
        raise ValidationError("Variables must be an object of name → text.", code="invalid_values")
    declared = set(declared)
    missing = sorted(declared - values.keys())
    unknown = sorted(values.keys() - declared)
    errors = []
    if missing:
        errors.append(
            ValidationError(f"Missing variable(s): {', '.join(missing)}.", code="missing")
        )
    if unknown:
        errors.append(
            ValidationError(
                f"Unknown variable(s): {', '.join(map(str, unknown))}; "
                f"the template declares: {', '.join(sorted(declared)) or 'none'}.",
                code="unknown",
            )
        )
    for name, value in values.items():
        if not isinstance(value, str):
            errors.append(ValidationError(f"Variable {name} must be text.", code="not_text"))
        elif len(value) > MAX_VALUE:
            errors.append(
                ValidationError(f"Variable {name} is longer than {MAX_VALUE} characters.")
            )
    if errors:
        raise ValidationError(errors)
    return dict(values)


def render(body: str, values: Mapping[str, str]) -> str:
    """Fill every `{{name}}` slot from `values`; a slot without a value is an error."""
    template_slots(body)

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise ValidationError(f"No value for slot {{{{{name}}}}}.", code="missing")
        return str(values[name])

    return SLOT.sub(lookup, body)
