"""Links map ids one-to-one both ways; snapshots are saved optimistically by revision."""

from __future__ import annotations

import pytest

from engine.errors import VersionConflictError
from engine.model import EntityType, Side
from engine.state import Snapshot
from engine.store import LinkExistsError, NotStoredError, SnapshotConflictError, SqlStateStore
from tests.support.samples import CONNECTION

CUSTOMER = EntityType.CUSTOMER


def test_a_link_is_found_by_either_id(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
    assert len(link.id) == 32
    int(link.id, 16)
    with store.session() as s:
        assert s.get_link(link.id) == link
        assert s.find_link(CONNECTION, CUSTOMER, Side.APP, "app-1") == link
        assert s.find_link(CONNECTION, CUSTOMER, Side.QUICKBOOKS, "qb-1") == link
        assert s.find_link(CONNECTION, CUSTOMER, Side.APP, "qb-1") is None
        assert s.find_link(CONNECTION, EntityType.ITEM, Side.APP, "app-1") is None
        assert s.find_link("other", CUSTOMER, Side.APP, "app-1") is None
        assert s.get_link("0" * 32) is None


@pytest.mark.parametrize(("app_id", "quickbooks_id"), [("app-1", "qb-2"), ("app-2", "qb-1")])
def test_an_id_links_to_one_record_only(store: SqlStateStore, app_id: str, quickbooks_id: str) -> None:
    with store.session() as s:
        s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
    with pytest.raises(LinkExistsError), store.session() as s:
        s.create_link(CONNECTION, CUSTOMER, app_id, quickbooks_id)
    with store.session() as s:
        assert len(s.list_links(CONNECTION)) == 1


def test_link_exists_error_means_re_read() -> None:
    assert issubclass(LinkExistsError, VersionConflictError)


def test_the_same_ids_may_link_other_entities_and_connections(store: SqlStateStore) -> None:
    with store.session() as s:
        s.create_link(CONNECTION, CUSTOMER, "1", "1")
        s.create_link(CONNECTION, EntityType.ITEM, "1", "1")
        s.create_link("other", CUSTOMER, "1", "1")
    with store.session() as s:
        assert len(s.list_links(CONNECTION)) == 2
        assert len(s.list_links("other")) == 1


def test_many_links_may_lack_an_id(store: SqlStateStore) -> None:
    with store.session() as s:
        s.create_link(CONNECTION, CUSTOMER, "app-1", None)
        s.create_link(CONNECTION, CUSTOMER, "app-2", None)
        s.create_link(CONNECTION, CUSTOMER, None, "qb-1")
        s.create_link(CONNECTION, CUSTOMER, None, "qb-2")
        assert len(s.list_links(CONNECTION, CUSTOMER)) == 4
        assert s.list_links(CONNECTION, EntityType.ITEM) == []


def test_set_link_id_fills_in_the_missing_side(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", None)
        updated = s.set_link_id(link.id, Side.QUICKBOOKS, "qb-9")
    assert updated.quickbooks_id == "qb-9"
    assert updated.app_id == "app-1"
    with store.session() as s:
        assert s.find_link(CONNECTION, CUSTOMER, Side.QUICKBOOKS, "qb-9") == updated
        assert s.set_link_id(link.id, Side.QUICKBOOKS, "qb-9") == updated
        cleared = s.set_link_id(link.id, Side.APP, None)
        assert cleared.app_id is None
        assert s.get_link(link.id) == cleared


def test_set_link_id_refuses_an_id_linked_elsewhere(store: SqlStateStore) -> None:
    with store.session() as s:
        s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
        other = s.create_link(CONNECTION, CUSTOMER, "app-2", None)
    with pytest.raises(LinkExistsError), store.session() as s:
        s.set_link_id(other.id, Side.QUICKBOOKS, "qb-1")
    with store.session() as s:
        assert s.get_link(other.id) == other


def test_unknown_links_are_reported(store: SqlStateStore) -> None:
    with pytest.raises(NotStoredError), store.session() as s:
        s.set_link_id("missing", Side.APP, "x")
    with pytest.raises(NotStoredError), store.session() as s:
        s.lock_link("missing")
    with pytest.raises(NotStoredError), store.session() as s:
        s.save_snapshot(Snapshot(link_id="missing"))


def test_lock_link_holds_a_known_link(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", None)
        s.lock_link(link.id)
        assert s.set_link_id(link.id, Side.QUICKBOOKS, "qb-1").quickbooks_id == "qb-1"


def test_snapshot_revisions_count_saves(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
        assert s.get_snapshot(link.id) is None
        first = s.save_snapshot(
            Snapshot(link_id=link.id, base={"display_name": "Ada", "balance": "10.50"}, app_seq=3)
        )
    assert first.revision == 1
    with store.session() as s:
        assert s.get_snapshot(link.id) == first
        second = s.save_snapshot(first.model_copy(update={"quickbooks_seq": 8, "tombstone": True}))
    assert second.revision == 2
    with store.session() as s:
        stored = s.get_snapshot(link.id)
    assert stored == second
    assert stored is not None
    assert (stored.seq(Side.APP), stored.seq(Side.QUICKBOOKS), stored.tombstone) == (3, 8, True)
    assert stored.base == {"display_name": "Ada", "balance": "10.50"}


def test_a_snapshot_saved_from_an_old_revision_conflicts(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
        read_by_both = s.save_snapshot(Snapshot(link_id=link.id, base={"display_name": "Ada"}))
    with store.session() as s:
        s.save_snapshot(read_by_both.model_copy(update={"base": {"display_name": "First"}}))
    with pytest.raises(SnapshotConflictError), store.session() as s:
        s.save_snapshot(read_by_both.model_copy(update={"base": {"display_name": "Second"}}))
    with store.session() as s:
        stored = s.get_snapshot(link.id)
    assert stored is not None
    assert (stored.base, stored.revision) == ({"display_name": "First"}, 2)
    assert issubclass(SnapshotConflictError, VersionConflictError)


def test_a_snapshot_without_base_keeps_none(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", None)
        saved = s.save_snapshot(Snapshot(link_id=link.id, app_seq=1))
        assert s.get_snapshot(link.id) == saved
    assert saved.base is None
