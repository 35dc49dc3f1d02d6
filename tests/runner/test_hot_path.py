"""The hot path's budget, in counts rather than seconds: each change decided once, few statements."""

from __future__ import annotations

import sqlalchemy as sa

from engine.clock import FakeClock
from engine.model import EntityType
from tests.support.loop import InProcess

C = EntityType.CUSTOMER


def test_each_change_is_decided_once_and_costs_few_statements(loop: InProcess, clock: FakeClock):
    ids = [
        loop.app.create(C, {"display_name": f"Client {i}", "email": f"c{i}@example.com"}) for i in range(40)
    ]
    first = loop.runner.run_until_quiet()
    assert first.decided == 40 and first.applied == 40
    for app_id in ids:
        loop.app.edit(C, app_id, notes="called back")
    clock.advance(60)
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    engine = loop.store._engine  # the state store's own engine: its statements, nobody else's
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        stats = loop.runner.run_until_quiet()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # Our write's echo in QuickBooks restates the new base: it is not decided a second time.
    assert stats.decided == 40 and stats.applied == 40
    # Measured 41 per event (capture, decision, write, echo, audit) before pages were journaled,
    # decided and recorded in sets, 13-16 after (most of it the one-at-a-time writes of the fakes);
    # a rise past 20 means a per-record query crept into the hot path.
    assert statements / 40 <= 20, statements / 40
