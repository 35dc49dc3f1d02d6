"""QboConnector against the emulator: the connector contract, then what only QuickBooks does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import pytest

from connectors.quickbooks.connector import QboConnector
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.mapping import MappingContext
from engine.errors import FieldRefusedError, RecordRejectedError
from engine.model import ChangeEvent, EntityType, Side
from engine.plan import Op, OpKind
from engine.ports import Connector, StateStore
from policies import PolicySet, parse_policy
from tests.contract.suite import ConnectorContract, latest, read_all
from tests.quickbooks.conftest import Rig

#: The emulator's seeded "Sales of Product Income" account, the default for items.
INCOME_ACCOUNT = "1"


def make_connector(rig: Rig, connection: str = "c1", **kwargs: object) -> QboConnector:
    rig.connect(connection)
    return QboConnector(
        rig.client(connection),
        MappingContext(income_account=INCOME_ACCOUNT),
        kwargs.pop("policy", PolicySet.default()),  # type: ignore[arg-type]
        rig.clock,
        connection,
        **kwargs,  # type: ignore[arg-type]
    )


class TestQboConnectorContract(ConnectorContract):
    @pytest.fixture
    def connector(self, rig: Rig) -> Connector:
        return make_connector(rig)


def customer_op(name: str, **fields: object) -> Op:
    return Op(
        op_id=uuid.uuid4().hex,
        connection="c1",
        link_id=uuid.uuid4().hex,
        entity=EntityType.CUSTOMER,
        side=Side.QUICKBOOKS,
        kind=OpKind.CREATE,
        fields={"display_name": name, **fields},
        reason="test",
    )


def policy_with(customer_duplicates: str) -> PolicySet:
    text = f"version: 1\nentities:\n  customer:\n    duplicate_names: {customer_duplicates}\n"
    return parse_policy(text, "test policy")


class TestDuplicateNames:
    def test_suffix_creates_the_record_under_the_next_free_name(self, rig: Rig) -> None:
        connector = make_connector(rig, policy=policy_with("suffix"))
        rig.qbo.create_record("Customer", {"DisplayName": "Acme"})
        rig.qbo.create_record("Customer", {"DisplayName": "Acme (2)"})
        op = customer_op("Acme", email="a@acme.example")
        result = connector.write(op)
        assert result.fields["display_name"] == "Acme (3)"
        assert connector.write(op) == result  # a retried op is replayed, not created again
        assert rig.count("Customer") == 3

    def test_link_returns_the_existing_customer_so_the_runner_links_it(self, rig: Rig) -> None:
        connector = make_connector(rig, policy=policy_with("link"))
        existing = rig.qbo.create_record("Customer", {"DisplayName": "Globex"})
        result = connector.write(customer_op("globex"))
        assert result.external_id == existing["Id"]
        assert rig.count("Customer") == 1

    def test_link_never_adopts_a_vendor_holding_the_name_it_suffixes_instead(self, rig: Rig) -> None:
        connector = make_connector(rig, policy=policy_with("link"))
        rig.qbo.create_record("Vendor", {"DisplayName": "Initech"})
        result = connector.write(customer_op("Initech"))
        assert result.fields["display_name"] == "Initech (2)"
        assert rig.count("Customer") == 1

    def test_manual_parks_the_record_with_a_message_for_the_reviewer(self, rig: Rig) -> None:
        connector = make_connector(rig, policy=policy_with("manual"))
        existing = rig.qbo.create_record("Customer", {"DisplayName": "Umbrella"})
        with pytest.raises(
            RecordRejectedError, match=rf"already taken in QuickBooks \(Id={existing['Id']}\)"
        ):
            connector.write(customer_op("Umbrella"))
        assert rig.count("Customer") == 1


class TestRenamesIntoTakenNames:
    """A rename follows the same policy as a create; the emulator answers 6240 to it as QuickBooks does."""

    def rename(self, entity: EntityType, record: dict[str, object], field: str, name: str) -> Op:
        return Op(
            op_id=uuid.uuid4().hex,
            connection="c1",
            link_id=uuid.uuid4().hex,
            entity=entity,
            side=Side.QUICKBOOKS,
            kind=OpKind.UPDATE,
            external_id=str(record["Id"]),
            expected_seq=int(str(record["SyncToken"])),
            fields={field: name, "description" if entity is EntityType.ITEM else "notes": "renamed"},
            reason="test",
        )

    def test_suffix_renames_an_item_to_the_next_free_name(self, rig: Rig) -> None:
        text = "version: 1\nentities:\n  item:\n    duplicate_names: suffix\n"
        connector = make_connector(rig, policy=parse_policy(text, "test policy"))
        item = {"Type": "Service", "IncomeAccountRef": {"value": INCOME_ACCOUNT}}
        rig.qbo.create_record("Item", {"Name": "Widget", **item})
        ours = rig.qbo.create_record("Item", {"Name": "Gadget", **item})
        result = connector.write(self.rename(EntityType.ITEM, ours, "name", "widget"))
        assert result.fields["name"] == "widget (2)" and result.fields["description"] == "renamed"
        assert rig.qbo.read_record("Item", ours["Id"])["Name"] == "widget (2)"

    def test_manual_refuses_only_the_name_and_names_the_item_holding_it(self, rig: Rig) -> None:
        connector = make_connector(rig)  # items: duplicate_names manual by default
        item = {"Type": "Service", "IncomeAccountRef": {"value": INCOME_ACCOUNT}}
        holder = rig.qbo.create_record("Item", {"Name": "Widget", **item})
        ours = rig.qbo.create_record("Item", {"Name": "Gadget", **item})
        with pytest.raises(FieldRefusedError) as refused:
            connector.write(self.rename(EntityType.ITEM, ours, "name", "Widget"))
        assert refused.value.field == "name" and refused.value.code == "6240"
        assert f"Item {holder['Id']} 'Widget' already has it (the policy says manual)" in str(refused.value)
        assert rig.qbo.read_record("Item", ours["Id"])["Name"] == "Gadget"

    @pytest.mark.parametrize(
        "emulator_config",
        [EmulatorConfig(duplicate_name_detail="id"), EmulatorConfig(duplicate_name_detail="documented")],
        ids=["6240 names the Id", "6240 as documented, no Id"],
    )
    def test_the_holder_is_named_whether_6240_gives_its_id_or_not(self, rig: Rig) -> None:
        connector = make_connector(rig, policy=policy_with("manual"))
        ours = rig.qbo.create_record("Customer", {"DisplayName": "Ours"})
        holder = rig.qbo.create_record("Employee", {"GivenName": "Dana", "FamilyName": "Scully"})
        with pytest.raises(FieldRefusedError, match=rf"Employee {holder['Id']} 'Dana Scully' already has it"):
            connector.write(self.rename(EntityType.CUSTOMER, ours, "display_name", "dana scully"))


class TestReading:
    def test_a_cursor_older_than_30_days_is_swept_with_inactive_records_included(self, rig: Rig) -> None:
        connector = make_connector(rig)
        kept = rig.qbo.create_record("Customer", {"DisplayName": "Kept"})
        _, cursor = read_all(connector, EntityType.CUSTOMER)
        assert json.loads(cursor)["mode"] == "cdc"
        rig.qbo.advance_clock(31 * 86400)
        rig.clock.advance(31 * 86400)
        gone = rig.qbo.create_record("Customer", {"DisplayName": "Gone"})
        rig.qbo.delete_record("Customer", gone["Id"])  # inactivated: queries hide it unless asked
        rig.qbo.edit_record("Customer", kept["Id"], {"Notes": "a month later"})
        rig.connect("c1")  # the month also expired the tokens
        events, cursor = read_all(connector, EntityType.CUSTOMER, cursor)
        seen = latest(events)
        assert seen[gone["Id"]].fields["active"] is False
        assert seen[kept["Id"]].fields["notes"] == "a month later"
        assert json.loads(cursor)["mode"] == "cdc"

    def test_a_capped_cdc_answer_is_read_in_narrower_windows(self, rig_small_cdc: Rig) -> None:
        rig = rig_small_cdc
        connector = make_connector(rig, cdc_cap=3)
        _, cursor = read_all(connector, EntityType.CUSTOMER)
        made = []
        for n in range(8):
            made.append(rig.qbo.create_record("Customer", {"DisplayName": f"Spread {n}"}))
            rig.qbo.advance_clock(2)  # each its own second: the windows narrow by time, no sweep
        pages = 0
        seen: dict[str, ChangeEvent] = {}
        while True:
            page = connector.read_changes(EntityType.CUSTOMER, cursor)
            pages += 1
            seen.update(latest(list(page.events)))
            cursor = page.cursor
            if page.complete:
                break
        assert {m["Id"] for m in made} <= set(seen)
        assert pages >= 3
        assert json.loads(cursor or "{}")["mode"] == "cdc"

    def test_the_four_entities_are_read_in_one_cdc_call_as_reading_each_alone_would(self, rig: Rig) -> None:
        connector = make_connector(rig)
        entities = list(EntityType)
        old = rig.qbo.create_record("Customer", {"DisplayName": "Before"})
        cursors = {entity: read_all(connector, entity)[1] for entity in entities}
        rig.qbo.advance_clock(5)
        item = {"Type": "Service", "IncomeAccountRef": {"value": INCOME_ACCOUNT}}
        made = rig.qbo.create_record("Item", {"Name": "Together", **item})
        rig.qbo.edit_record("Customer", old["Id"], {"Notes": "edited"})
        rig.qbo.clear_request_log()

        pages = connector.read_changes_together(cursors)

        assert pages is not None and set(pages) == set(entities)
        assert rig.qbo.request_log()["by_endpoint"] == {"cdc": 1}
        assert all(page.complete for page in pages.values())
        assert latest(list(pages[EntityType.CUSTOMER].events))[old["Id"]].fields["notes"] == "edited"
        assert set(latest(list(pages[EntityType.ITEM].events))) == {made["Id"]}
        alone = {entity: connector.read_changes(entity, cursors[entity]) for entity in entities}
        for entity in entities:  # the same changes, and a cursor past them, as a read of each alone
            assert latest(list(pages[entity].events)) == latest(list(alone[entity].events))
            together, one = (json.loads(page.cursor or "") for page in (pages[entity], alone[entity]))
            assert together["mode"] == one["mode"] == "cdc"
            before, after, alone_after = (
                datetime.fromisoformat(c["since"]) for c in (json.loads(cursors[entity]), together, one)
            )
            assert before < after <= alone_after

    def test_versions_the_journal_holds_are_left_out_of_a_cdc_read_unmapped(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The echoes of our own writes: their results were journaled when written.
        connector = make_connector(rig)
        entities = [EntityType.CUSTOMER, EntityType.ITEM]
        ours = rig.qbo.create_record("Customer", {"DisplayName": "Ours"})
        theirs = rig.qbo.create_record("Customer", {"DisplayName": "Theirs"})
        cursors = {entity: read_all(connector, entity)[1] for entity in entities}
        rig.qbo.advance_clock(5)
        ours = rig.qbo.edit_record("Customer", ours["Id"], {"Notes": "written by us"})
        theirs = rig.qbo.edit_record("Customer", theirs["Id"], {"Notes": "an accountant's"})
        journal = {ours["Id"]: int(ours["SyncToken"])}
        mapped: list[str] = []
        real = connector._event

        def spy(entity: EntityType, row: Any) -> Any:
            mapped.append(str(row["Id"]))
            return real(entity, row)

        monkeypatch.setattr(connector, "_event", spy)

        def journaled(entity: EntityType, ids: Any) -> dict[str, int]:
            return {i: journal[i] for i in ids if i in journal} if entity is EntityType.CUSTOMER else {}

        pages = connector.read_changes_together(cursors, journaled)
        assert pages is not None
        assert [e.external_id for e in pages[EntityType.CUSTOMER].events] == [theirs["Id"]]
        assert mapped == [theirs["Id"]]
        alone = connector.read_changes(EntityType.CUSTOMER, cursors[EntityType.CUSTOMER], journaled)
        assert [e.external_id for e in alone.events] == [theirs["Id"]]

    def test_reading_together_declines_what_one_call_cannot_answer_whole(self, rig_small_cdc: Rig) -> None:
        rig = rig_small_cdc
        connector = make_connector(rig, cdc_cap=3)
        entities = [EntityType.CUSTOMER, EntityType.ITEM]
        never_read: dict[EntityType, str | None] = {entity: None for entity in entities}
        assert connector.read_changes_together(never_read) is None  # a first read sweeps with queries
        cursors = {entity: read_all(connector, entity)[1] for entity in entities}
        for n in range(3):
            rig.qbo.create_record("Customer", {"DisplayName": f"Many {n}"})
        rig.qbo.clear_request_log()
        assert connector.read_changes_together(cursors) is None  # at the cap: it may have been cut
        assert rig.qbo.request_log()["by_endpoint"] == {"cdc": 1}


@pytest.fixture
def rig_small_cdc(sqlite_store: StateStore) -> Iterator[Rig]:
    with running_emulator(EmulatorConfig(cdc_max_objects=3)) as handle, ExitStack() as stack:
        yield Rig(handle, sqlite_store, stack)
