"""What the QuickBooks client counts per request: entity, operation and status, 429s, budget waits."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from connectors.quickbooks.budget import RateBudget
from engine.observe.counters import Increment
from engine.observe.families import Family, gauge
from engine.state import Connection

REQUESTS = "quickbooks_requests"
THROTTLED = "quickbooks_throttled"
BUDGET_WAIT_SECONDS = "quickbooks_budget_wait_seconds"

#: QuickBooks' entity names as its paths spell them (lower case); others are labelled as spelled.
#: The counters the client adds to: name -> (help, labels), for /metrics.
COUNTERS = {
    REQUESTS: (
        "QuickBooks API requests by entity, operation and HTTP status (or transport_error)",
        ("connection", "entity", "operation", "status"),
    ),
    THROTTLED: ("QuickBooks answers 429 (throttled)", ("connection",)),
    BUDGET_WAIT_SECONDS: ("Seconds requests waited for the shared rate budget", ("connection",)),
}

_KNOWN = ("Customer", "Item", "Invoice", "Payment", "SalesReceipt", "CreditMemo", "Account", "TaxCode")
_NAMES = {name.lower(): name for name in _KNOWN}
_FROM = re.compile(rb"(?i)\bfrom\s+(\w+)")


def request_labels(
    method: str, path: str, params: Mapping[str, str] | None, content: bytes | None
) -> tuple[str, str]:
    """(entity, operation) of one API call: ("Customer", "create"), ("Invoice", "query"), ("", "cdc")."""
    parts = [p for p in path.split("/") if p]
    resource = parts[0] if parts else ""
    if resource == "cdc":
        return (params or {}).get("entities", ""), "cdc"
    if resource == "batch":
        return "", "batch"
    if resource == "query":
        found = _FROM.search(content or b"")
        return (
            _NAMES.get(found.group(1).decode().lower(), found.group(1).decode()) if found else ""
        ), "query"
    entity = _NAMES.get(resource, resource)
    if method == "GET":
        return entity, "read"
    operation = (params or {}).get("operation")
    if operation == "update" and (params or {}).get("include") == "void":
        return entity, "void"
    return entity, operation or "create"


def request_counts(
    connection: str, entity: str, operation: str, status: str, waited: float
) -> list[Increment]:
    """The increments one answered (or failed) request makes."""
    increments = [
        Increment(
            REQUESTS, {"connection": connection, "entity": entity, "operation": operation, "status": status}
        )
    ]
    if status == "429":
        increments.append(Increment(THROTTLED, {"connection": connection}))
    if waited > 0:
        increments.append(Increment(BUDGET_WAIT_SECONDS, {"connection": connection}, waited))
    return increments


def metered_families(connections: Sequence[Connection], budget: RateBudget, quota: int) -> list[Family]:
    """This month's metered reads per connection (by kind, and "total") and the plan's quota."""
    reads = gauge("quickbooks_metered_reads", "Metered QuickBooks reads this month", ("connection", "kind"))
    limit = gauge("quickbooks_metered_read_quota", "Metered reads the plan includes per month")
    for connection in connections:
        if connection.realm_id is None:
            continue
        for kind, n in budget.metered_reads(connection.realm_id).items():
            reads.samples.append(((connection.id, kind), n))
        limit.samples.append(((connection.id,), quota))
    return [reads, limit]
