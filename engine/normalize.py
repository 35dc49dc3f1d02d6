"""Normalization of canonical field values, so equal meaning compares equal.

Comparison only: the reconciler compares normalized values but writes the winner's own (raw) value,
so a phone typed as "(555) 010-2000" is not rewritten as digits on the other side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from engine.model import CENT

_SPACES = re.compile(r"\s+")
_PHONE_NOISE = re.compile(r"[^\d+]")
_REF_KEYS = frozenset({"entity", "id", "side"})

#: Fields compared case-insensitively (e-mail addresses).
CASELESS = frozenset({"email"})
#: Fields compared by their digits only (phone numbers).
PHONES = frozenset({"phone"})
#: Decimal fields that are not money (kept at their own scale, trailing zeros dropped).
QUANTITIES = frozenset({"quantity"})


def normalize_text(value: str) -> str | None:
    text = _SPACES.sub(" ", value).strip()
    return text or None


def normalize_phone(value: str) -> str | None:
    digits = _PHONE_NOISE.sub("", value)
    if digits.startswith("+1") and len(digits) == 12:
        digits = digits[2:]  # a North American number written with its country code
    return digits or None


#: Values that are their own comparable form (bool is an int); tested first, being the most common
#: after text, and before the Mapping ABC check, which costs several times more for them.
_AS_IS = (bool, int, float, date, type(None))


def normalize_value(field: str, value: Any) -> Any:
    """The comparable form of one field value (nested values are normalized recursively)."""
    if isinstance(value, _AS_IS):
        return value
    if isinstance(value, str):
        if field in PHONES:
            return normalize_phone(value)
        text = normalize_text(value)
        return text.casefold() if text is not None and field in CASELESS else text
    if isinstance(value, Decimal):
        if field in QUANTITIES:
            return value.normalize() if value != 0 else Decimal(0)
        return value.quantize(CENT)
    if isinstance(value, Mapping):
        if _REF_KEYS.issuperset(value.keys()) and "id" in value:
            return tuple(sorted((k, str(v) if v is not None else None) for k, v in value.items()))
        normalized = {k: normalize_value(k, v) for k, v in value.items()}
        return tuple(sorted(normalized.items())) if any(v is not None for v in normalized.values()) else None
    if isinstance(value, list | tuple):
        items = tuple(normalize_value(field, v) for v in value)
        if field == "lines" and all(isinstance(v, str) for v in value):
            items = tuple(v for v in items if v is not None)  # address lines: blanks mean nothing
        return items
    return value


def normalize_fields(fields: Mapping[str, Any], names: frozenset[str] | None = None) -> dict[str, Any]:
    """Normalize every field (or only `names`) of a canonical record."""
    return {k: normalize_value(k, v) for k, v in fields.items() if names is None or k in names}
