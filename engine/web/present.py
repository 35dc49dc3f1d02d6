"""Values as an accountant reads them: money with its currency, dates in the company's time zone,
QuickBooks' own field labels, empty shown as empty; and a typed value checked against its field's type."""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from engine.model import MODELS, EntityType, Side, fields_to_json

EMPTY = "(empty)"
_DELETED = "_deleted"

#: Currencies written with their symbol; any other is written with its code after the amount.
SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£", "EUR": "€", "INR": "₹"}

#: How to type a value of each simple kind, shown next to the box.
HINTS = {
    "text": "Type the text exactly as it should read.",
    "money": "Type an amount, such as 1250.00.",
    "number": "Type a number, such as 2 or 1.5.",
    "date": "Type a date as YYYY-MM-DD, such as 2026-11-30.",
    "yes/no": "Type yes or no.",
    "choice": "Type one of: {choices}.",
    "structured": "Type the value as JSON (as shown in the API).",
}


def kind_of(entity: EntityType, name: str) -> str:
    """The field's kind: text, money, number, date, yes/no, choice or structured."""
    info = MODELS[entity].model_fields.get(name)
    if info is None:
        return "structured"
    annotation = _unwrap(info.annotation)
    if annotation is bool:
        return "yes/no"
    if annotation is date:
        return "date"
    if annotation is Decimal:
        return "money" if _is_money(info.annotation, info.metadata) else "number"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice"
    if annotation is str:
        return "text"
    return "structured"


def _is_money(annotation: Any, metadata: list[Any]) -> bool:
    # engine.model.Money is a Decimal kept to exact cents: its validator is what marks an amount.
    return "_cents" in repr(annotation) or any("_cents" in repr(m) for m in metadata)


def _unwrap(annotation: Any) -> Any:
    """`X | None` -> X; `Annotated[X, ...]` -> X."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else annotation
    return annotation


@dataclass(frozen=True)
class Presenter:
    currency: str = "USD"
    time_zone: str = "UTC"
    #: QuickBooks' own labels, by entity and canonical field name (given by the QuickBooks connector).
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Opens a record on one side: (side, entity, id) -> address, or None when there is no page for it.
    record_url: Callable[[Side, EntityType, str], str | None] | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def label(self, entity: EntityType | str, name: str) -> str:
        if name == _DELETED:
            return "Deleted"
        found = self.labels.get(str(entity), {}).get(name)
        if found is None and not entity:  # a field asked for without its record type: the first that has it
            found = next((labels[name] for labels in self.labels.values() if name in labels), None)
        return found or name.replace("_", " ").capitalize()

    def entity(self, entity: EntityType | str) -> str:
        return str(entity).replace("_", " ")

    def value(self, entity: EntityType | str, name: str, value: Any) -> str:
        """A stored (JSON-form) value in plain words."""
        if value is None or value in ("", [], {}):
            return EMPTY
        if name == _DELETED:
            return "deleted" if value else "not deleted"
        kind = kind_of(EntityType(entity), name) if name in MODELS[EntityType(entity)].model_fields else ""
        if kind == "money":
            return self.money(value)
        if kind == "date":
            return self.day(value)
        if kind == "yes/no" or isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, dict):
            if "lines" in value or "city" in value:
                parts = [
                    *value.get("lines", ()),
                    value.get("city"),
                    value.get("region"),
                    value.get("postal_code"),
                ]
                return ", ".join(str(p) for p in [*parts, value.get("country")] if p) or EMPTY
            if "entity" in value and "id" in value:
                return f"a {self.entity(value['entity'])} (link {value['id']})"
        if isinstance(value, list):
            return f"{len(value)} line(s)"
        if isinstance(value, str) and kind == "choice":
            return value.replace("_", " ")
        return str(value)

    def money(self, value: Any) -> str:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        sign, amount = ("-", -amount) if amount < 0 else ("", amount)
        symbol = SYMBOLS.get(self.currency)
        return f"{sign}{symbol}{amount:,.2f}" if symbol else f"{sign}{amount:,.2f} {self.currency}"

    def day(self, value: Any) -> str:
        try:
            parsed = value if isinstance(value, date) else date.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return f"{parsed:%b} {parsed.day}, {parsed.year}"

    def when(self, value: datetime | str | None) -> str:
        """A moment in the company's time zone: 'Nov 2, 2026, 9:05 AM EST'."""
        if value is None or value == "":
            return "never"
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        local = moment.astimezone(self.zone)
        hour = local.hour % 12 or 12
        return f"{local:%b} {local.day}, {local.year}, {hour}:{local:%M} {local:%p} {local.tzname()}"

    def hint(self, entity: EntityType, name: str) -> str:
        kind = kind_of(entity, name)
        text = HINTS[kind]
        if kind == "choice":
            annotation = _unwrap(MODELS[entity].model_fields[name].annotation)
            text = text.format(choices=", ".join(member.value for member in annotation))
        return text

    def parse(self, entity: EntityType, name: str, raw: str) -> Any:
        """A value typed in the console, checked against the field's type: its JSON form, or ValueError
        saying what was expected. Text stays text ("123" is not a number); empty means no value."""
        kind = kind_of(entity, name)
        text = raw.strip()
        if not text:
            candidate: Any = None
        elif kind == "structured":
            try:
                candidate = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(f"{self.label(entity, name)}: {HINTS['structured']}") from None
        elif kind == "yes/no":
            lowered = text.lower()
            if lowered not in ("yes", "no", "true", "false"):
                raise ValueError(f"{self.label(entity, name)}: {HINTS['yes/no']}")
            candidate = lowered in ("yes", "true")
        elif kind in ("money", "number"):
            candidate = text.replace(",", "").removeprefix(self.currency).strip().lstrip("$")
        else:
            candidate = raw if kind == "text" else text
        try:
            return fields_to_json(entity, {name: candidate})[name]
        except ValidationError:
            raise ValueError(f"{self.label(entity, name)}: {self.hint(entity, name)}") from None
