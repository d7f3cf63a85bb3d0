"""Checks every service applies to what callers send, before any work is sized by it.

Identifiers (store, medication and model names, aliases, job and run ids) are
at most MAX_ID_LENGTH characters of printable text: no control characters
(C0, DEL, C1), no invisible format or bidi-override characters (U+200B..U+200F,
U+202A..U+202E, U+2060..U+206F, U+061C, U+FEFF), no line or paragraph
separators, and no leading or trailing whitespace. Free text that is stored
(reasons, notes) is cut to MAX_TEXT_LENGTH. Error messages quote a caller's
value through `quote`, which keeps at most QUOTE_CHARS characters of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rxcast.runtime.errors import InvalidArgument

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 2_000
QUOTE_CHARS = 64

#: Characters no identifier may hold (see the module docstring).
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """`value`'s repr, of at most `limit` characters of it, saying how much was left out."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


def identifier_problem(value: str, max_length: int = MAX_ID_LENGTH) -> str | None:
    """What is wrong with `value` as an identifier, or None."""
    if len(value) > max_length:
        return f"at most {max_length} characters, got {len(value)}"
    if not value.strip():
        return "must not be empty"
    if FORBIDDEN.search(value):
        return "must not contain control, invisible or bidi-format characters"
    if value.strip() != value:
        return "must not start or end with whitespace"
    return None


def identifier(value: str, field: str, max_length: int = MAX_ID_LENGTH) -> str:
    """`value` if it is a valid identifier; InvalidArgument naming `field` otherwise."""
    problem = identifier_problem(value, max_length)
    if problem is not None:
        raise InvalidArgument(f"{field}: {problem}" + ("" if "got" in problem else f", got {quote(value)}"))
    return value


def optional_identifier(value: str, field: str, max_length: int = MAX_ID_LENGTH) -> str:
    """ "" or a valid identifier."""
    return value if value == "" else identifier(value, field, max_length)


def identifiers(values: Iterable[str], field: str, max_length: int = MAX_ID_LENGTH) -> list[str]:
    """Every value a valid identifier, else InvalidArgument naming the first bad one's index."""
    values = list(values)
    for i, value in enumerate(values):
        # Cheap test first: the regex only runs on values that pass it.
        if len(value) > max_length or not value or FORBIDDEN.search(value) or value.strip() != value:
            identifier(value, f"{field}[{i}]", max_length)
    return values


def clip_text(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """Free text to store: control characters but newline and tab dropped, cut to `limit` characters."""
    cleaned = FORBIDDEN.sub(lambda m: m.group() if m.group() in "\n\t" else "", text[: limit * 2])
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def lengths_at_most(values: Sequence[str], field: str, max_length: int = MAX_ID_LENGTH) -> None:
    """InvalidArgument naming the first value longer than `max_length`: the cheap check
    for columns too long to run `identifiers` over on every call."""
    if values and max(map(len, values)) > max_length:
        i = next(i for i, v in enumerate(values) if len(v) > max_length)
        raise InvalidArgument(f"{field}[{i}]: at most {max_length} characters, got {len(values[i])}")
