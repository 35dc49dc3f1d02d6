"""The campaign's app-side echo counter: the history triggers keep each committed version of a customer
or an invoice (lines included) and find a version bump that changed nothing."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from examples.invoicing import create_example_db
from examples.invoicing.actions import add_customer, add_invoice
from examples.invoicing.edit import edit_record
from tests.integration import app_history
from tests.integration.harness import pg_url_in
from tests.support.stores import postgres_schema

pytestmark = pytest.mark.postgres


def test_a_version_bump_that_changes_nothing_is_found_and_real_changes_are_not() -> None:
    with postgres_schema() as schema:
        url = pg_url_in(schema)
        create_example_db(url)
        app_history.install(url)
        customer = add_customer(url, display_name="History Ærø", notes="first")
        edit_record(url, "customer", customer, {"notes": "second"})
        edit_record(url, "customer", customer, {"notes": "second"})  # restates: only the version moves
        invoice = add_invoice(
            url, customer, "H-1", issued_on=date(2026, 3, 1), lines=[{"quantity": 1, "unit_price": "5.00"}]
        )
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:  # the header is untouched, only a line changes: a real change
            conn.exec_driver_sql(f"UPDATE invoices SET version = version + 1 WHERE id = {invoice}")
            conn.exec_driver_sql(f"UPDATE invoice_lines SET amount = 6 WHERE invoice_id = {invoice}")
        with engine.begin() as conn:  # and the same again changes nothing
            conn.exec_driver_sql(f"UPDATE invoices SET version = version + 1 WHERE id = {invoice}")
        engine.dispose()

        history = app_history.versions(url)
        assert [(v.table, v.version) for v in history] == [
            ("customers", 1),
            ("customers", 2),
            ("customers", 3),
            ("invoices", 1),
            ("invoices", 2),
            ("invoices", 3),
        ]
        assert [v.content["lines"][0]["amount"] for v in history[3:]] == [5, 6, 6]
        found = app_history.unchanged_writes(history, by="user")
        assert [(v.table, v.version) for v in found] == [("customers", 3), ("invoices", 3)]
        assert app_history.unchanged_writes(history) == [], "no write of ledgersync's among them"
