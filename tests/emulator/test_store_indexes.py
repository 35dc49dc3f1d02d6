"""The emulator store's indexes: DisplayName and Name checks, and the payments of an invoice, without
a scan of every record, as right as the scan was (rows seeded straight into the store, renames,
deletes, case)."""

from __future__ import annotations

from collections.abc import ItemsView, ValuesView
from datetime import UTC, datetime

from connectors.quickbooks.emulator.store import Row, Store

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def customer(row_id: str, name: str) -> Row:
    return Row({"Id": row_id, "DisplayName": name}, NOW, NOW)


def ids(rows: list[Row]) -> list[str]:
    return [str(r.data["Id"]) for r in rows]


def test_names_are_found_whatever_their_case_and_however_the_row_arrived() -> None:
    store = Store()
    store.put("Customer", customer("1", "Amy's Bird Sanctuary"), "Create")
    assert ids(store.named("Customer", "DisplayName", "AMY'S BIRD SANCTUARY")) == ["1"]
    # Seeded straight into the rows (as loading a saved company or the benchmark's copies do).
    store.rows["Customer"]["2"] = customer("2", "Bill's Windsurf Shop")
    assert ids(store.named("Customer", "DisplayName", "bill's windsurf shop")) == ["2"]
    store.put("Customer", customer("3", "Cool Cars"), "Create")
    assert ids(store.named("Customer", "DisplayName", "Cool Cars")) == ["3"]
    assert store.named("Customer", "DisplayName", "Nobody") == []


def test_a_renamed_record_frees_its_old_name_and_a_deleted_one_holds_none() -> None:
    store = Store()
    store.put("Customer", customer("1", "Old Name"), "Create")
    assert ids(store.named("Customer", "DisplayName", "Old Name")) == ["1"]
    store.put("Customer", customer("1", "New Name"), "Update")
    assert store.named("Customer", "DisplayName", "old name") == []
    assert ids(store.named("Customer", "DisplayName", "new name")) == ["1"]
    store.delete("Customer", "1", NOW)
    assert store.named("Customer", "DisplayName", "New Name") == []


def test_a_whole_company_replaced_is_indexed_anew() -> None:
    store = Store()
    store.put("Item", Row({"Id": "1", "Name": "Hours"}, NOW, NOW), "Create")
    assert ids(store.named("Item", "Name", "hours")) == ["1"]
    store.rows = {"Item": {"7": Row({"Id": "7", "Name": "Hours"}, NOW, NOW)}}  # a saved company loaded
    assert ids(store.named("Item", "Name", "HOURS")) == ["7"]


def test_ten_thousand_customers_check_a_name_without_reading_them_all() -> None:
    store = Store()
    for n in range(10_000):
        store.put("Customer", customer(str(n + 1), f"Customer {n}"), "Create")
    reads = 0

    class Counting(dict[str, Row]):
        def values(self) -> ValuesView[Row]:  # type: ignore[override]
            nonlocal reads
            reads += 1
            return super().values()

        def items(self) -> ItemsView[str, Row]:  # type: ignore[override]
            nonlocal reads
            reads += 1
            return super().items()

    store.rows["Customer"] = Counting(store.rows["Customer"])
    for n in range(100):  # a new rows dict: indexed once, then looked up
        assert ids(store.named("Customer", "DisplayName", f"CUSTOMER {n}")) == [str(n + 1)]
    assert reads == 1


def paid(data: dict[str, object]) -> list[str]:
    return [str(i) for i in data.get("Pays", [])]  # type: ignore[attr-defined]


def payment(row_id: str, *invoices: str) -> Row:
    return Row({"Id": row_id, "Pays": list(invoices)}, NOW, NOW)


def test_rows_under_several_keys_follow_their_updates_and_deletes() -> None:
    # The payments of an invoice, without a scan of every payment on each payment written.
    store = Store()
    store.put("Payment", payment("1", "10", "11"), "Create")
    store.put("Payment", payment("2", "11"), "Create")
    assert ids(store.indexed("Payment", "paid", paid, "11")) == ["1", "2"]
    store.put("Payment", payment("1", "12"), "Update")  # re-applied to another invoice
    assert ids(store.indexed("Payment", "paid", paid, "11")) == ["2"]
    assert ids(store.indexed("Payment", "paid", paid, "12")) == ["1"]
    store.rows["Payment"]["3"] = payment("3", "11")  # straight into the rows
    assert ids(store.indexed("Payment", "paid", paid, "11")) == ["2", "3"]
    store.delete("Payment", "2", NOW)
    assert ids(store.indexed("Payment", "paid", paid, "11")) == ["3"]


def test_a_row_seeded_behind_the_index_is_found_even_after_a_put() -> None:
    store = Store()
    store.put("Customer", customer("1", "First"), "Create")
    assert ids(store.named("Customer", "DisplayName", "first")) == ["1"]  # indexed now
    store.rows["Customer"]["2"] = customer("2", "Seeded")  # behind the index's back
    store.put("Customer", customer("3", "Third"), "Create")  # then a write through put
    assert ids(store.named("Customer", "DisplayName", "seeded")) == ["2"]


def test_a_query_answer_is_kept_while_its_entity_is_unchanged_and_only_then() -> None:
    """A client paging with STARTPOSITION asks the same query once a page: the store filters and sorts
    once, until a write (or rows added behind its back) changes the entity."""
    store = Store()
    for i in range(1, 4):
        store.put("Customer", customer(str(i), f"Name {i}"), "Create")
    selections: list[int] = []

    def select() -> list[Row]:
        selections.append(1)
        return sorted(store.all("Customer"), key=lambda r: str(r.data["DisplayName"]))

    assert ids(store.selected("Customer", "q", select)) == ["1", "2", "3"]
    assert ids(store.selected("Customer", "q", select)) == ["1", "2", "3"]
    assert len(selections) == 1
    store.put("Customer", customer("2", "A first name now"), "Update")
    assert ids(store.selected("Customer", "q", select)) == ["2", "1", "3"]
    store.rows["Customer"]["4"] = customer("4", "Seeded")  # behind put's back: the count changed
    assert ids(store.selected("Customer", "q", select)) == ["2", "1", "3", "4"]
    store.delete("Customer", "4", NOW)
    assert ids(store.selected("Customer", "q", select)) == ["2", "1", "3"]
    store.put("Item", Row({"Id": "9", "Name": "Hours"}, NOW, NOW), "Create")  # another entity
    assert ids(store.selected("Customer", "q", select)) == ["2", "1", "3"]
    assert len(selections) == 4
    with store.isolated_batch():  # a batch hides what it creates item by item: never kept
        store.selected("Customer", "q", select)
        store.selected("Customer", "q", select)
    assert len(selections) == 6
