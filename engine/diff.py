"""Which canonical fields differ between two records (deepdiff over normalized values, field by field)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff

from engine.normalize import normalize_value

_MISSING = object()
_NESTED = (tuple, list, dict)


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    """Top-level fields whose normalized values differ; a field missing on one side counts as changed.

    Each field is compared on its own. Comparing the two dicts whole let deepdiff's
    `threshold_to_diff_deeper` report a dict sharing under a third of its keys as one replaced value
    with no affected field at all: a sparse base then hid every edit. Nested values (addresses, lines)
    are compared to the bottom (`threshold_to_diff_deeper=0`), whatever they share.
    """
    changed: set[str] = set()
    for name in before.keys() | after.keys():
        old, new = before.get(name, _MISSING), after.get(name, _MISSING)
        if old is _MISSING or new is _MISSING:
            changed.add(name)
            continue
        if old == new and type(old) is type(new):
            continue  # equal as they are, so equal normalized: most fields, at a fraction of the cost
        a, b = normalize_value(name, old), normalize_value(name, new)
        if a == b and type(a) is type(b):
            continue  # the common case, without deepdiff's cost
        if not isinstance(a, _NESTED) and not isinstance(b, _NESTED):
            changed.add(name)  # two different plain values: nothing for deepdiff to look into
            continue
        if DeepDiff(a, b, ignore_order=False, threshold_to_diff_deeper=0):
            changed.add(name)
    return frozenset(changed)
