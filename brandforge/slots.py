"""Provides the `{{name}}` slot syntax shared by prompt templates and layout text."""

import re

# A slot is {{name}}: lowercase letters, digits and _, at most 40 characters. Text is filled by
# substitution with these patterns, never with str.format on text a user wrote.
SLOT = re.compile(r"\{\{\s*([a-z_][a-z0-9_]{0,39})\s*\}\}")
SLOT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")


def malformed_slot(text: str) -> str | None:
    """The first braces in ``text`` that are not a well-formed slot (for the error), or None."""
    stray = SLOT.sub("", text)
    if "{{" not in stray and "}}" not in stray:
        return None
    bad = re.search(r"\{\{[^}]{0,40}\}?\}?|\}\}", stray)
    return bad.group(0) if bad else "{{"
