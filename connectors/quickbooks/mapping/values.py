"""Value conversions shared by the entity mappings: money, numbers, dates, text, references, versions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from engine.errors import RecordRejectedError
from engine.model import CENT, EntityType, Ref, Side, Version

JsonDict = dict[str, Any]

#: QuickBooks amounts hold at most 15 digits; beyond that a float would not carry them exactly either.
MAX_DIGITS = 15


def obj(value: Any) -> Mapping[str, Any]:
    """A nested QBO object, or an empty one when absent or of the wrong shape (tolerant reads)."""
    return value if isinstance(value, Mapping) else {}


def text(value: Any) -> str | None:
    """A QBO string: absent, null and "" all mean "no value"."""
    if value is None:
        return None
    result = str(value)
    return result if result.strip() else None


def money(value: Any, element: str) -> Decimal | None:
    """A QBO JSON number as Decimal with exact cents (via str(), so 0.1 stays 0.1, not its float bits)."""
    number = decimal_of(value, element)
    return None if number is None else number.quantize(CENT, rounding=ROUND_HALF_UP)


def decimal_of(value: Any, element: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RecordRejectedError(f"QuickBooks sent a boolean for {element}", code="ledgersync.malformed")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise RecordRejectedError(
            f"QuickBooks sent {value!r} for {element}, not a number", code="ledgersync.malformed"
        ) from exc
    if not number.is_finite():
        raise RecordRejectedError(f"QuickBooks sent {value!r} for {element}", code="ledgersync.malformed")
    return number


def number(value: Decimal, what: str) -> float:
    """A Decimal as a JSON number for a request body; exact because QuickBooks caps amounts at 15 digits."""
    digits = len(value.normalize().as_tuple().digits) if value else 1
    if digits > MAX_DIGITS:
        raise RecordRejectedError(
            f"{what}: {value} has more than {MAX_DIGITS} digits, which QuickBooks cannot store",
            code="ledgersync.too_long",
        )
    return float(value)


def day(value: Any, element: str) -> date | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise RecordRejectedError(
            f"QuickBooks sent {raw!r} for {element}, not a date", code="ledgersync.malformed"
        ) from exc


def ref_in(entity: EntityType, value: Any) -> dict[str, Any] | None:
    """A QBO reference object ({"value": id, "name": ...}) as a canonical Ref dict in QuickBooks ids."""
    ref_id = text(obj(value).get("value"))
    return None if ref_id is None else {"entity": entity, "id": ref_id, "side": Side.QUICKBOOKS}


def ref_id(value: Any, entity: EntityType, what: str) -> str:
    """The QuickBooks Id inside a canonical Ref (a dict or a Ref), checked to be a QuickBooks id."""
    ref = value if isinstance(value, Ref) else Ref.model_validate(value)
    if ref.entity is not entity:
        raise ValueError(f"{what}: expected a {entity} reference, got a {ref.entity} reference")
    if ref.side is not Side.QUICKBOOKS:
        # The caller must translate link refs with engine.refs.to_side before mapping.
        raise ValueError(f"{what}: reference {ref.id!r} is not a QuickBooks id (side={ref.side})")
    return ref.id


def ref_out(ref_value: str) -> JsonDict:
    return {"value": ref_value}


def version_of(qbo: Mapping[str, Any]) -> Version:
    """Version(seq=SyncToken, at=MetaData.LastUpdatedTime) of a QBO object."""
    name = f"QuickBooks record {qbo.get('Id')!r}"
    token = text(qbo.get("SyncToken"))
    if token is None or not token.isdigit():
        raise RecordRejectedError(f"{name} has no valid SyncToken ({token!r})", code="ledgersync.malformed")
    stamp = text(obj(qbo.get("MetaData")).get("LastUpdatedTime"))
    try:
        at = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise RecordRejectedError(
            f"{name} has no valid MetaData.LastUpdatedTime ({stamp!r})", code="ledgersync.malformed"
        )
    return Version(seq=int(token), at=at)


def is_deleted(qbo: Mapping[str, Any]) -> bool:
    """CDC reports a deleted transaction as {"Id", "status": "Deleted", "MetaData"} with no fields."""
    return str(qbo.get("status", "")).casefold() == "deleted"


def sync_token(value: int | str) -> str:
    token = str(value)
    if not token.isdigit():
        raise ValueError(f"SyncToken must be a non-negative integer, got {value!r}")
    return token


def target(external_id: str, token: int | str) -> JsonDict:
    """The {"Id", "SyncToken"} pair every update, delete and void body starts with."""
    if not str(external_id).strip():
        raise ValueError("a QuickBooks Id is required")
    return {"Id": str(external_id), "SyncToken": sync_token(token)}


def customer_ref_into(body: JsonDict, fields: Mapping[str, Any], what: str, *, create: bool) -> None:
    """Set CustomerRef on a transaction body; QuickBooks rejects a transaction without one."""
    if "customer" in fields or create:
        if fields.get("customer") is None:
            raise RecordRejectedError(
                f"{what}: QuickBooks requires a customer (CustomerRef)", code="ledgersync.required"
            )
        body["CustomerRef"] = ref_out(ref_id(fields["customer"], EntityType.CUSTOMER, f"{what} customer"))
