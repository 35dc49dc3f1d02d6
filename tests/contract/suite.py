"""The connector contract: the behaviour every `engine.ports.Connector` must show, in one reusable suite.

Plug a connector in with one line in a test module:

    TestMyConnector = contract_for(lambda: MyConnector(...))

or, when building it needs other fixtures (an emulator, a database), subclass and override the fixture:

    class TestMyConnector(ConnectorContract):
        @pytest.fixture
        def connector(self, emulator: Emulator) -> Connector:
            return MyConnector(emulator.client())

The suite only talks through the port (write, read_changes, fetch, capabilities). Names are unique per
test, so a connector whose store outlives one test (an emulator, a database) passes too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import NotFoundError, RecordRejectedError, VersionConflictError
from engine.model import ChangeEvent, EntityType, Invoice, Operation, Ref, Side, Version
from engine.plan import Op, OpKind
from engine.ports import Connector, WriteResult


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def make_op(
    connector: Connector,
    entity: EntityType,
    kind: OpKind,
    fields: dict[str, Any] | None = None,
    *,
    external_id: str | None = None,
    expected_seq: int | None = None,
    op_id: str | None = None,
) -> Op:
    return Op(
        op_id=op_id or uuid.uuid4().hex,
        connection="contract",
        link_id=uuid.uuid4().hex,
        entity=entity,
        side=connector.side,
        kind=kind,
        external_id=external_id,
        fields=fields or {},
        expected_seq=expected_seq,
        reason="contract test",
    )


def create(connector: Connector, entity: EntityType, fields: dict[str, Any]) -> WriteResult:
    return connector.write(make_op(connector, entity, OpKind.CREATE, fields))


def create_customer(connector: Connector, **extra: Any) -> WriteResult:
    return create(connector, EntityType.CUSTOMER, {"display_name": unique("Customer"), **extra})


def create_item(connector: Connector) -> WriteResult:
    fields = {"name": unique("Item"), "unit_price": Decimal("40.00")}
    return create(connector, EntityType.ITEM, fields)


def create_invoice(connector: Connector, *amounts: str) -> WriteResult:
    here = connector.side
    customer = create_customer(connector).external_id
    item = create_item(connector).external_id
    lines = [
        {"item": Ref(entity=EntityType.ITEM, id=item, side=here), "amount": Decimal(amount)}
        for amount in amounts or ("40.00",)
    ]
    fields = {"customer": Ref(entity=EntityType.CUSTOMER, id=customer, side=here), "lines": lines}
    return create(connector, EntityType.INVOICE, fields)


def read_all(
    connector: Connector, entity: EntityType, cursor: str | None = None
) -> tuple[list[ChangeEvent], str]:
    """Every page from `cursor` until complete; returns the events in order and the final cursor."""
    events: list[ChangeEvent] = []
    for _ in range(10_000):
        page = connector.read_changes(entity, cursor)
        events.extend(page.events)
        assert page.cursor is not None, "a page always says where to resume"
        cursor = page.cursor
        if page.complete:
            return events, cursor
    raise AssertionError("read_changes never completed")


def read_until_seen(
    connector: Connector, entity: EntityType, cursor: str, wanted: dict[str, Version], timeout: float = 30.0
) -> list[ChangeEvent]:
    """Read on from `cursor` until every wanted record has shown at least its wanted version.

    A change need not be readable at once: PostgreSQL outbox capture holds back transactions newer
    than the oldest one still running anywhere on the server (a busy machine's other jobs), so that
    none is ever skipped. What a connector must do is deliver it on a later read, never lose it.
    """
    events: list[ChangeEvent] = []
    deadline = time.monotonic() + timeout
    while True:
        page_events, cursor = read_all(connector, entity, cursor)
        events += page_events
        seen = latest(events)
        if all(i in seen and seen[i].version.seq >= v.seq for i, v in wanted.items()):
            return events
        if time.monotonic() > deadline:
            missing = sorted(i for i, v in wanted.items() if i not in seen or seen[i].version.seq < v.seq)
            raise AssertionError(f"never read the changes of {missing}")
        time.sleep(0.05)


def latest(events: list[ChangeEvent]) -> dict[str, ChangeEvent]:
    """The newest event seen per external id."""
    newest: dict[str, ChangeEvent] = {}
    for event in events:
        if event.external_id not in newest or event.version.seq >= newest[event.external_id].version.seq:
            newest[event.external_id] = event
    return newest


class ConnectorContract:
    """Subclass it (or call `contract_for`) and provide the `connector` fixture."""

    @pytest.fixture
    def connector(self) -> Connector:
        raise NotImplementedError("provide the connector fixture (or use contract_for)")

    # capabilities

    def test_capabilities_name_the_side_and_every_entity(self, connector: Connector) -> None:
        caps = connector.capabilities()
        assert caps.side is connector.side
        assert caps.entities == frozenset(EntityType)
        assert caps.batch_size >= 1

    # create, fetch, read

    def test_create_returns_a_new_id_a_version_and_the_stored_fields(self, connector: Connector) -> None:
        first = create_customer(connector, email="a@example.com")
        second = create_customer(connector)
        assert first.external_id != second.external_id
        assert first.fields["email"] == "a@example.com"
        assert first.fields["active"] is True
        assert not first.deleted

    def test_fetch_returns_what_the_write_produced(self, connector: Connector) -> None:
        created = create_customer(connector, phone="555-0100")
        event = connector.fetch(EntityType.CUSTOMER, created.external_id)
        assert event.side is connector.side
        assert event.entity is EntityType.CUSTOMER
        assert event.operation is Operation.UPSERT
        assert event.version == created.version
        assert event.fields == created.fields

    def test_fetch_of_an_id_that_never_existed_raises_not_found(self, connector: Connector) -> None:
        with pytest.raises(NotFoundError):
            connector.fetch(EntityType.CUSTOMER, "999999999")

    def test_a_created_record_shows_up_in_read_changes(self, connector: Connector) -> None:
        created = create_customer(connector)
        events, _ = read_all(connector, EntityType.CUSTOMER)
        event = latest(events)[created.external_id]
        assert event.version == created.version
        assert event.fields["display_name"] == created.fields["display_name"]

    def test_read_changes_only_returns_the_entity_asked_for(self, connector: Connector) -> None:
        item = create_item(connector)
        events, _ = read_all(connector, EntityType.CUSTOMER)
        assert all(event.entity is EntityType.CUSTOMER for event in events)
        assert item.external_id not in {e.external_id for e in events if e.entity is EntityType.ITEM}

    def test_references_come_back_as_this_sides_ids(self, connector: Connector) -> None:
        invoice = create_invoice(connector, "10.00", "5.50")
        event = connector.fetch(EntityType.INVOICE, invoice.external_id)
        record = event.record
        assert isinstance(record, Invoice)
        assert record.customer == Ref.model_validate(invoice.fields["customer"])
        assert record.customer.side is connector.side
        assert connector.fetch(EntityType.CUSTOMER, record.customer.id).operation is Operation.UPSERT
        assert [line.amount for line in record.lines] == [Decimal("10.00"), Decimal("5.50")]
        assert all(line.item is not None and line.item.side is connector.side for line in record.lines)

    def test_a_reference_to_an_unknown_record_is_rejected(self, connector: Connector) -> None:
        ghost = Ref(entity=EntityType.CUSTOMER, id="999999999", side=connector.side)
        with pytest.raises(RecordRejectedError):
            create(connector, EntityType.INVOICE, {"customer": ghost, "lines": [{"amount": "1.00"}]})

    # update

    def test_update_is_sparse_and_moves_the_version_forward(self, connector: Connector) -> None:
        created = create_customer(connector, phone="555-0100")
        updated = connector.write(
            make_op(
                connector,
                EntityType.CUSTOMER,
                OpKind.UPDATE,
                {"email": "new@example.com"},
                external_id=created.external_id,
                expected_seq=created.version.seq,
            )
        )
        assert updated.external_id == created.external_id
        assert updated.version.seq > created.version.seq
        assert updated.fields["email"] == "new@example.com"
        assert updated.fields["phone"] == "555-0100"
        assert updated.fields["display_name"] == created.fields["display_name"]
        assert connector.fetch(EntityType.CUSTOMER, created.external_id).version == updated.version

    def test_update_with_a_stale_seq_raises_version_conflict_and_changes_nothing(
        self, connector: Connector
    ) -> None:
        created = create_customer(connector)
        cid = created.external_id
        stale = created.version.seq
        moved = connector.write(
            make_op(connector, EntityType.CUSTOMER, OpKind.UPDATE, {"notes": "one"}, external_id=cid)
        )
        with pytest.raises(VersionConflictError):
            connector.write(
                make_op(
                    connector,
                    EntityType.CUSTOMER,
                    OpKind.UPDATE,
                    {"notes": "two"},
                    external_id=cid,
                    expected_seq=stale,
                )
            )
        now = connector.fetch(EntityType.CUSTOMER, cid)
        assert now.version == moved.version
        assert now.fields["notes"] == "one"

    def test_update_of_an_unknown_id_raises_not_found(self, connector: Connector) -> None:
        op = make_op(connector, EntityType.CUSTOMER, OpKind.UPDATE, {"notes": "x"}, external_id="999999999")
        with pytest.raises(NotFoundError):
            connector.write(op)

    # idempotency

    def test_a_repeated_create_op_id_returns_the_stored_result_and_creates_once(
        self, connector: Connector
    ) -> None:
        name = unique("Once")
        op = make_op(connector, EntityType.CUSTOMER, OpKind.CREATE, {"display_name": name})
        first = connector.write(op)
        again = connector.write(op)
        assert again == first
        events, _ = read_all(connector, EntityType.CUSTOMER)
        named = {e.external_id for e in events if e.fields.get("display_name") == name}
        assert named == {first.external_id}

    def test_a_repeated_update_op_id_applies_once(self, connector: Connector) -> None:
        created = create_customer(connector)
        op = make_op(
            connector,
            EntityType.CUSTOMER,
            OpKind.UPDATE,
            {"notes": "once"},
            external_id=created.external_id,
            expected_seq=created.version.seq,
        )
        first = connector.write(op)
        assert connector.write(op) == first
        assert connector.fetch(EntityType.CUSTOMER, created.external_id).version == first.version

    # inactivate, delete, void

    @pytest.mark.parametrize("entity", [EntityType.CUSTOMER, EntityType.ITEM])
    def test_inactivate_makes_a_name_list_record_inactive(
        self, connector: Connector, entity: EntityType
    ) -> None:
        created = create_customer(connector) if entity is EntityType.CUSTOMER else create_item(connector)
        result = connector.write(
            make_op(
                connector,
                entity,
                OpKind.INACTIVATE,
                external_id=created.external_id,
                expected_seq=created.version.seq,
            )
        )
        assert result.fields["active"] is False
        assert not result.deleted
        event = connector.fetch(entity, created.external_id)
        assert event.operation is Operation.UPSERT
        assert event.fields["active"] is False

    def test_inactivate_of_an_invoice_is_rejected(self, connector: Connector) -> None:
        invoice = create_invoice(connector)
        op = make_op(connector, EntityType.INVOICE, OpKind.INACTIVATE, external_id=invoice.external_id)
        with pytest.raises(RecordRejectedError):
            connector.write(op)

    def test_a_deleted_invoice_reads_as_a_delete_event(self, connector: Connector) -> None:
        invoice = create_invoice(connector)
        iid = invoice.external_id
        result = connector.write(
            make_op(
                connector,
                EntityType.INVOICE,
                OpKind.DELETE,
                external_id=iid,
                expected_seq=invoice.version.seq,
            )
        )
        assert result.deleted
        assert result.fields == {}
        fetched = connector.fetch(EntityType.INVOICE, iid)
        assert fetched.operation is Operation.DELETE
        assert fetched.fields == {}
        events, _ = read_all(connector, EntityType.INVOICE)
        assert latest(events)[iid].operation is Operation.DELETE

    def test_a_write_to_a_deleted_record_raises_not_found(self, connector: Connector) -> None:
        invoice = create_invoice(connector)
        iid = invoice.external_id
        connector.write(make_op(connector, EntityType.INVOICE, OpKind.DELETE, external_id=iid))
        with pytest.raises(NotFoundError):
            connector.write(
                make_op(connector, EntityType.INVOICE, OpKind.UPDATE, {"private_note": "x"}, external_id=iid)
            )

    def test_customers_are_deleted_only_in_the_app(self, connector: Connector) -> None:
        created = create_customer(connector)
        op = make_op(connector, EntityType.CUSTOMER, OpKind.DELETE, external_id=created.external_id)
        if connector.side is Side.QUICKBOOKS:
            with pytest.raises(RecordRejectedError):
                connector.write(op)
        else:
            assert connector.write(op).deleted
            assert connector.fetch(EntityType.CUSTOMER, created.external_id).operation is Operation.DELETE

    def test_void_zeroes_an_invoice_but_keeps_it(self, connector: Connector) -> None:
        invoice = create_invoice(connector, "25.00", "15.00")
        result = connector.write(
            make_op(connector, EntityType.INVOICE, OpKind.VOID, external_id=invoice.external_id)
        )
        assert not result.deleted
        assert result.version.seq > invoice.version.seq
        event = connector.fetch(EntityType.INVOICE, invoice.external_id)
        assert event.operation is Operation.UPSERT
        assert [line["amount"] for line in event.fields["lines"]] == [Decimal("0.00"), Decimal("0.00")]
        assert event.fields["total"] in (None, Decimal("0.00"))

    # cursors

    def test_paging_through_read_changes_never_skips_a_change(self, connector: Connector) -> None:
        created = [create_customer(connector) for _ in range(7)]
        updates = {}
        for result in created[::2]:
            updates[result.external_id] = connector.write(
                make_op(
                    connector,
                    EntityType.CUSTOMER,
                    OpKind.UPDATE,
                    {"notes": "edited"},
                    external_id=result.external_id,
                )
            )
        events, _ = read_all(connector, EntityType.CUSTOMER)
        seen = latest(events)
        for result in created:
            expected = updates.get(result.external_id, result)
            assert seen[result.external_id].version == expected.version

    def test_a_resumed_cursor_picks_up_later_changes(self, connector: Connector) -> None:
        create_customer(connector)
        _, cursor = read_all(connector, EntityType.CUSTOMER)
        later = create_customer(connector)
        events = read_until_seen(connector, EntityType.CUSTOMER, cursor, {later.external_id: later.version})
        assert latest(events)[later.external_id].version == later.version

    def test_changes_made_between_pages_are_not_skipped(self, connector: Connector) -> None:
        created = [create_customer(connector) for _ in range(7)]
        page = connector.read_changes(EntityType.CUSTOMER, None)
        events = list(page.events)
        # Edit every record, read or not yet read, before resuming.
        edits = {
            r.external_id: connector.write(
                make_op(
                    connector, EntityType.CUSTOMER, OpKind.UPDATE, {"notes": "mid"}, external_id=r.external_id
                )
            )
            for r in created
        }
        assert page.cursor is not None
        wanted = {i: e.version for i, e in edits.items()}
        rest = read_until_seen(connector, EntityType.CUSTOMER, page.cursor, wanted)
        seen = latest(events + rest)
        for external_id, edit in edits.items():
            assert seen[external_id].version == edit.version


def contract_for(factory: Callable[[], Connector]) -> type[ConnectorContract]:
    """A contract test class for the connectors `factory` builds (a fresh one per test)."""

    class Contract(ConnectorContract):
        @pytest.fixture
        def connector(self) -> Connector:
            return factory()

    return Contract
