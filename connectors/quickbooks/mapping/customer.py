"""Customer: QuickBooks JSON <-> canonical fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.quickbooks.mapping.context import MappingContext
from connectors.quickbooks.mapping.names import DISPLAY_NAME_MAX, checked_length, checked_name, clean_name
from connectors.quickbooks.mapping.values import JsonDict, obj, ref_out, text
from engine.errors import RecordRejectedError

ADDRESS_LINES = 5
#: Canonical address key -> QBO BillAddr key (the lines are Line1..Line5).
_ADDRESS = {
    "city": "City",
    "region": "CountrySubDivisionCode",
    "postal_code": "PostalCode",
    "country": "Country",
}
#: Canonical name parts -> QBO keys; they share DisplayName's forbidden characters.
_NAME_PARTS = {"given_name": "GivenName", "family_name": "FamilyName"}
EMAIL_MAX = 100
PHONE_MAX = 30


def to_canonical(qbo: Mapping[str, Any], ctx: MappingContext) -> dict[str, Any]:
    return {
        "display_name": text(qbo.get("DisplayName")) or "",
        "given_name": text(qbo.get("GivenName")),
        "family_name": text(qbo.get("FamilyName")),
        "company_name": text(qbo.get("CompanyName")),
        "email": text(obj(qbo.get("PrimaryEmailAddr")).get("Address")),
        "phone": text(obj(qbo.get("PrimaryPhone")).get("FreeFormNumber")),
        "billing_address": _address_in(qbo.get("BillAddr")),
        "notes": text(qbo.get("Notes")),
        "active": qbo.get("Active") is not False,  # absent means active
        "currency": _foreign(text(obj(qbo.get("CurrencyRef")).get("value")), ctx),
    }


def _foreign(currency: str | None, ctx: MappingContext) -> str | None:
    """A currency other than the company's home currency (None means the home currency)."""
    return None if currency == ctx.home_currency else currency


def _address_in(value: Any) -> dict[str, Any] | None:
    addr = obj(value)
    lines = tuple(line for n in range(1, ADDRESS_LINES + 1) if (line := text(addr.get(f"Line{n}"))))
    parts = {key: text(addr.get(qbo_key)) for key, qbo_key in _ADDRESS.items()}
    if not lines and all(v is None for v in parts.values()):
        return None  # only the read-only Id/Lat/Long, or nothing at all
    return {"lines": lines, **parts}


def to_qbo(fields: Mapping[str, Any], ctx: MappingContext, *, create: bool) -> JsonDict:
    """Map the given fields; on an update a cleared value is sent as "" (QuickBooks ignores absent keys)."""
    what = f"customer {fields['display_name']!r}" if "display_name" in fields else "customer"
    body: JsonDict = {}
    if "display_name" in fields:
        body["DisplayName"] = checked_name(
            fields["display_name"], what=what, element="DisplayName", max_length=DISPLAY_NAME_MAX
        )
    for key, qbo_key in _NAME_PARTS.items():
        if key in fields:
            _put(body, qbo_key, _clean_part(fields[key]), create)
    if "company_name" in fields:
        _put(body, "CompanyName", fields["company_name"], create)
    if "email" in fields:
        email = _limited(fields["email"], what, "PrimaryEmailAddr.Address", EMAIL_MAX)
        _put(body, "PrimaryEmailAddr", None if email is None else {"Address": email}, create, {"Address": ""})
    if "phone" in fields:
        phone = _limited(fields["phone"], what, "PrimaryPhone.FreeFormNumber", PHONE_MAX)
        _put(
            body,
            "PrimaryPhone",
            None if phone is None else {"FreeFormNumber": phone},
            create,
            {"FreeFormNumber": ""},
        )
    if "billing_address" in fields:
        _put(body, "BillAddr", _address_out(fields["billing_address"], what, create), create)
    if "notes" in fields:
        _put(body, "Notes", fields["notes"], create)
    if "active" in fields:
        body["Active"] = bool(fields["active"])
    if fields.get("currency") is not None:
        # Set once in QuickBooks: a change is refused there (fault 6000), so it is sent as is and parked.
        body["CurrencyRef"] = ref_out(ctx.check_currency(fields["currency"], what))
    return body


def _clean_part(value: str | None) -> str | None:
    return None if value is None else (clean_name(value) or None)


def _limited(value: str | None, what: str, element: str, max_length: int) -> str | None:
    return None if value is None else checked_length(value, what=what, element=element, max_length=max_length)


def _put(body: JsonDict, key: str, value: Any, create: bool, cleared: Any = "") -> None:
    if value is not None:
        body[key] = value
    elif not create:
        body[key] = cleared


def _address_out(address: Mapping[str, Any] | None, what: str, create: bool) -> JsonDict | None:
    if address is None:
        # A sparse update replaces BillAddr whole, so blanks clear it; a create simply leaves it out.
        return (
            None
            if create
            else {f"Line{n}": "" for n in range(1, ADDRESS_LINES + 1)} | dict.fromkeys(_ADDRESS.values(), "")
        )
    lines = [line for line in address.get("lines", ()) if line and line.strip()]
    if len(lines) > ADDRESS_LINES:
        raise RecordRejectedError(
            f"{what}: the billing address has {len(lines)} lines; QuickBooks allows {ADDRESS_LINES}",
            code="ledgersync.too_long",
        )
    out: JsonDict = {}
    for n in range(1, ADDRESS_LINES + 1):
        line = lines[n - 1] if n <= len(lines) else None
        if line is not None or not create:
            out[f"Line{n}"] = line or ""
    for key, qbo_key in _ADDRESS.items():
        value = address.get(key)
        if value is not None or not create:
            out[qbo_key] = value or ""
    return out or None
