"""QuickBooks webhook bodies: the `intuit-signature` check and parsing CloudEvents and legacy payloads.

Pure functions, no I/O. Verification works on the raw body bytes exactly as received, never on
re-serialized JSON. Parsing never raises: a body it cannot read comes back as a `ParsedWebhook` whose
`problems` say why, because QuickBooks holds every later event behind one we refuse (facts 9.4), so the
receiver acknowledges what it cannot use and keeps it for a human.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SIGNATURE_HEADER = "intuit-signature"

#: CloudEvents operation words (`qbo.<entity>.<word>.v1`) -> the legacy operation names.
OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "void": "Void",
    "voided": "Void",  # seen in one third-party fixture; Intuit's portal says "void"
    "emailed": "Emailed",
}
_LEGACY_OPERATIONS = frozenset(OPERATIONS.values())

#: QuickBooks' entity names, so a lowercase CloudEvents type maps back to the name the API uses.
ENTITY_NAMES = {
    name.lower(): name
    for name in [
        "Account",
        "Bill",
        "BillPayment",
        "Budget",
        "Class",
        "CreditMemo",
        "Currency",
        "Customer",
        "Department",
        "Deposit",
        "Employee",
        "Estimate",
        "Invoice",
        "Item",
        "JournalCode",
        "JournalEntry",
        "Payment",
        "PaymentMethod",
        "Preferences",
        "Purchase",
        "PurchaseOrder",
        "RefundReceipt",
        "SalesReceipt",
        "TaxAgency",
        "Term",
        "TimeActivity",
        "Transfer",
        "Vendor",
        "VendorCredit",
        "ChangeOrder",
        "CompanyCurrency",
    ]
}


@dataclass(frozen=True)
class Notification:
    """One change QuickBooks told us about: ids only, never the record itself."""

    realm_id: str
    #: QuickBooks' entity name ("Customer", "Invoice"...).
    entity: str
    entity_id: str
    #: Create, Update, Delete, Merge, Void or Emailed.
    operation: str
    last_updated: datetime | None = None
    #: On a Merge: the record merged away (the surviving one is `entity_id`).
    deleted_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class ParsedWebhook:
    """What a body held: the notifications that could be read, and why the rest could not."""

    notifications: tuple[Notification, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def malformed(self) -> bool:
        """Nothing usable in it at all (an empty but well-formed body is not malformed)."""
        return bool(self.problems) and not self.notifications

    @property
    def error(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


def sign(body: bytes, verifier_token: str) -> str:
    """The `intuit-signature` value for `body`: base64(HMAC-SHA256(key=verifier token, msg=raw body))."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def decode_signature(signature: str | None) -> bytes | None:
    """The digest an `intuit-signature` header carries; None when it is missing or not base64."""
    if not signature:
        return None
    try:
        return base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


class SignatureCheck:
    """The signature check fed chunk by chunk, so a body of any size is verified without holding it."""

    def __init__(self, verifier_token: str) -> None:
        self._usable = bool(verifier_token)
        self._mac = hmac.new(verifier_token.encode("utf-8"), digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def matches(self, signature: str | None) -> bool:
        """Whether `signature` signs exactly the bytes fed so far, compared in constant time."""
        given = decode_signature(signature)
        if given is None or not self._usable:
            return False
        return hmac.compare_digest(given, self._mac.digest())


def verify_signature(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Whether `signature` is QuickBooks' signature of exactly these bytes, compared in constant time."""
    check = SignatureCheck(verifier_token)
    check.update(body)
    return check.matches(signature)


def parse_webhook(body: bytes) -> ParsedWebhook:
    """Read a CloudEvents array or a legacy `eventNotifications` object; never raises."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: bad JSON, an integer of 4,300+ digits
        return ParsedWebhook(problems=(f"body is not UTF-8 JSON: {_clip(str(exc))}",))
    except RecursionError:
        return ParsedWebhook(problems=("body is JSON nested too deeply to read",))
    try:
        return _interpret(payload)
    except Exception as exc:
        # A shape the rules below did not foresee: QuickBooks would re-send it and hold every later
        # event behind it, so it is reported as unreadable like any other malformed body.
        return ParsedWebhook(problems=(f"body could not be read: {type(exc).__name__}",))


def _interpret(payload: Any) -> ParsedWebhook:
    if isinstance(payload, list):
        return _parse_all(payload, _cloud_event, "event")
    if isinstance(payload, Mapping) and "eventNotifications" in payload:
        return _parse_legacy(payload["eventNotifications"])
    if isinstance(payload, Mapping) and "specversion" in payload:
        return _parse_all([payload], _cloud_event, "event")  # a lone CloudEvent, not wrapped in a list
    return ParsedWebhook(
        problems=(f"neither a CloudEvents array nor an eventNotifications object: {type(payload).__name__}",)
    )


class _BadEventError(ValueError):
    pass


#: Problems named one by one; past these a body full of bad events is summed up, not listed.
_PROBLEMS_MAX = 20


def _parse_all(items: list[Any], parse: Any, what: str) -> ParsedWebhook:
    notifications: list[Notification] = []
    problems: list[str] = []
    bad = 0
    for n, item in enumerate(items):
        try:
            notifications.extend(parse(item))
        except _BadEventError as exc:
            bad += 1
            if bad <= _PROBLEMS_MAX:
                problems.append(f"{what} {n}: {exc}")
    if bad > _PROBLEMS_MAX:
        problems.append(f"and {bad - _PROBLEMS_MAX} more unreadable")
    return ParsedWebhook(tuple(notifications), tuple(problems))


def _cloud_event(event: Any) -> list[Notification]:
    if not isinstance(event, Mapping):
        raise _BadEventError("not an object")
    parts = _text(event, "type").split(".")
    if len(parts) < 3 or parts[0] != "qbo":
        raise _BadEventError(f"type {_shown(event.get('type'))} is not qbo.<entity>.<operation>.v1")
    operation = OPERATIONS.get(parts[2].lower())
    if operation is None:
        raise _BadEventError(f"unknown operation {_shown(parts[2])} in type {_shown(event.get('type'))}")
    data = event.get("data")
    deleted = data.get("deletedid") if isinstance(data, Mapping) else None
    return [
        Notification(
            realm_id=_text(event, "intuitaccountid"),
            entity=ENTITY_NAMES.get(parts[1].lower(), parts[1]),
            entity_id=_text(event, "intuitentityid"),
            operation=operation,
            last_updated=_moment(event.get("time")),
            deleted_id=_optional_text(deleted),
            event_id=_optional_text(event.get("id")),
        )
    ]


def _parse_legacy(notifications: Any) -> ParsedWebhook:
    if not isinstance(notifications, list):
        return ParsedWebhook(problems=("eventNotifications is not a list",))
    return _parse_all(notifications, _legacy_notification, "notification")


def _legacy_notification(notification: Any) -> list[Notification]:
    if not isinstance(notification, Mapping):
        raise _BadEventError("not an object")
    realm = _text(notification, "realmId")
    change = notification.get("dataChangeEvent")
    entities = change.get("entities") if isinstance(change, Mapping) else None
    if not isinstance(entities, list):
        raise _BadEventError("dataChangeEvent.entities is missing")
    out = []
    for entity in entities:
        if not isinstance(entity, Mapping):
            raise _BadEventError("an entity is not an object")
        operation = _text(entity, "operation")
        if operation not in _LEGACY_OPERATIONS:
            raise _BadEventError(f"unknown operation {_shown(operation)}")
        deleted = entity.get("deletedId")
        out.append(
            Notification(
                realm_id=realm,
                entity=_text(entity, "name"),
                entity_id=_text(entity, "id"),
                operation=operation,
                last_updated=_moment(entity.get("lastUpdated")),
                deleted_id=_optional_text(deleted),
            )
        )
    return out


def _text(obj: Mapping[str, Any], key: str) -> str:
    text = _optional_text(obj.get(key))
    if text is None:
        raise _BadEventError(f"{key} is missing")
    return text


def _optional_text(value: Any) -> str | None:
    """An id or name as text; None when absent, blank, or not a string or integer (an object, a list,
    a boolean, a float: none of them is an id, and turning a deep one into text could overflow)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None


#: How much of a bad value a problem quotes: enough to recognise it, never a whole body.
_SHOWN_MAX = 80


def _shown(value: Any) -> str:
    """A value quoted in a problem: scalars as they are, clipped; anything else by its type only."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return _clip(repr(value))
    return f"<{type(value).__name__}>"


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def _moment(value: Any) -> datetime | None:
    """An event time (UTC, up to nanoseconds, a trailing Z); None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        # Python reads at most microseconds: cut longer fractions (CloudEvents may send nanoseconds).
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
