"""The connector contract, run against the in-memory fake playing each side."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.clock import FakeClock
from engine.fakes import FakeConnector
from engine.model import Side

from .suite import contract_for

T0 = datetime(2025, 1, 1, tzinfo=UTC)

# Small pages, so that every paging test really pages.
TestFakeApp = contract_for(lambda: FakeConnector(Side.APP, "contract", FakeClock(T0), page_size=3))
TestFakeQuickBooks = contract_for(
    lambda: FakeConnector(Side.QUICKBOOKS, "contract", FakeClock(T0), computes_totals=True, page_size=3)
)
