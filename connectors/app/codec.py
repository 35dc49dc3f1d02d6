"""Values between the database and the canonical model, per kind of field and per database dialect.

Reading is strict: a value that does not mean what its field needs (text in a money column, a date
that is no date, a yes/no that is neither, bytes that are not UTF-8) raises `BadValueError` saying
what is wrong with it, and the reader parks that one record instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.app.fields import REF_TARGETS, Kind
from engine.model import CENT, Ref, Side

#: SQLite keeps timestamps as text; this is SQLAlchemy's layout, which sorts as time does.
SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})
#: How much of a bad value an error message quotes.
_QUOTE = 40


class BadValueError(ValueError):
    """A stored value its field cannot take; the message says what is wrong with the value."""


@dataclass(frozen=True)
class Unreadable:
    """A value the database driver could not turn into a Python value (see connectors.app.database)."""

    text: str
    why: str


def shown(value: Any) -> str:
    """A stored value as an error message quotes it (shortened)."""
    if isinstance(value, Unreadable):
        value = value.text
    if isinstance(value, int | float | Decimal | date):
        text = str(value)
    else:
        text = repr(bytes(value) if isinstance(value, memoryview) else value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 3] + "..."


class Codec:
    """Converts one dialect's column values: `sqlite` stores dates, decimals and times as text or numbers."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

    # database -> canonical

    def read(self, kind: Kind, value: Any, field: str = "", *, integer_ref: bool = False) -> Any:
        """The canonical value of a stored one; BadValueError when it cannot be one.

        `integer_ref`: the referenced table is keyed by integers, so a reference must be one.
        """
        if value is None:
            return None
        if isinstance(value, Unreadable):
            raise BadValueError(f"{shown(value)} cannot be read: {value.why}")
        if kind is Kind.TEXT:
            return self.text(value)
        if kind is Kind.BOOL:
            return _boolean(value)
        if kind is Kind.MONEY:
            return _number(value).quantize(CENT)
        if kind is Kind.DECIMAL:
            number = _number(value)
            return number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
        if kind is Kind.DATE:
            return _date(value)
        target = REF_TARGETS[field].value
        return Ref(entity=REF_TARGETS[field], id=_identifier(value, target, integer_ref), side=Side.APP)

    @staticmethod
    def text(value: Any) -> str:
        if isinstance(value, Unreadable):
            raise BadValueError(f"{shown(value)} cannot be read: {value.why}")
        if isinstance(value, memoryview | bytes | bytearray):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise BadValueError(f"{shown(value)} is not UTF-8 text") from None
        if isinstance(value, float | Decimal) and not Decimal(value).is_finite():
            raise BadValueError(f"{shown(value)} is not text")
        return str(value)

    def timestamp(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (naive values are taken as UTC)."""
        if value is None:
            return None
        if isinstance(value, datetime):
            stamp = value
        else:
            try:
                stamp = datetime.fromisoformat(self.text(value))
            except (BadValueError, ValueError):
                raise BadValueError(f"{shown(value)} is not a timestamp") from None
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)

    @staticmethod
    def sequence(value: Any) -> int:
        """A version column's value as an integer."""
        if type(value) is int:  # what an integer column gives back: nothing to check
            return value
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
            raise BadValueError(f"{shown(value)} is not a version number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadValueError(f"{shown(value)} is not a version number") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise BadValueError(f"{shown(value)} is not a version number")
        return int(number)

    @staticmethod
    def is_set(value: Any) -> bool:
        """Whether a soft-delete column marks the row deleted (true, non-zero, or a timestamp)."""
        if value is None or value is False:
            return False
        return not (isinstance(value, int | str) and str(value).strip().lower() in ("0", "", "false", "f"))

    # canonical -> database

    def write(self, kind: Kind, value: Any, *, integer_ref: bool = False, number_flag: bool = False) -> Any:
        """The stored form of a canonical value. `number_flag`: a yes/no goes into an integer column."""
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
            return int(bool(value)) if self.sqlite or number_flag else bool(value)
        return str(value)

    def write_timestamp(self, value: datetime) -> Any:
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None).strftime(SQLITE_TIMESTAMP) if self.sqlite else utc

    def write_flag(self, current_type_is_time: bool, now: datetime) -> Any:
        return self.write_timestamp(now) if current_type_is_time else (1 if self.sqlite else True)


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise BadValueError(f"{shown(value)} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadValueError(f"{shown(value)} is not a number") from None
    if not number.is_finite():
        raise BadValueError(f"{shown(value)} is not a number QuickBooks can hold")
    if number.adjusted() > 15:
        # QuickBooks amounts have at most 15 digits; beyond that a value is a slip, not an amount.
        raise BadValueError(f"{shown(value)} is out of range for an amount")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadValueError(f"{shown(value)} is not a yes/no value (expected true/false or 1/0)")


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise BadValueError(f"{shown(value)} is not a date (expected YYYY-MM-DD)")


def _identifier(value: Any, entity: str, integer: bool) -> str:
    what = f"{'an' if entity[0] in 'aeiou' else 'a'} {entity} id"
    if isinstance(value, bool):
        raise BadValueError(f"{shown(value)} is not {what}")
    if isinstance(value, float | Decimal):
        if not Decimal(value).is_finite() or value != int(value):
            raise BadValueError(f"{shown(value)} is not {what}")
        value = int(value)
    text = Codec.text(value)
    if not text.strip():
        raise BadValueError(f"{shown(value)} is not {what} (it is blank)")
    if integer and not text.strip().lstrip("-").isdigit():
        raise BadValueError(f"{shown(value)} is not {what} ({entity} ids are whole numbers)")
    return text.strip() if integer else text


def micros(stamp: datetime) -> int:
    """Microseconds since the epoch: the app's version seq when it has only an updated_at column."""
    delta = stamp - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
