"""Encodings of the drift service's state in JSON: no pickle anywhere.

Numeric arrays are their little-endian bytes in base64 (exact, NaN and
infinities included, and cheap to encode: a JSON list of floats would lose
neither but cost ten times as much and refuses NaN); string columns are
JSON lists, with "" for a missing value (what scoring reads as missing,
like None and NaN). Anything that does not decode raises StateError, which
the state store turns into a quarantined file.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

_FLOAT, _INT, _UINT = np.dtype("<f8"), np.dtype("<i8"), np.dtype("<u8")


class StateError(Exception):
    """A state file or record that cannot be read: corrupt, truncated, or of
    an unknown format version."""


def _encode(values: np.ndarray, dtype: np.dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _decode(text: Any, dtype: np.dtype, what: str) -> np.ndarray:
    if not isinstance(text, str):
        raise StateError(f"{what}: expected base64 text, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StateError(f"{what}: not base64 ({exc})") from None
    if len(raw) % dtype.itemsize:
        raise StateError(f"{what}: {len(raw)} bytes is not a whole number of values")
    # A copy: arrays from frombuffer are read-only, and state arrays are written to.
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))


def floats_to_text(values: np.ndarray) -> str:
    return _encode(values, _FLOAT)


def text_to_floats(text: Any, what: str = "floats") -> np.ndarray:
    return _decode(text, _FLOAT, what)


def ints_to_text(values: np.ndarray) -> str:
    return _encode(values, _INT)


def text_to_ints(text: Any, what: str = "integers") -> np.ndarray:
    return _decode(text, _INT, what)


def uints_to_text(values: np.ndarray) -> str:
    return _encode(values, _UINT)


def text_to_uints(text: Any, what: str = "keys") -> np.ndarray:
    return _decode(text, _UINT, what)


def strings_to_list(values: np.ndarray) -> list[str]:
    """A string column as a JSON list: None, "" and NaN (missing) become ""."""
    objects = np.asarray(values, dtype=object)
    listed = objects.tolist()
    if all(type(v) is str for v in listed):  # the usual case (ids and categories from protos): nothing to fix
        return listed
    missing = np.equal(objects, None) | np.equal(objects, "") | np.not_equal(objects, objects)
    return np.where(missing, "", objects.astype(str)).tolist()


def list_to_strings(values: Any, what: str = "strings") -> np.ndarray:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise StateError(f"{what}: expected a list of strings")
    return np.array(values, dtype=object)


def require(data: Any, fields: tuple[str, ...], what: str) -> dict:
    """`data` as a dict holding `fields`, or StateError naming what is missing."""
    if not isinstance(data, dict):
        raise StateError(f"{what}: expected an object, got {type(data).__name__}")
    missing = [f for f in fields if f not in data]
    if missing:
        raise StateError(f"{what}: missing {', '.join(missing)}")
    return data


def integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(f"{what}: expected an integer")
    return value


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"{what}: expected a number")
    return float(value)
