"""QuickBooks' rules for names: forbidden characters, maximum lengths, and suffixes for taken names."""

from __future__ import annotations

import re

from engine.errors import RecordRejectedError

DISPLAY_NAME_MAX = 500
ITEM_NAME_MAX = 100
DOC_NUMBER_MAX = 21

#: Colon separates levels in FullyQualifiedName ("Parent:Job"); tab and newlines are refused outright.
_FORBIDDEN = re.compile(r"[:\t\r\n]")
_SPACES = re.compile(r" {2,}")


def clean_name(name: str) -> str:
    """`name` with each colon, tab and line break replaced by a space, runs of spaces collapsed, ends trimmed.

    Replacing rather than rejecting keeps "ACME: West" syncable as "ACME West"; the function is
    idempotent, so the QuickBooks value read back maps to itself and the sync settles.
    """
    return _SPACES.sub(" ", _FORBIDDEN.sub(" ", name)).strip()


def checked_name(name: str, *, what: str, element: str, max_length: int) -> str:
    """The cleaned name, or RecordRejectedError when it is empty or longer than QuickBooks allows."""
    cleaned = clean_name(name)
    if not cleaned:
        raise RecordRejectedError(f"{what}: QuickBooks requires a {element}", code="ledgersync.required")
    return checked_length(cleaned, what=what, element=element, max_length=max_length)


def checked_length(value: str, *, what: str, element: str, max_length: int) -> str:
    # Rejected rather than truncated: a silent cut can collide with another name or lose meaning.
    if len(value) > max_length:
        raise RecordRejectedError(
            f"{what}: {element} is {len(value)} characters; QuickBooks allows at most {max_length}",
            code="ledgersync.too_long",
        )
    return value


def suffixed_name(name: str, attempt: int, *, max_length: int = DISPLAY_NAME_MAX) -> str:
    """The name to try on `attempt` under the `suffix` duplicate-name policy.

    Attempt 1 is the cleaned name itself; attempt n >= 2 is "name (n)". The base is shortened (never the
    suffix) so the result fits `max_length`: suffixed_name("Amélie O'Brien", 2) == "Amélie O'Brien (2)".
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    base = clean_name(name)
    if attempt == 1:
        return base[:max_length].rstrip()
    suffix = f" ({attempt})"
    if len(suffix) >= max_length:
        raise ValueError(f"max_length {max_length} leaves no room for a name before {suffix!r}")
    return base[: max_length - len(suffix)].rstrip() + suffix
