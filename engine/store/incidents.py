"""Alert incidents: opened when a condition is found, claimed by one sender, marked sent, cleared."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.state import AlertIncident
from engine.store import tables as t
from engine.store.base import SessionBase

#: Keys deleted per statement when incidents clear.
_CHUNK = 500


class IncidentsMixin(SessionBase):
    def open_incidents(self, incidents: Sequence[AlertIncident]) -> None:
        """Insert each (key, channel) not open yet; an open one is left as it is (sent or not)."""
        if not incidents:
            return
        rows = [
            {
                **i.model_dump(include={"key", "channel", "kind", "connection", "message", "opened_at"}),
                "attempts": 0,
            }
            for i in incidents
        ]
        insert = self._insert(t.alert_incidents)
        self._conn.execute(insert.on_conflict_do_nothing(index_elements=["key", "channel"]), rows)

    def clear_incidents(self, current: Collection[str], keep: Collection[str] = ()) -> int:
        """Delete the incidents whose key is not in `current` (their condition is gone), except those
        whose key starts with one of `keep` (conditions this check could not see)."""
        c = t.alert_incidents.c
        stored = {str(k) for k in self._conn.execute(sa.select(c.key).distinct()).scalars()}
        gone = sorted(k for k in stored - set(current) if not k.startswith(tuple(keep)))
        for start in range(0, len(gone), _CHUNK):
            self._conn.execute(sa.delete(t.alert_incidents).where(c.key.in_(gone[start : start + _CHUNK])))
        return len(gone)

    def claim_unsent(self, now: datetime, lease: timedelta, channels: Collection[str]) -> list[AlertIncident]:
        """The unsent incidents on `channels` no other process is sending, each now claimed for `lease`."""
        c = t.alert_incidents.c
        free = sa.and_(
            c.sent_at.is_(None),
            c.channel.in_(list(channels)),
            sa.or_(c.claimed_until.is_(None), c.claimed_until < now),
        )
        claimed = []
        for row in self._all(sa.select(t.alert_incidents).where(free).order_by(c.opened_at, c.key)):
            taken = self._conn.execute(
                sa.update(t.alert_incidents)
                .where(c.key == row["key"], c.channel == row["channel"], free)
                .values(claimed_until=now + lease, attempts=c.attempts + 1)
            ).rowcount
            if taken:
                claimed.append(_incident(row))
        return claimed

    def incident_sent(self, key: str, channel: str, now: datetime, error: str | None = None) -> None:
        """Record a send: done (`error` None), or failed and free for the next check to try again."""
        c = t.alert_incidents.c
        values = {"sent_at": now, "last_error": None} if error is None else {"last_error": error[:1000]}
        self._conn.execute(
            sa.update(t.alert_incidents)
            .where(c.key == key, c.channel == channel)
            .values(claimed_until=None, **values)
        )

    def incidents(self, connection: str | None = None) -> list[AlertIncident]:
        c = t.alert_incidents.c
        statement = sa.select(t.alert_incidents).order_by(c.opened_at, c.key, c.channel)
        if connection is not None:
            statement = statement.where(c.connection == connection)
        return [_incident(r) for r in self._all(statement)]


def _incident(row: sa.RowMapping) -> AlertIncident:
    return AlertIncident.model_validate({k: v for k, v in row.items() if k != "claimed_until"})
