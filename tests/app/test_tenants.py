"""One app database, several tenants: each connector reads, writes and creates only its tenant's rows,
a mapping that scopes some entities but not others (or uses trigger capture) is refused, and the
change probe says whose rows moved."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.app import SqlConnector
from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.app.mapping import parse_mapping
from connectors.app.probe import ChangeProbe
from engine.errors import ConfigurationError, NotFoundError, RecordRejectedError
from engine.model import EntityType, Ref, Side
from engine.plan import Op, OpKind
from tests.support.tenants import add_customer, create_tenant_db, customers, tenant_mapping

CUSTOMER = EntityType.CUSTOMER


def op(kind: OpKind, entity: EntityType, fields: dict[str, Any], **extra: Any) -> Op:
    return Op(
        op_id=uuid.uuid4().hex,
        connection="test",
        link_id="link",
        entity=entity,
        side=Side.APP,
        kind=kind,
        fields=fields,
        reason="test",
        **extra,
    )


@pytest.fixture
def shared(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    create_tenant_db(url)
    return url, tenant_mapping(tmp_path)


def connector(shared: tuple[str, Path], tenant: str) -> SqlConnector:
    url, mapping = shared
    return SqlConnector.open(mapping, url, connection=f"tenant-{tenant}", tenant=tenant)


def test_a_poll_reads_only_its_tenants_rows_even_with_the_same_display_name(shared: tuple[str, Path]) -> None:
    engine = make_engine(shared[0])
    acme = add_customer(engine, "acme", "Jo's Plumbing")
    globex = add_customer(engine, "globex", "Jo's Plumbing")
    engine.dispose()
    with connector(shared, "acme") as a, connector(shared, "globex") as g:
        assert [e.external_id for e in a.read_changes(CUSTOMER, None).events] == [str(acme)]
        assert [e.external_id for e in g.read_changes(CUSTOMER, None).events] == [str(globex)]
        assert {e.connection for e in a.read_changes(CUSTOMER, None).events} <= {"tenant-acme"}


def test_an_id_of_another_tenant_is_not_found_nor_written(shared: tuple[str, Path]) -> None:
    engine = make_engine(shared[0])
    theirs = add_customer(engine, "globex", "Globex Ltd", phone="555-0000")
    with connector(shared, "acme") as a:
        with pytest.raises(NotFoundError):
            a.fetch(CUSTOMER, str(theirs))
        with pytest.raises(NotFoundError):
            a.write(
                op(OpKind.UPDATE, CUSTOMER, {"phone": "555-9999"}, external_id=str(theirs), expected_seq=1)
            )
        with pytest.raises(NotFoundError):
            a.write(op(OpKind.DELETE, CUSTOMER, {}, external_id=str(theirs), expected_seq=1))
    assert [(r["account_id"], r["phone"]) for r in customers(engine)] == [("globex", "555-0000")]
    engine.dispose()


def test_a_create_carries_the_tenant_and_may_not_reference_another_tenants_record(
    shared: tuple[str, Path],
) -> None:
    engine = make_engine(shared[0])
    theirs = add_customer(engine, "globex", "Globex Ltd")
    with connector(shared, "acme") as a:
        made = a.write(op(OpKind.CREATE, CUSTOMER, {"display_name": "Acme Corp"}))
        with pytest.raises(RecordRejectedError):
            a.write(
                op(
                    OpKind.CREATE,
                    EntityType.PAYMENT,
                    {"customer": Ref(entity=CUSTOMER, id=str(theirs), side=Side.APP), "total": "5.00"},
                )
            )
    rows = {r["id"]: r["account_id"] for r in customers(engine)}
    assert rows[int(made.external_id)] == "acme"
    engine.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["acme", "globex", "initech"]), st.sampled_from(["A", "B", "Jo"])),
        min_size=1,
        max_size=8,
    )
)
def test_each_tenant_reads_exactly_its_own_rows(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]]
) -> None:
    directory = tmp_path_factory.mktemp("tenants")
    url = f"sqlite:///{directory / 'app.db'}"
    create_tenant_db(url)
    mapping = tenant_mapping(directory)
    engine = make_engine(url)
    owner = {str(add_customer(engine, tenant, name)): tenant for tenant, name in rows}
    engine.dispose()
    for tenant in ("acme", "globex", "initech"):
        with SqlConnector.open(mapping, url, connection=tenant, tenant=tenant) as c:
            read = {e.external_id for e in c.read_changes(CUSTOMER, None).events}
            assert read == {i for i, t in owner.items() if t == tenant}
            for external_id, t in owner.items():
                if t != tenant:
                    with pytest.raises(NotFoundError):
                        c.fetch(CUSTOMER, external_id)


def test_the_start_up_check_names_a_missing_tenant_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    from examples.invoicing import create_example_db

    create_example_db(url, with_data=False)
    with pytest.raises(ConfigurationError, match=r"entities\.customer\.tenant_column.*account_id"):
        SqlConnector.open(tenant_mapping(tmp_path), url, tenant="acme")


def test_a_scoped_mapping_needs_a_tenant(shared: tuple[str, Path]) -> None:
    with pytest.raises(ConfigurationError, match="needs a tenant"):
        SqlConnector.open(shared[1], shared[0])


def _mapping(customer: dict[str, Any], item: dict[str, Any] | None = None) -> dict[str, Any]:
    base = {"primary_key": "id", "version_column": "v"}
    entities = {"customer": {"table": "c", "fields": {"display_name": "n"}, **base, **customer}}
    if item is not None:
        entities["item"] = {"table": "i", "fields": {"name": "n"}, **base, **item}
    return {"entities": entities}


def test_every_entity_is_scoped_or_none_is() -> None:
    with pytest.raises(ConfigurationError, match=r"entities\.item\.tenant_column: required"):
        parse_mapping(_mapping({"tenant_column": "t"}, {}))
    parse_mapping(_mapping({"tenant_column": "t"}, {"tenant_column": "t"}))
    parse_mapping(_mapping({}, {}))


def test_trigger_capture_and_tombstones_without_the_tenant_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="outbox capture does not carry the tenant"):
        parse_mapping(_mapping({"tenant_column": "t", "capture": {"mode": "outbox"}}))
    tomb = {"table": "gone", "key_column": "k", "version_column": "v"}
    with pytest.raises(ConfigurationError, match=r"tombstone\.tenant_column: required"):
        parse_mapping(_mapping({"tenant_column": "t", "delete": {"tombstone": tomb}}))


def test_an_integer_tenant_column_takes_the_tenant_as_a_number(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'int.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE c (id INTEGER PRIMARY KEY, n VARCHAR(50), v INTEGER, t INTEGER)")
        conn.exec_driver_sql("INSERT INTO c (n, v, t) VALUES ('one', 1, 7), ('two', 1, 8)")
    engine.dispose()
    mapping = parse_mapping(_mapping({"tenant_column": "t"}))
    with SqlConnector(mapping, make_engine(url), tenant="7") as c:
        assert [e.fields["display_name"] for e in c.read_changes(CUSTOMER, None).events] == ["one"]
    with pytest.raises(ConfigurationError, match="not a number"):
        SqlConnector(mapping, make_engine(url), tenant="acme")


def test_a_connector_for_another_tenant_reuses_the_checked_mapping_and_reads_only_its_rows(
    shared: tuple[str, Path],
) -> None:
    engine = make_engine(shared[0])
    acme = add_customer(engine, "acme", "Same Name")
    globex = add_customer(engine, "globex", "Same Name")
    engine.dispose()
    with connector(shared, "acme") as a:
        g = a.for_tenant("tenant-globex", "globex")
        assert g.engine is a.engine and g.connection == "tenant-globex"
        assert [e.external_id for e in g.read_changes(CUSTOMER, None).events] == [str(globex)]
        assert [e.external_id for e in a.read_changes(CUSTOMER, None).events] == [str(acme)]
        made = g.write(op(OpKind.CREATE, CUSTOMER, {"display_name": "Globex New"}))
        with pytest.raises(NotFoundError):
            a.fetch(CUSTOMER, made.external_id)


def test_the_start_up_check_advises_an_index_led_by_the_tenant_column(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare, indexed = f"sqlite:///{tmp_path / 'bare.db'}", f"sqlite:///{tmp_path / 'indexed.db'}"
    create_tenant_db(bare, indexed=False)
    create_tenant_db(indexed)
    mapping = tenant_mapping(tmp_path)
    with caplog.at_level("WARNING", logger="connectors.app.schema"):
        SqlConnector.open(mapping, bare, tenant="acme").close()
    assert "CREATE INDEX customers_account_id ON customers (account_id, updated_at, id)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="connectors.app.schema"):
        SqlConnector.open(mapping, indexed, tenant="acme").close()
    assert "tenant_column" not in caplog.text


def test_the_probe_names_whose_rows_moved_so_only_their_connections_poll(shared: tuple[str, Path]) -> None:
    engine = make_engine(shared[0])
    acme = add_customer(engine, "acme", "Acme One")
    add_customer(engine, "globex", "Globex One")
    with connector(shared, "acme") as a:
        probe = ChangeProbe(a.engine, a.layouts, a.mapping.outbox_table)
        assert set(probe.moved().values()) == {None}  # the first check: every entity, anyone's
        assert probe.moved() == {}
        time.sleep(0.01)  # a newer stamp than the table's newest
        add_customer(engine, "globex", "Globex Two")
        assert probe.moved() == {CUSTOMER: frozenset({"globex"})}
        time.sleep(0.01)
        stamp = Codec(engine.dialect.name).write_timestamp(datetime.now(UTC))
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE customers SET notes = 'x', updated_at = :at WHERE id = :id"),
                {"at": stamp, "id": acme},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO deleted_records (entity, record_id, version, deleted_at, account_id)"
                    " VALUES ('invoice', 99, 2, :at, 'initech')"
                ),
                {"at": stamp},
            )
        assert probe.moved() == {CUSTOMER: frozenset({"acme"}), EntityType.INVOICE: frozenset({"initech"})}
        assert probe.changed() == []
    engine.dispose()
