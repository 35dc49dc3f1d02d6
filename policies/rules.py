"""Rules that relate a key to its value, which the schema's types cannot say on their own.

They read the raw (merged) data rather than the validated document, so a file with a typo elsewhere
still gets every problem reported in one pass.
"""

from __future__ import annotations

from typing import Any

from engine.configfile import Problem
from engine.model import QUICKBOOKS_COMPUTED, EntityType
from engine.plan import Direction

#: The only directions a field QuickBooks computes may have: it cannot be written to QuickBooks.
COMPUTED_DIRECTIONS = (Direction.QUICKBOOKS_TO_APP, Direction.NONE)


def check_rules(data: Any) -> list[Problem]:
    problems: list[Problem] = []
    for entity in EntityType:
        fields = _get(data, "entities", entity.value, "fields")
        for name in sorted(QUICKBOOKS_COMPUTED[entity]):
            direction = _get(fields, name, "direction")
            if direction in (Direction.BOTH, Direction.APP_TO_QUICKBOOKS):
                problems.append(
                    Problem(
                        ("entities", entity.value, "fields", name, "direction"),
                        f"QuickBooks computes {entity} {name}, so it cannot be written to QuickBooks; "
                        f"expected one of {', '.join(COMPUTED_DIRECTIONS)}; got {direction!r}",
                    )
                )
    return problems


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
