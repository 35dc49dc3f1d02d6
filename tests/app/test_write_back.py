"""Write-back into the app database: optimistic versions against the app's own edits, origin tags,
idempotency that survives a restart, and database refusals as rejected records."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors.app.database import make_engine
from engine.errors import RecordRejectedError, VersionConflictError
from engine.model import EntityType, Operation, Ref, Side
from engine.plan import Op, OpKind
from engine.ports import WriteResult
from examples.invoicing import MAPPING, create_example_db
from examples.invoicing.edit import delete_record, edit_record, main
from tests.app.conftest import AppDb

CUSTOMER, INVOICE, ITEM = EntityType.CUSTOMER, EntityType.INVOICE, EntityType.ITEM


def op(kind: OpKind, entity: EntityType, fields: dict[str, Any] | None = None, **extra: Any) -> Op:
    return Op(
        op_id=uuid.uuid4().hex,
        connection="test",
        link_id="link",
        entity=entity,
        side=Side.APP,
        kind=kind,
        fields=fields or {},
        reason="test",
        **extra,
    )


def column(db: AppDb, sql: str) -> Any:
    engine = make_engine(db.url, schema=db.schema)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_an_app_users_edit_makes_a_planned_write_a_version_conflict_not_an_overwrite(
    example_db: AppDb,
) -> None:
    with example_db.connector() as connector:
        before = connector.fetch(CUSTOMER, "1")
        edit_record(example_db.url, "customer", 1, {"phone": "555-0199"}, schema=example_db.schema)
        stale = op(
            OpKind.UPDATE, CUSTOMER, {"phone": "555-0100"}, external_id="1", expected_seq=before.version.seq
        )
        with pytest.raises(VersionConflictError):
            connector.write(stale)
        assert connector.fetch(CUSTOMER, "1").fields["phone"] == "555-0199"


def test_sync_writes_set_the_origin_column_and_user_edits_do_not(sqlite_example: AppDb) -> None:
    with sqlite_example.connector() as connector:
        current = connector.fetch(CUSTOMER, "2")
        written = connector.write(
            op(
                OpKind.UPDATE,
                CUSTOMER,
                {"notes": "From QuickBooks"},
                external_id="2",
                expected_seq=current.version.seq,
            )
        )
        assert written.version.seq == current.version.seq + 1
        assert column(sqlite_example, "SELECT changed_by FROM customers WHERE id = 2") == "ledgersync"
        edit_record(sqlite_example.url, "customer", 2, {"notes": "Called back"})
        assert column(sqlite_example, "SELECT changed_by FROM customers WHERE id = 2") == "user"


def test_a_retried_op_after_a_lost_answer_is_not_applied_twice_even_by_a_new_connector(
    example_db: AppDb,
) -> None:
    create = op(OpKind.CREATE, CUSTOMER, {"display_name": f"Ødegård & Fils {uuid.uuid4().hex[:6]}"})
    with example_db.connector() as connector:
        first = connector.write(create)
    with example_db.connector() as restarted:
        again = restarted.write(create)
    assert again == first
    name = create.fields["display_name"].replace("'", "''")
    assert column(example_db, f"SELECT count(*) FROM customers WHERE display_name = '{name}'") == 1


def test_an_invoice_write_replaces_its_lines_and_references_are_app_ids(sqlite_example: AppDb) -> None:
    with sqlite_example.connector() as connector:
        invoice = connector.fetch(EntityType.INVOICE, "1")
        line = {"item": Ref(entity=EntityType.ITEM, id="3", side=Side.APP), "amount": Decimal("120.00")}
        result = connector.write(
            op(
                OpKind.UPDATE,
                EntityType.INVOICE,
                {"lines": [line]},
                external_id="1",
                expected_seq=invoice.version.seq,
            )
        )
    assert [(li["item"]["id"], li["amount"]) for li in result.fields["lines"]] == [("3", Decimal("120.00"))]
    assert column(sqlite_example, "SELECT count(*) FROM invoice_lines WHERE invoice_id = 1") == 1
    assert result.fields["customer"] == {"entity": CUSTOMER, "id": "1", "side": Side.APP}


def test_a_write_the_database_refuses_is_a_rejected_record_with_its_message(example_db: AppDb) -> None:
    # Invoice 1 is partly paid: the payment application's foreign key keeps it from being deleted.
    with example_db.connector() as connector:
        with pytest.raises(RecordRejectedError) as raised:
            connector.write(op(OpKind.DELETE, EntityType.INVOICE, external_id="1"))
        assert raised.value.code == "integrity"
        assert "foreign key" in str(raised.value).lower()
        assert connector.fetch(EntityType.INVOICE, "1").operation is Operation.UPSERT


def test_a_customer_deleted_by_ledgersync_is_soft_deleted(sqlite_example: AppDb) -> None:
    with sqlite_example.connector() as connector:
        result = connector.write(op(OpKind.DELETE, CUSTOMER, external_id="3"))
    assert result.deleted
    assert (
        column(sqlite_example, "SELECT count(*) FROM customers WHERE id = 3 AND deleted_at IS NOT NULL") == 1
    )


def test_an_address_with_more_lines_than_the_app_holds_is_rejected(sqlite_example: AppDb) -> None:
    address = {"lines": ["1 Main St", "Suite 2", "Floor 3"], "city": "Québec"}
    with sqlite_example.connector() as connector, pytest.raises(RecordRejectedError, match="3 lines"):
        connector.write(op(OpKind.UPDATE, CUSTOMER, {"billing_address": address}, external_id="1"))


def test_the_edit_command_changes_a_record_as_a_user_and_deletes_with_a_tombstone(
    sqlite_example: AppDb, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", sqlite_example.url, "customer", "3", "phone=555-0100", "city=Saint-Étienne"]) == 0
    assert "customer 3 is now at version 2" in capsys.readouterr().out
    with sqlite_example.connector() as connector:
        fields = connector.fetch(CUSTOMER, "3").fields
        assert (fields["phone"], fields["billing_address"]["city"]) == ("555-0100", "Saint-Étienne")
        delete_record(sqlite_example.url, "invoice", 2)
        gone = connector.fetch(EntityType.INVOICE, "2")
    assert gone.operation is Operation.DELETE
    assert gone.version.seq == 2


def test_many_ops_in_one_transaction_each_refused_alone_and_replayed_once(example_db: AppDb) -> None:
    with example_db.connector() as connector:
        before = {i: connector.fetch(CUSTOMER, i) for i in ("1", "2")}
        good = [
            op(
                OpKind.UPDATE,
                CUSTOMER,
                {"notes": f"batch {i}"},
                external_id=i,
                expected_seq=before[i].version.seq,
            )
            for i in ("1", "2")
        ]
        # The database refuses one (a foreign key), the mapping another (too many address lines), a
        # third is stale: each gets its own error and the two good ones are written.
        refused = op(OpKind.DELETE, EntityType.INVOICE, external_id="1")
        too_long = op(
            OpKind.UPDATE, CUSTOMER, {"billing_address": {"lines": ["a", "b", "c"]}}, external_id="3"
        )
        stale = op(OpKind.UPDATE, CUSTOMER, {"notes": "old"}, external_id="1", expected_seq=0)
        results = connector.write_many([good[0], refused, too_long, stale, good[1]])
        assert [type(r).__name__ for r in results] == [
            "WriteResult",
            "RecordRejectedError",
            "RecordRejectedError",
            "VersionConflictError",
            "WriteResult",
        ]
        assert connector.fetch(CUSTOMER, "1").fields["notes"] == "batch 1"
        assert connector.fetch(EntityType.INVOICE, "1").operation is Operation.UPSERT
        # The same ops again (an answer lost): their stored results, nothing written twice.
        again = connector.write_many(good)
        assert again == [results[0], results[4]]
        assert connector.fetch(CUSTOMER, "2").version == results[4].version  # type: ignore[union-attr]


def test_an_applied_ops_table_not_created_once_is_created_by_a_later_write(
    sqlite_example: AppDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first write's CREATE TABLE fails (the app's database was locked, say): that write fails as
    # retriable, and the next one creates the table and lands. Marked ready without the table, every
    # later write failed as "unavailable" for as long as the process ran.
    from connectors.app import applied
    from engine.errors import UpstreamUnavailableError

    real = applied.create_table
    calls = 0

    def locked_once(engine: sa.Engine) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sa.exc.OperationalError("CREATE TABLE ledgersync_applied_ops", {}, Exception("locked"))
        real(engine)

    monkeypatch.setattr(applied, "create_table", locked_once)
    with sqlite_example.connector() as connector:
        edit = op(OpKind.UPDATE, CUSTOMER, {"notes": "after the lock"}, external_id="1")
        first = connector.write_many([edit])
        assert isinstance(first[0], UpstreamUnavailableError)
        second = connector.write_many([edit])
        assert not isinstance(second[0], Exception), second
        assert connector.fetch(CUSTOMER, "1").fields["notes"] == "after the lock"
    assert calls == 2


@pytest.mark.parametrize(
    "fresh_db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_yes_no_the_app_keeps_as_a_number_is_written_as_one_or_zero(
    fresh_db: AppDb, tmp_path: Path
) -> None:
    """The start-up check lets a yes/no live in an integer column (a 0/1 flag, as many apps keep them), but
    PostgreSQL casts no boolean into one: every write of such a field, child row or soft delete failed
    there, as a mapping that does not match the database."""
    create_example_db(fresh_db.url, schema=fresh_db.schema)
    engine = make_engine(fresh_db.url, schema=fresh_db.schema)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE invoices ADD COLUMN net_first SMALLINT")
            conn.exec_driver_sql("ALTER TABLE invoice_lines ADD COLUMN tax_flag INTEGER")
            conn.exec_driver_sql("ALTER TABLE items ADD COLUMN gone SMALLINT")
    finally:
        engine.dispose()
    mapping = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    invoice = mapping["entities"]["invoice"]
    invoice["fields"]["tax_after_discount"] = "net_first"
    invoice["lines"]["fields"]["taxable"] = "tax_flag"
    mapping["entities"]["item"]["delete"] = {"soft_delete_column": "gone"}
    path = tmp_path / "numbers.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    with fresh_db.connector(path) as connector:
        seq = connector.fetch(INVOICE, "1").version.seq
        line = {"item": Ref(entity=ITEM, id="1", side=Side.APP), "amount": Decimal("10.00"), "taxable": True}
        changed = {"tax_after_discount": True, "lines": [line]}
        connector.write(op(OpKind.UPDATE, INVOICE, changed, external_id="1", expected_seq=seq))
        assert column(fresh_db, "SELECT net_first FROM invoices WHERE id = 1") == 1
        assert column(fresh_db, "SELECT tax_flag FROM invoice_lines WHERE invoice_id = 1") == 1
        fields = connector.fetch(INVOICE, "1").fields
        assert fields["tax_after_discount"] is True and fields["lines"][0]["taxable"] is True
        # A plain field change, written with others as a set.
        seq = connector.fetch(INVOICE, "1").version.seq
        unset = op(OpKind.UPDATE, INVOICE, {"tax_after_discount": False}, external_id="1", expected_seq=seq)
        (result,) = connector.write_many([unset])
        assert isinstance(result, WriteResult), result
        assert column(fresh_db, "SELECT net_first FROM invoices WHERE id = 1") == 0
        assert connector.write(op(OpKind.DELETE, ITEM, external_id="2")).deleted
        assert column(fresh_db, "SELECT gone FROM items WHERE id = 2") == 1
        assert connector.fetch(ITEM, "2").operation is Operation.DELETE
