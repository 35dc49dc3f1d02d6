"""Property: whatever bad values the app's rows hold, a page read never raises, every bad row is reported
with its table, row and column, and every good row is emitted (tests/app/shop.py's schema, small pages)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.app import SqlConnector
from engine.model import EntityType
from tests.app.shop import Shop, create_shop
from tests.support.stores import postgres_schema, postgres_url

PAGE = 3


def _not_a_number(text: str) -> bool:
    try:
        return not Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return True


def _not_a_date(text: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(text.strip()[:10])
    except ValueError:
        return True
    return False


def _numeric(text: str) -> bool:
    """Whether SQLite turns the text into a number on the way in (a NUMERIC column does)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


YES_NO = {"0", "1", "true", "false", "t", "f", "yes", "no", "y", "n"}
_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12)
#: Bad values per kind of column, as SQLite keeps them (it stores anything in any column).
SQLITE_BAD: dict[str, st.SearchStrategy[Any]] = {
    "money": st.one_of(_TEXT.filter(_not_a_number), st.sampled_from(["NaN", "inf", "-Infinity", "1e30"])),
    "date": st.one_of(_TEXT.filter(_not_a_date), st.integers(-(2**62), 2**62), st.floats(allow_nan=False)),
    "bool": st.one_of(
        st.integers(-(2**62), 2**62).filter(lambda n: n not in (0, 1)),
        _TEXT.filter(lambda t: t.strip().lower() not in YES_NO and not _numeric(t)),
        st.floats(0.01, 0.99),
    ),
    "ref": st.sampled_from(["", " ", "\t"]),
    "text": st.binary(min_size=1, max_size=8).map(lambda b: b"\xff" + b),
    "name": st.sampled_from([""]),
    "version": _TEXT.filter(lambda t: not t.strip().lstrip("-").isdigit()).map(lambda t: "v" + t),
    "stamp": _TEXT.filter(lambda t: t[:1] != "2").map(lambda t: "x" + t),
}
#: PostgreSQL keeps typed values: its bad ones are those its types accept.
POSTGRES_BAD: dict[str, st.SearchStrategy[Any]] = {
    "money": st.sampled_from(["NaN", "Infinity", "-Infinity", "1e30"]),
    "date": st.sampled_from(["infinity", "-infinity", "10000-01-01"]),
    "ref": st.sampled_from(["", " ", "\t"]),
    "text": st.binary(min_size=1, max_size=8).map(lambda b: b"\xff" + b),  # bytea read as text
    "name": st.sampled_from([""]),
}
#: (entity table, column) -> the kind of bad value it may get, and where it lands.
CLIENT = {"label": "name", "enabled": "bool", "touched": "stamp"}
PRODUCT = {"cost": "money", "vat": "bool", "legacy_note": "text", "title": "text", "rev": "version"}
BILL = {"client_code": "ref", "issued": "date", "due": "date"}
ROW = {"line_total": "money", "qty": "money", "price": "money", "vat": "bool", "product": "ref"}


@dataclass
class Case:
    clients: list[tuple[str, str | None, Any]] = field(default_factory=list)
    products: list[tuple[str, str | None, Any]] = field(default_factory=list)
    bills: list[tuple[int, str | None, Any, list[tuple[str | None, Any]]]] = field(default_factory=list)


def bad_choice(bad: dict[str, st.SearchStrategy[Any]], columns: dict[str, str]) -> st.SearchStrategy[Any]:
    usable = [(c, k) for c, k in columns.items() if k in bad]
    pairs = st.sampled_from(usable).flatmap(lambda ck: st.tuples(st.just(ck[0]), bad[ck[1]]))
    return st.one_of(st.none(), st.none(), pairs)


@st.composite
def cases(draw: st.DrawFn, bad: dict[str, st.SearchStrategy[Any]]) -> Case:
    case = Case()
    for i in range(draw(st.integers(0, 6))):
        choice = draw(bad_choice(bad, CLIENT))
        case.clients.append((f"C-{i}", *(choice or (None, None))))
    for i in range(draw(st.integers(0, 5))):
        choice = draw(bad_choice(bad, PRODUCT))
        case.products.append((f"P-{i}", *(choice or (None, None))))
    for i in range(1, draw(st.integers(1, 6))):
        choice = draw(bad_choice(bad, BILL))
        rows = [draw(bad_choice(bad, ROW)) or (None, None) for _ in range(draw(st.integers(0, 3)))]
        case.bills.append((i, *(choice or (None, None)), rows))
    return case


def load(shop: Shop, case: Case) -> None:
    with shop.engine() as engine, engine.begin() as conn:
        for table in ("bill_rows", "bills", "products", "clients"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    for code, column, value in case.clients:
        values = {column: value} if column else {}
        shop.add_client(code, values.pop("label", f"Client {code}"), **values)
    for sku, column, value in case.products:
        values = {column: value} if column else {}
        if shop.dialect != "sqlite" and column in ("legacy_note", "title"):
            values = {"legacy_note": value}  # PostgreSQL text is valid UTF-8; bytea holds the bad bytes
        shop.add_product(sku, values.pop("title", f"Product {sku}"), **values)
    row_id = 0
    for bill_no, column, value, rows in case.bills:
        lines = []
        for row_column, row_value in rows:
            row_id += 1
            lines.append({"row_id": row_id, **({row_column: row_value} if row_column else {})})
        shop.add_bill(bill_no, "C-x", lines, **({column: value} if column else {}))


def expected(shop: Shop, case: Case) -> tuple[dict[tuple[str, str], list[str]], set[tuple[str, str]]]:
    """Per bad record, the `row N of table, column c` it must be reported with; and the good records."""
    bad: dict[tuple[str, str], list[str]] = {}
    good: set[tuple[str, str]] = set()
    sqlite = shop.dialect == "sqlite"

    def mark(record: tuple[str, str], where: str | None) -> None:
        if where is None:
            good.add(record)
        else:
            bad.setdefault(record, []).append(where)

    for code, column, _ in case.clients:
        mark(("customer", code), f"row {code!r} of clients, column {column}" if column else None)
    for sku, bad_column, _ in case.products:
        column = "legacy_note" if bad_column in ("legacy_note", "title") and not sqlite else bad_column
        if column == "legacy_note":
            mark(("item", sku), f"row {sku!r} of products, the mapped expression")
        else:
            mark(("item", sku), f"row {sku!r} of products, column {column}" if column else None)
    row_id = 0
    for bill_no, column, _, rows in case.bills:
        where = [f"row {bill_no} of bills, column {column}"] if column else []
        for row_column, _ in rows:
            row_id += 1
            if row_column:
                where.append(f"row {row_id} of bill_rows, column {row_column}")
        for one in where or [None]:
            mark(("invoice", str(bill_no)), one)
    return bad, good - set(bad)


def read_everything(
    connector: SqlConnector, limit: int
) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
    rejected: dict[tuple[str, str], str] = {}
    emitted: set[tuple[str, str]] = set()
    for entity in (EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE):
        cursor = None
        for _ in range(limit):
            page = connector.read_changes(entity, cursor)  # must never raise
            emitted |= {(entity.value, e.external_id) for e in page.events}
            rejected |= {(entity.value, r.external_id): r.reason for r in page.rejected}
            cursor = page.cursor
            if page.complete:
                break
        else:
            raise AssertionError(f"{entity}: the read did not complete in {limit} pages")
    return rejected, emitted


def check(shop: Shop, case: Case) -> None:
    load(shop, case)
    bad, good = expected(shop, case)
    with shop.connector(page_size=PAGE) as connector:
        rejected, emitted = read_everything(connector, limit=20)
    assert set(rejected) == set(bad), (rejected, bad)
    for record, places in bad.items():
        for place in places:
            assert place in rejected[record], (record, rejected[record])
    assert good <= emitted, good - emitted
    assert not emitted & set(bad)


@pytest.fixture(scope="module")
def sqlite_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    directory = tmp_path_factory.mktemp("shop")
    return create_shop(f"sqlite:///{directory / 'shop.db'}", None, directory, page_size=PAGE)


@pytest.fixture(scope="module")
def postgres_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    directory: Path = tmp_path_factory.mktemp("pgshop")
    with postgres_schema() as schema:
        yield create_shop(postgres_url(), schema, directory, page_size=PAGE)


_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(case=cases(SQLITE_BAD))
def test_bad_values_on_sqlite_are_each_reported_and_the_good_rows_read(sqlite_shop: Shop, case: Case) -> None:
    check(sqlite_shop, case)


@pytest.mark.postgres
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(POSTGRES_BAD))
def test_bad_values_on_postgres_are_each_reported_and_the_good_rows_read(
    postgres_shop: Shop, case: Case
) -> None:
    check(postgres_shop, case)
