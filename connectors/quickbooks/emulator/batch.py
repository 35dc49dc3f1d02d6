"""The batch endpoint: up to N items run in turn, each answered on its own, none seeing the others."""

from __future__ import annotations

from typing import Any

from connectors.quickbooks.emulator import faults, query, records
from connectors.quickbooks.emulator.context import ENTITIES, Context, blank
from connectors.quickbooks.emulator.store import JsonDict


def bids(body: Any) -> list[str]:
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return []
    return [str(item.get("bId", "")) for item in items if isinstance(item, dict)]


def run(ctx: Context, body: Any) -> JsonDict:
    """Validate the whole request (size, bIds), then run every item; per-item failures are Faults in a 200."""
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise faults.required("BatchItemRequest")
    if len(items) > ctx.config.batch_max_items:
        raise faults.business(
            f"The number of batch items ({len(items)}) exceeds the maximum of {ctx.config.batch_max_items}."
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or blank(item.get("bId")):
            raise faults.required("bId")
        if str(item["bId"]) in seen:
            raise faults.business(f"Duplicate bId {item['bId']} in the batch request.")
        seen.add(str(item["bId"]))
    responses: list[JsonDict] = []
    with ctx.store.isolated_batch():
        for item in items:
            try:
                result = _run_item(ctx, item)
            except faults.QboFaultError as fault:
                result = {"Fault": fault.fault()}
            responses.append({"bId": str(item["bId"]), **result})
    return {"BatchItemResponse": responses}


def _run_item(ctx: Context, item: JsonDict) -> JsonDict:
    if "Query" in item:
        return {"QueryResponse": query.run(ctx, str(item["Query"]))}
    entity_keys = [key for key in item if key in ENTITIES]
    if len(entity_keys) != 1:
        raise faults.invalid_property("Each batch item must carry exactly one entity or a Query")
    entity = entity_keys[0]
    payload = item[entity]
    if not isinstance(payload, dict):
        raise faults.invalid_property(f"Property Name:{entity} specified is unsupported or invalid")
    operation = str(item.get("operation") or "create").lower()
    if operation == "create":
        return {entity: records.create(ctx, entity, payload)}
    if operation == "update":
        if item.get("optionsData") == "void":
            return {entity: records.void(ctx, entity, payload)}
        if blank(payload.get("Id")):
            raise faults.required("Id")
        return {entity: records.update(ctx, entity, payload)}
    if operation == "delete":
        return {entity: records.delete(ctx, entity, payload)}
    raise faults.invalid_enum(operation)
