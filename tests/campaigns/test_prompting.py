"""Tests the safe {{slot}} renderer: no attribute access, unknown and missing names are errors."""

import pytest
from django.core.exceptions import ValidationError

from campaigns import prompting


def test_render_fills_slots_with_the_given_text_only():
    body = "A {{product}} for {{ brand }} in {{locale}}"
    out = prompting.render(body, {"product": "mug", "brand": "Acme", "locale": "en-GB"})
    assert out == "A mug for Acme in en-GB"


def test_values_are_not_rendered_again():
    assert prompting.render("{{a}}", {"a": "{{secret}}"}) == "{{secret}}"


@pytest.mark.parametrize(
    "body",
    [
        "{0.__class__}",
        "{product.__init__.__globals__}",
        "{{ product.__class__ }}",
        "{{product[0]}}",
        "{{ cycler.__init__ }}",
        "${product}",
    ],
)
def test_format_and_attribute_syntax_never_reaches_python_objects(body):
    """str.format-style fields stay literal text; dotted or indexed slots are rejected."""
    try:
        prompting.validate_template(body, ["product"])
    except ValidationError:
        return
    assert prompting.render(body, {"product": "mug"}) == body


def test_unknown_slot_is_named_in_the_error():
    with pytest.raises(ValidationError) as exc:
        prompting.validate_template("A {{prodcut}} on {{surface}}", ["product", "surface"])
    assert "{{prodcut}}" in exc.value.messages[0]


def test_builtin_slots_need_no_declaration():
    prompting.validate_template("{{brand}} {{locale}}", [])


def test_missing_and_unknown_values_are_reported_together():
    with pytest.raises(ValidationError) as exc:
        prompting.validate_values(["product", "mood"], {"product": "mug", "colour": "red"})
    text = " ".join(exc.value.messages)
    assert "Missing variable(s): mood" in text
    assert "Unknown variable(s): colour" in text


def test_render_refuses_a_slot_without_value():
    with pytest.raises(ValidationError):
        prompting.render("{{product}}", {})


def test_non_text_values_are_refused():
    with pytest.raises(ValidationError):
        prompting.validate_values(["n"], {"n": 3})
