"""Change data capture: everything changed since a moment, at most N objects, deletions as tombstones."""

from __future__ import annotations

import copy
import heapq
from datetime import datetime, timedelta

from connectors.quickbooks.emulator import faults
from connectors.quickbooks.emulator.clock import format_stamp, parse_moment
from connectors.quickbooks.emulator.context import ENTITIES, NOT_IN_CDC, Context
from connectors.quickbooks.emulator.store import JsonDict

_BY_LOWER = {name.lower(): name for name in ENTITIES}


def run(ctx: Context, entities_param: str | None, changed_since: str | None) -> JsonDict:
    """The `CDCResponse` list body (without the top-level `time`)."""
    if not entities_param or not entities_param.strip():
        raise faults.required("entities")
    if not changed_since or not changed_since.strip():
        raise faults.required("changedSince")
    wanted: list[str] = []
    for raw in entities_param.split(","):
        name = _BY_LOWER.get(raw.strip().lower())
        if name is None or name in NOT_IN_CDC:
            raise faults.invalid_property(f"Entity {raw.strip()} is not supported by change data capture")
        if name not in wanted:
            wanted.append(name)
    try:
        since = parse_moment(changed_since, ctx.config.tz)
    except ValueError:
        raise faults.invalid_property(
            f"Property Name:changedSince specified is unsupported or invalid: {changed_since}"
        ) from None
    now = ctx.clock.now()
    if since < now - timedelta(days=ctx.config.cdc_max_days):
        raise faults.QboFaultError(
            "6000",
            "A business validation error has occurred while processing your request",
            f"Operation cdc with changedSince date {changed_since} which is older than fixed days"
            " is not supported.",
        )
    # Copied once cut to the cap: a reader catching up on 100k changes asks a hundred times, and copying
    # every changed object each time made catching up grow with the square of the changes.
    changed: list[tuple[datetime, str, JsonDict]] = []
    for entity in wanted:
        for row in ctx.store.all(entity):
            if row.updated_at >= since:
                changed.append((row.updated_at, entity, row.data))
        for entity_id, deleted_at in ctx.store.tombstones.get(entity, {}).items():
            if deleted_at >= since:
                tombstone = {
                    "domain": "QBO",
                    "status": "Deleted",
                    "Id": entity_id,
                    "MetaData": {"LastUpdatedTime": format_stamp(deleted_at, ctx.config.tz)},
                }
                changed.append((deleted_at, entity, tombstone))
    # No paging: the oldest changes win, the rest are cut (nsmallest: sorted(...)[:n], without sorting all).
    oldest = heapq.nsmallest(ctx.config.cdc_max_objects, changed, key=lambda item: item[0])
    capped = [(at, name, copy.deepcopy(data)) for at, name, data in oldest]
    responses: list[JsonDict] = []
    for entity in wanted:
        objects = [data for _, name, data in capped if name == entity]
        if objects:
            responses.append({entity: objects, "startPosition": 1, "maxResults": len(objects)})
    return {"CDCResponse": [{"QueryResponse": responses or [{}]}]}
