"""The fake inbox: notifications of changed records, kept in the store's inbox as the real one is.

Implements `engine.ports.Inbox` as real, deterministic code. `notify(event)` stands for a webhook
whose record reads as `event` (the event itself is the stored body); `ingest` reads what is pending,
journals it (`engine.journal`, as the QuickBooks inbox does) and marks it read, counting its reads.
Fault knob: `fail_next` makes that many reads fail as an unreachable upstream does, leaving the
notifications pending.
"""

from __future__ import annotations

import threading

from engine.errors import UpstreamUnavailableError
from engine.journal import journal_events, key_of
from engine.model import ChangeEvent
from engine.ports import Clock, Inbox, StateStore
from engine.state import AppendResult, InboxReport


class FakeInbox:
    def __init__(self, store: StateStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.reads = 0
        self.fail_next = 0
        self._lock = threading.Lock()

    def notify(self, event: ChangeEvent) -> None:
        with self.store.session() as s:
            s.inbox_add(event.model_dump_json().encode(), self.clock.now(), event.connection)

    def ingest(self, limit: int = 100, connection: str | None = None) -> InboxReport:
        with self._lock:
            self.reads += 1
            failing, self.fail_next = self.fail_next > 0, max(0, self.fail_next - 1)
        with self.store.session() as s:
            # The fake keeps each notification under its connection, as the real one under its realm.
            entries = s.inbox_pending(limit, connection)
        report = InboxReport(entries=len(entries))
        if failing:
            report.failed["fake"] = str(UpstreamUnavailableError("the fake inbox's upstream is down"))
            return report
        for entry in entries:
            event = ChangeEvent.model_validate_json(entry.body)
            with self.store.session() as s:
                if journal_events(s, [event], self.clock.now()) == [AppendResult.NEW]:
                    report.changed.append(key_of(event))
                s.inbox_done(entry.id)
            report.events += 1
        return report


def _conforms(inbox: FakeInbox) -> Inbox:
    return inbox  # checked by mypy: the fake implements the port
