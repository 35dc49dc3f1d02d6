"""After an initial match: edits still flow when the two records agreed on few fields; empty fields fill."""

from __future__ import annotations

from pathlib import Path

from connectors.quickbooks.match import initial_match
from engine.clock import FakeClock
from engine.model import EntityType
from policies import PolicySet, parse_policy
from tests.support.loop import InProcess, in_process
from tests.support.stores import fresh_store

C = EntityType.CUSTOMER

#: Contact details are a person's call: every differing field but the name goes to review.
CAREFUL = """
version: 1
entities:
  customer:
    conflict: manual
    match_keys: [display_name]
    fields:
      display_name: {conflict: newest_wins}
"""


def matched_pair(loop: InProcess, clock: FakeClock, app: dict[str, object], qbo: dict[str, object]) -> str:
    app_id = loop.app.create(C, app)
    loop.quickbooks.create(C, qbo)
    report = initial_match(loop.store, "default", loop.app, loop.quickbooks, loop.runner.policy, clock)
    assert report.count(C) == 1
    loop.runner.run_until_quiet()
    return app_id


def open_conflicts(loop: InProcess) -> dict[str, tuple[object, object]]:
    with loop.store.session() as s:
        return {c.field: (c.app, c.quickbooks) for c in s.list_conflicts(open_only=True)}


def test_a_rename_after_a_match_that_agreed_on_few_fields_reaches_quickbooks(
    tmp_path: Path, clock: FakeClock, store_backend: str
):
    with fresh_store(store_backend, tmp_path) as store:
        loop = in_process(store, parse_policy(CAREFUL, "careful.yaml"), clock)
        app_id = matched_pair(
            loop,
            clock,
            {
                "display_name": "Northwind",
                "email": "ap@northwind.test",
                "phone": "555-010-1000",
                "notes": "app",
                "given_name": "Nils",
                "family_name": "North",
                "company_name": "Northwind",
                "billing_address": {"lines": ["1 Harbour Rd"], "city": "Oslo"},
            },
            {
                "display_name": "Northwind",
                "email": "accounts@northwind.test",
                "phone": "555-010-2000",
                "notes": "books",
                "given_name": "Nora",
                "family_name": "Wind",
                "company_name": "Northwind Ltd",
                "billing_address": {"lines": ["9 Quay St"], "city": "Bergen"},
            },
        )
        # Only the name and the active flag agreed: the base holds two fields of nine.
        differing = {
            "email",
            "phone",
            "notes",
            "given_name",
            "family_name",
            "company_name",
            "billing_address",
        }
        assert set(open_conflicts(loop)) == differing
        loop.app.edit(C, app_id, display_name="Northwind Traders")
        clock.advance(60)
        stats = loop.runner.run_until_quiet()
        (qbo,) = loop.quickbooks.all(C).values()
        assert qbo["display_name"] == "Northwind Traders"
        assert stats.applied == 1
        # The rename settled nothing else: the open conflicts are still open, with their values.
        conflicts = open_conflicts(loop)
        assert set(conflicts) == differing
        assert conflicts["phone"] == ("555-010-1000", "555-010-2000")


def test_a_first_match_fills_the_empty_side_of_a_manual_field(
    tmp_path: Path, clock: FakeClock, store_backend: str
):
    with fresh_store(store_backend, tmp_path) as store:
        loop = in_process(store, PolicySet.default(), clock)
        app_id = matched_pair(
            loop,
            clock,
            {"display_name": "Contoso", "email": "billing@contoso.test", "phone": "555-010-3000"},
            {"display_name": "Contoso", "phone": None},
        )
        (qbo,) = loop.quickbooks.all(C).values()
        # The default policy matches on display name and makes e-mail and phone manual: still no
        # conflict, the side that had no value takes the other's.
        assert open_conflicts(loop) == {}
        assert qbo["email"] == "billing@contoso.test" and qbo["phone"] == "555-010-3000"
        assert loop.app.get(C, app_id)["email"] == "billing@contoso.test"  # type: ignore[index]
