"""rxcast.runtime.validation: identifiers, bounded quotes, stored text."""

from __future__ import annotations

import pytest

from rxcast.runtime import validation
from rxcast.runtime.errors import InvalidArgument


@pytest.mark.parametrize("good", ["store_1", "Médecine du Nord", "a" * 128, "x.y-z:1"])
def test_printable_identifiers_pass(good):
    assert validation.identifier(good, "store_id") == good


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x\n", "control"),
        ("a\x00b", "control"),
        ("a\rb", "control"),
        ("\u202eevil", "bidi"),
        ("zero\u200bwidth", "invisible"),
        (" padded", "whitespace"),
        ("a" * 129, "at most 128 characters, got 129"),
    ],
)
def test_bad_identifiers_are_invalid_argument_naming_the_field(bad, problem):
    with pytest.raises(InvalidArgument, match=r"^store_id: ") as info:
        validation.identifier(bad, "store_id")
    assert problem in info.value.message


def test_a_list_names_the_first_bad_index_and_quotes_a_bounded_prefix():
    with pytest.raises(InvalidArgument) as info:
        validation.identifiers(["ok", "fine", "x\n" + "y" * 60_000], "keys.store_ids", max_length=100_000)
    assert info.value.message.startswith("keys.store_ids[2]: ")
    assert len(info.value.message) < 300
    assert "(60002 characters)" in info.value.message


def test_lengths_are_checked_without_building_arrays():
    validation.lengths_at_most(["a", "b"], "rows.keys.store_ids")
    with pytest.raises(InvalidArgument, match=r"rows.keys.store_ids\[1\]: at most 128 characters, got 60000"):
        validation.lengths_at_most(["a", "x" * 60_000], "rows.keys.store_ids")


def test_stored_text_is_cut_and_keeps_newlines():
    assert validation.clip_text("line one\nline\ttwo\x00") == "line one\nline\ttwo"
    cut = validation.clip_text("r" * 1_000_000)
    assert len(cut) == validation.MAX_TEXT_LENGTH and cut.endswith("…")
