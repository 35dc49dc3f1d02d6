"""Initial match: which existing records link, by which key, and which are left for a person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.quickbooks.match import MatchReport, match_records, normalized
from engine.model import ChangeEvent, EntityType, Side, Version

T0 = datetime(2026, 5, 1, tzinfo=UTC)
KEYS = ("email", "display_name")


def customers(side: Side, **records: dict[str, Any]) -> dict[str, ChangeEvent]:
    return {
        external_id: ChangeEvent(
            side=side,
            connection="c1",
            entity=EntityType.CUSTOMER,
            external_id=external_id,
            version=Version(seq=1, at=T0),
            observed_at=T0,
            fields=fields,
        )
        for external_id, fields in records.items()
    }


def test_email_links_first_then_the_name_links_what_is_left() -> None:
    app = customers(
        Side.APP,
        a1={"display_name": "Ada Ltd", "email": "Ada@Example.com"},
        a2={"display_name": "Bob  Builder"},
        a3={"display_name": "Nobody Here"},
    )
    qbo = customers(
        Side.QUICKBOOKS,
        q1={"display_name": "Ada Limited", "email": "ada@example.com"},
        q2={"display_name": "bob builder", "email": "bob@example.com"},
    )
    assert match_records(EntityType.CUSTOMER, KEYS, app, qbo) == [("a1", "q1"), ("a2", "q2")]


def test_a_key_value_shared_by_two_records_links_neither_and_is_reported() -> None:
    app = customers(Side.APP, a1={"display_name": "Ann", "email": "shared@example.com"})
    qbo = customers(
        Side.QUICKBOOKS,
        q1={"display_name": "Ann One", "email": "shared@example.com"},
        q2={"display_name": "Ann Two", "email": "shared@example.com"},
    )
    report = MatchReport()
    assert match_records(EntityType.CUSTOMER, KEYS, app, qbo, report) == []
    assert report.ambiguous == [(EntityType.CUSTOMER, "email", "shared@example.com")]


def test_a_record_linked_by_email_is_not_linked_again_by_name() -> None:
    app = customers(
        Side.APP,
        a1={"display_name": "Same Name", "email": "one@example.com"},
        a2={"display_name": "Same Name (2)"},
    )
    qbo = customers(Side.QUICKBOOKS, q1={"display_name": "Same Name", "email": "one@example.com"})
    assert match_records(EntityType.CUSTOMER, KEYS, app, qbo) == [("a1", "q1")]


def test_values_compare_without_case_or_extra_spaces_and_empty_never_matches() -> None:
    assert normalized("  Ada   LTD ") == normalized("ada ltd") == "ada ltd"
    assert normalized("   ") is None
    assert normalized(None) is None
