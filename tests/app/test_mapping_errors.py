"""A mapping that does not fit the database is refused when the connector starts, naming the key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.app import SqlConnector, load_mapping, parse_mapping
from connectors.app.database import make_engine
from engine.errors import ConfigurationError, UpstreamUnavailableError
from examples.invoicing import MAPPING, create_example_db
from tests.app.conftest import AppDb
from tests.app.shop import create_shop

BASE: dict[str, Any] = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))


def mapping_with(path: str, value: Any) -> dict[str, Any]:
    """The example mapping with the key at dotted `path` set to `value` (None: removed)."""
    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


def start(db: AppDb, data: dict[str, Any]) -> None:
    engine = make_engine(db.url, schema=db.schema)
    try:
        SqlConnector(parse_mapping(data), engine).close()
    finally:
        engine.dispose()


DATABASE_MISMATCHES = [
    ("entities.customer.table", "clients", "entities.customer.table: table 'clients' not found"),
    (
        "entities.customer.fields.email",
        "mail",
        "entities.customer.fields.email: column 'mail' not found in table 'customers'",
    ),
    ("entities.customer.primary_key", "uid", "entities.customer.primary_key: column 'uid' not found"),
    (
        "entities.customer.primary_key",
        "email",
        "entities.customer.primary_key: table 'customers' has primary key",
    ),
    ("entities.customer.fields.email", "version", "entities.customer.fields.email: column 'version'"),
    ("entities.item.fields.unit_price", "name", "entities.item.fields.unit_price: column 'name'"),
    ("entities.invoice.fields.txn_date", "number", "entities.invoice.fields.txn_date: column 'number'"),
    (
        "entities.invoice.fields.customer",
        "number",
        "entities.invoice.fields.customer: column 'number' is VARCHAR(21), but customer ids",
    ),
    ("entities.item.version_column", "name", "entities.item.version_column: column 'name'"),
    ("entities.invoice.lines.table", "lines", "entities.invoice.lines.table: table 'lines' not found"),
    ("entities.invoice.lines.fields.amount", "total", "entities.invoice.lines.fields.amount: column 'total'"),
    ("entities.invoice.lines.parent_key", "invoice", "entities.invoice.lines.parent_key: column 'invoice'"),
    (
        "entities.payment.delete.tombstone.key_column",
        "rid",
        "entities.payment.delete.tombstone.key_column: column 'rid' not found in table 'deleted_records'",
    ),
    ("entities.customer.delete.soft_delete_column", "gone", "entities.customer.delete.soft_delete_column"),
    (
        "entities.customer.fields.notes",
        {"expression": "no_such_column || 'x'"},
        "entities.customer.fields.notes: the expression does not run on table 'customers'",
    ),
    (
        "entities.customer.billing_address.city",
        "town",
        "entities.customer.billing_address.city: column 'town'",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), DATABASE_MISMATCHES)
def test_a_mapping_that_does_not_fit_the_database_is_refused_at_start_naming_the_key(
    example_db: AppDb, path: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        start(example_db, mapping_with(path, value))
    assert message in str(raised.value)


def test_a_column_type_that_cannot_hold_the_field_is_named_with_both_types(sqlite_example: AppDb) -> None:
    with pytest.raises(ConfigurationError) as raised:
        start(sqlite_example, mapping_with("entities.customer.fields.email", "version"))
    assert "is INTEGER, which cannot hold text" in str(raised.value)


@pytest.mark.parametrize(
    ("fresh_db", "column_type"),
    [
        ("sqlite", "REAL"),
        ("sqlite", "DOUBLE PRECISION"),
        pytest.param("postgres", "DOUBLE PRECISION", marks=pytest.mark.postgres),
        pytest.param("postgres", "FLOAT", marks=pytest.mark.postgres),
    ],
    indirect=["fresh_db"],
)
def test_a_rate_may_be_held_in_a_floating_point_column_but_money_may_not(
    fresh_db: AppDb, column_type: str
) -> None:
    """An exchange rate or a quantity in a (double precision) float column reads back as written
    (its shortest decimal form); an amount would gain or lose cents. Whatever SQLAlchemy's types say:
    2.1 no longer makes Float a kind of Numeric, and every float column was refused."""
    create_example_db(fresh_db.url, schema=fresh_db.schema)
    engine = make_engine(fresh_db.url, schema=fresh_db.schema)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE invoices ADD COLUMN fx {column_type}")
            conn.exec_driver_sql(f"ALTER TABLE invoice_lines ADD COLUMN qty_f {column_type}")
    finally:
        engine.dispose()
    rated = mapping_with("entities.invoice.fields.exchange_rate", "fx")
    rated["entities"]["invoice"]["lines"]["fields"]["quantity"] = "qty_f"
    start(fresh_db, rated)
    with pytest.raises(ConfigurationError) as raised:
        start(fresh_db, mapping_with("entities.invoice.fields.total", "fx"))
    assert "entities.invoice.fields.total: column 'fx' of table 'invoices' is" in str(raised.value)
    assert "which cannot hold money" in str(raised.value)


def test_every_problem_is_reported_at_once(sqlite_example: AppDb) -> None:
    data = mapping_with("entities.customer.fields.email", "mail")
    data["entities"]["item"]["fields"]["unit_price"] = "name"
    with pytest.raises(ConfigurationError) as raised:
        start(sqlite_example, data)
    assert "entities.customer.fields.email" in str(raised.value)
    assert "entities.item.fields.unit_price" in str(raised.value)


SHAPE_ERRORS = [
    ("entities.customer.colour", "blue", "entities.customer.colour: Extra inputs are not permitted"),
    (
        "entities.customer.fields.favourite",
        "notes",
        "entities.customer.fields.favourite: not a field of customer",
    ),
    ("entities.customer.fields.display_name", None, "entities.customer.fields.display_name: required"),
    ("entities.invoice.lines", None, "entities.invoice.lines: required"),
    ("entities.invoice.lines.fields.amount", None, "entities.invoice.lines.fields.amount: required"),
    ("entities.gadget", {"table": "x"}, "entities.gadget"),
    ("entities.customer.table", None, "entities.customer.table: Field required"),
    ("entities.customer.capture.poll_by", "sometimes", "entities.customer.capture.poll_by"),
    (
        "entities.customer.fields.notes",
        {"column": "notes", "expression": "notes"},
        "entities.customer.fields.notes: Value error, give exactly one of column, expression",
    ),
    ("entities.customer.delete", {}, "entities.customer.delete: Value error, give exactly one of"),
    (
        "entities.invoice.delete.tombstone.deleted_at_column",
        None,
        "entities.invoice.delete.tombstone.deleted_at_column: required when polling by updated_at",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), SHAPE_ERRORS)
def test_a_malformed_mapping_is_refused_before_touching_the_database(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_mapping(mapping_with(path, value))
    assert message in str(raised.value)


def test_a_mapping_file_that_is_not_yaml_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("entities: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"mapping\.yaml: cannot read the mapping"):
        load_mapping(bad)


def test_the_example_mapping_is_valid() -> None:
    mapping = load_mapping(MAPPING)
    assert set(mapping.entities) == {"customer", "item", "invoice", "payment"}


def test_a_database_that_does_not_answer_is_retriable_at_start() -> None:
    with pytest.raises(UpstreamUnavailableError):
        SqlConnector.open(MAPPING, "postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=2")


def test_outbox_capture_without_the_outbox_table_is_refused_at_start(sqlite_example: AppDb) -> None:
    with pytest.raises(ConfigurationError, match="outbox_table: table 'ledgersync_changes' not found"):
        start(sqlite_example, mapping_with("entities.customer.capture", {"mode": "outbox"}))


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def test_order_by_on_the_child_tables_primary_key_is_refused_at_start_with_its_file_line(
    tmp_path: Path,
) -> None:
    # ledgersync writes 1, 2, 3... into order_by: on the lines' own key, a second invoice's lines collided
    # with the first's (a unique violation at the first write, long after start-up).
    shop = create_shop(f"sqlite:///{tmp_path / 'shop.db'}", None, tmp_path, order_by="row_id")
    line = line_of(shop.mapping, "order_by: row_id")
    with pytest.raises(ConfigurationError) as raised:
        shop.connector().close()
    assert (
        f"{shop.mapping}:{line}:7: entities.invoice.lines.order_by: column 'row_id' of table 'bill_rows'"
        " is the primary key, but ledgersync writes each line's position (1, 2, 3...) into it"
    ) in str(raised.value)


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        ("id", "column 'id' of table 'invoice_lines' is the primary key"),
        ("invoice_id", "column 'invoice_id' is the parent_key too"),
        ("quantity", "column 'quantity' also holds the field quantity"),
    ],
)
def test_order_by_must_be_a_column_of_its_own(sqlite_example: AppDb, order_by: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        start(sqlite_example, mapping_with("entities.invoice.lines.order_by", order_by))
    assert f"entities.invoice.lines.order_by: {message}" in str(raised.value)


def test_a_unique_order_by_column_is_refused_too(tmp_path: Path) -> None:
    shop = create_shop(f"sqlite:///{tmp_path / 'shop.db'}", None, tmp_path)
    shop.run("CREATE UNIQUE INDEX bill_rows_seq ON bill_rows (seq_no)")
    with pytest.raises(ConfigurationError, match="column 'seq_no' of table 'bill_rows' is unique"):
        shop.connector().close()


def test_problems_in_a_mapping_file_name_their_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    text = MAPPING.read_text(encoding="utf-8").replace("      email: email\n", "      email: mail\n", 1)
    path.write_text(text, encoding="utf-8")
    app = f"sqlite:///{tmp_path / 'app.db'}"
    create_example_db(app)
    with pytest.raises(ConfigurationError) as raised:
        SqlConnector.open(path, app).close()
    line = line_of(path, "email: mail")
    assert f"{path}:{line}:7: entities.customer.fields.email: column 'mail' not found" in str(raised.value)

    path.write_text(text.replace("    primary_key: id\n", "    primary_key: id\n    colour: blue\n", 1))
    with pytest.raises(ConfigurationError) as raised:
        load_mapping(path)
    assert f"{path}:{line_of(path, 'colour: blue')}:5: entities.customer.colour: Extra inputs" in str(
        raised.value
    )


SLOW_CHILD_READ = "entities.invoice.lines.parent_key: no index of 'bill_rows' starts with 'bill'"


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_child_table_read_without_an_index_is_named_at_start_up_with_the_fix(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """Reading a page of parents reads their children by parent key: with no index there, each page
    scans the whole child table and a big backfill turns quadratic. It still starts (it works), but says
    so once, with the statement that fixes it."""
    from tests.support.stores import postgres_schema, postgres_url

    def started(shop: Any) -> list[str]:
        caplog.clear()
        with caplog.at_level("WARNING", logger="connectors.app.schema"):
            shop.connector().close()
        return [r.getMessage() for r in caplog.records]

    def check(shop: Any) -> None:
        warned = started(shop)
        assert any(
            SLOW_CHILD_READ in m and "CREATE INDEX bill_rows_bill ON bill_rows (bill)" in m for m in warned
        )
        shop.run("CREATE INDEX bill_rows_by_bill ON bill_rows (bill, seq_no)")
        assert not any("no index" in m for m in started(shop))

    if backend == "postgres":
        with postgres_schema() as schema:
            check(create_shop(postgres_url(), schema, tmp_path))
    else:
        check(create_shop(f"sqlite:///{tmp_path / 'shop.db'}", None, tmp_path))


def test_the_example_app_has_the_indexes_its_reads_need(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    create_example_db(url)
    with caplog.at_level("WARNING", logger="connectors.app.schema"):
        SqlConnector.open(MAPPING, url).close()
    assert [r.getMessage() for r in caplog.records if "no index" in r.getMessage()] == []
