"""Which canonical fields differ between two records (deepdiff over normalized values)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepdiff import DeepDiff

from engine.normalize import normalize_fields


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    """Top-level fields whose normalized values differ; a field missing on one side counts as changed."""
    diff = DeepDiff(normalize_fields(before), normalize_fields(after), ignore_order=False)
    return frozenset(str(key) for key in diff.affected_root_keys)
