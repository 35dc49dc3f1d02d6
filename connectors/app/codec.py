"""Values between the database and the canonical model, per kind of field and per database dialect."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.app.fields import REF_TARGETS, Kind
from engine.model import CENT, Ref, Side

#: SQLite keeps timestamps as text; this is SQLAlchemy's layout, which sorts as time does.
SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Codec:
    """Converts one dialect's column values: `sqlite` stores dates, decimals and times as text or numbers."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    # database -> canonical

    def read(self, kind: Kind, value: Any, field: str = "") -> Any:
        if value is None:
            return None
        if kind is Kind.TEXT:
            return str(value)
        if kind is Kind.BOOL:
            return bool(value)
        if kind is Kind.MONEY:
            return Decimal(str(value)).quantize(CENT)
        if kind is Kind.DECIMAL:
            number = Decimal(str(value))
            return number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
        if kind is Kind.DATE:
            if isinstance(value, datetime):
                return value.date()
            return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return Ref(entity=REF_TARGETS[field], id=str(value), side=Side.APP)

    def timestamp(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (naive values are taken as UTC)."""
        if value is None:
            return None
        stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)

    @staticmethod
    def is_set(value: Any) -> bool:
        """Whether a soft-delete column marks the row deleted (true, non-zero, or a timestamp)."""
        if value is None or value is False:
            return False
        return not (isinstance(value, int | str) and str(value).strip().lower() in ("0", "", "false", "f"))

    # canonical -> database

    def write(self, kind: Kind, value: Any, *, integer_ref: bool = False) -> Any:
        if value is None:
            return None
        if kind is Kind.REF:
            ref = value if isinstance(value, Ref) else Ref.model_validate(value)
            return int(ref.id) if integer_ref else ref.id
        if kind in (Kind.MONEY, Kind.DECIMAL):
            return str(value) if self.sqlite else Decimal(str(value))
        if kind is Kind.DATE:
            return value.isoformat() if self.sqlite else value
        if kind is Kind.BOOL:
            return int(bool(value)) if self.sqlite else bool(value)
        return str(value)

    def write_timestamp(self, value: datetime) -> Any:
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None).strftime(SQLITE_TIMESTAMP) if self.sqlite else utc

    def write_flag(self, current_type_is_time: bool, now: datetime) -> Any:
        return self.write_timestamp(now) if current_type_is_time else (1 if self.sqlite else True)


def micros(stamp: datetime) -> int:
    """Microseconds since the epoch: the app's version seq when it has only an updated_at column."""
    delta = stamp - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
