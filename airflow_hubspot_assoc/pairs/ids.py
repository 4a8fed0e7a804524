"""Record-id and type-id normalisation: one definition of a valid id shared by every reader.

HubSpot record ids are positive 64-bit integers that the API exchanges as strings. Ids reach us as
CSV text, JSON numbers or strings, Parquet integers or strings and Python values from XCom; they all
end up as canonical decimal strings here, so that duplicates compare equal ("007" and 7 are both "7").

The hot loops of the readers accept the common case (ASCII digits, no leading zero, at most 18
digits, so certainly <= 2**63 - 1) inline with :func:`is_canonical_id`'s test, and only call
:func:`normalise_id` for everything else; that keeps the per-row cost at a few string methods.
"""

from __future__ import annotations

from typing import Any

from airflow_hubspot_assoc.constants import CATEGORIES, MAX_PROPERTY_VALUE_CHARS, MAX_TYPE_ID
from airflow_hubspot_assoc.constants import MAX_RECORD_ID as MAX_ID

#: Ids with fewer digits than this cannot exceed ``MAX_ID``; longer ones need an integer comparison.
SAFE_DIGITS = 19
#: Longer raw texts are rejected before any conversion: no real id needs more, even zero-padded,
#: and refusing early keeps garbage (a whole swallowed file, say) out of int() and out of messages.
MAX_ID_CHARS = 64


class InvalidValueError(ValueError):
    """A single value is unusable; ``reason`` is the text shown to the user (the caller adds where)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def is_canonical_id(text: str) -> bool:
    """Whether ``text`` is already a valid, normalised id (the cheap test the readers inline)."""
    return text.isascii() and text.isdigit() and text[0] != "0" and len(text) < SAFE_DIGITS


def shorten(value: Any, limit: int = 40) -> str:
    """A repr short enough for a message, so that a huge bad value cannot flood logs."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalise_id(value: object) -> str:
    """Return ``value`` as a canonical id string or raise :class:`InvalidValueError` saying why not.

    Accepted: ``int`` (not ``bool``) and strings of ASCII digits, optionally zero-padded and with
    surrounding whitespace. Floats are refused even when integral: a JSON or pandas float has
    already lost precision above 2**53, so "accepting 1.0" would silently corrupt large ids.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InvalidValueError("the id is empty")
        if len(text) > MAX_ID_CHARS:
            raise InvalidValueError(f"the id is too long ({len(text)} characters)")
        if not (text.isascii() and text.isdigit()):
            if text[0] in "+-" and text[1:].isascii() and text[1:].isdigit():
                if text[0] == "-" and text[1:].strip("0"):
                    raise InvalidValueError(f"{shorten(value)} is negative; record ids are positive")
                raise InvalidValueError(f"{shorten(value)} has a sign; write ids as plain digits")
            raise InvalidValueError(f"{shorten(value)} is not a record id (expected digits 0-9 only)")
        digits = text.lstrip("0")
        if not digits:
            raise InvalidValueError(f"{shorten(value)} is zero; record ids start at 1")
        if len(digits) >= SAFE_DIGITS and (len(digits) > SAFE_DIGITS or int(digits) > MAX_ID):
            raise InvalidValueError(f"{shorten(value)} is larger than the largest record id 2**63-1")
        return digits
    if isinstance(value, bool):
        # bool is an int subclass; True would otherwise slip through as id 1.
        raise InvalidValueError(f"{value!r} is a boolean, not a record id")
    if isinstance(value, int):
        if value <= 0:
            raise InvalidValueError(f"{value} is not positive; record ids start at 1")
        if value > MAX_ID:
            raise InvalidValueError(f"{shorten(value)} is larger than the largest record id 2**63-1")
        return str(value)
    if isinstance(value, float):
        raise InvalidValueError(
            f"{shorten(value)} is a floating-point number; write ids as integers or strings of digits "
            "(floats lose precision above 2**53)"
        )
    if value is None:
        raise InvalidValueError("the id is missing")
    raise InvalidValueError(f"a {type(value).__name__} is not a record id")


def normalise_key(value: object) -> str:
    """Return a business key (a property value such as an email) trimmed, or raise saying why not.

    Only text is a key: a JSON or Parquet number in an ``external_id`` column has lost its leading
    zeros or precision already, and would match another record than the one meant.
    """
    if not isinstance(value, str):
        if value is None:
            raise InvalidValueError("the key is missing")
        raise InvalidValueError(
            f"{shorten(value)} is a {type(value).__name__}, not a key; an id property's values are "
            "text, so write them as strings"
        )
    text = value.strip()
    if not text:
        raise InvalidValueError("the key is only whitespace" if value else "the key is empty")
    if len(text) > MAX_PROPERTY_VALUE_CHARS:
        raise InvalidValueError(
            f"the key is {len(text):,} characters long; HubSpot keeps at most "
            f"{MAX_PROPERTY_VALUE_CHARS:,} in a property value"
        )
    return text


def normalise_type_id(value: object) -> int | None:
    """Return a per-row association type id (None when empty) or raise :class:`InvalidValueError`."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) > MAX_ID_CHARS or not (text.isascii() and text.isdigit()):
            raise InvalidValueError(f"{shorten(value)} is not an association type id (expected digits 0-9)")
        number = int(text)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise InvalidValueError(f"{shorten(value)} is not an association type id (expected an integer)")
    if not 1 <= number <= MAX_TYPE_ID:
        raise InvalidValueError(f"{shorten(value)} is out of range for an association type id (1 to 2**31-1)")
    return number


def normalise_category(value: object) -> str | None:
    """Return a per-row association category, upper-cased (None when empty), or raise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValueError(f"{shorten(value)} is not an association category")
    text = value.strip().upper()
    if not text:
        return None
    if text not in CATEGORIES:
        raise InvalidValueError(
            f"{shorten(value)} is not an association category (one of {', '.join(sorted(CATEGORIES))})"
        )
    return text


def normalise_label(value: object) -> str | None:
    """Return a per-row association label, stripped (None when empty), or raise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValueError(f"{shorten(value)} is not an association label (expected text)")
    return value.strip() or None
