"""The app connector's cursor: an opaque JSON string, and the pure rules that move it.

Rules (DESIGN.md): a new read starts again a little before the last one ended (the overlap) and
drops what it already returned there, by (id, version); the high-water mark never passes the start
of the read that produced it; on PostgreSQL the transactions still running at a read are kept, so
their rows are read once they commit, whatever their poll key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import ConfigurationError

#: At most this many (id, version) pairs are kept for de-duplication; beyond it, repeats are allowed.
SEEN_LIMIT = 5_000


class StreamState(BaseModel):
    """One polled stream (the table, or its tombstones)."""

    model_config = ConfigDict(extra="forbid")

    #: The poll key every completed read covered up to (None: nothing read yet).
    high: int | None = None
    #: Inside a paged read: the (poll key, primary key) of the last row returned.
    after: tuple[int, str] | None = None
    #: The last row's poll column as stored, when it was no readable version or time (it is parked).
    after_raw: int | float | str | None = None
    #: Inside a paged read: the highest poll key returned so far.
    top: int | None = None
    done: bool = False


class CursorState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = 1
    rows: StreamState = StreamState()
    tombs: StreamState = StreamState()
    #: The start of the read in progress (poll-key units); a read never moves `high` past it.
    start: int | None = None
    #: (stream, id, version, poll key) already returned near the high-water marks.
    seen: list[tuple[str, str, int, int]] = []
    #: PostgreSQL: transaction ids that were running at the last read.
    running: list[int] = []
    #: Outbox capture: the outbox position (id, or transaction horizon on PostgreSQL) read up to.
    outbox: int | None = None
    #: Outbox capture on PostgreSQL: transactions at or above `outbox` whose rows were all read.
    outbox_read: list[int] = []

    @property
    def reading(self) -> bool:
        """Whether a paged read is in progress (the next call continues it without overlap).

        Polling by version keeps no start time: a stream part-way through its pages says so.
        """
        return self.start is not None or self.rows.after is not None or self.tombs.after is not None


def decode(cursor: str | None) -> CursorState:
    if cursor is None:
        return CursorState()
    try:
        # Straight from JSON in pydantic's core: a cursor near SEEN_LIMIT pairs is read on every page,
        # and json.loads then model_validate took three times as long.
        return CursorState.model_validate_json(cursor)
    except (ValueError, ValidationError):
        raise ConfigurationError(f"not a cursor of the app connector: {cursor[:80]!r}") from None


def encode(state: CursorState) -> str:
    """Compact JSON (as json.dumps with separators would write it), nine times faster than through a dict."""
    return state.model_dump_json(exclude_defaults=True)


def lower_bound(stream: StreamState, overlap: int) -> int | None:
    """Where a new read of `stream` starts: the high-water mark minus the overlap (None: the start)."""
    return None if stream.high is None else stream.high - overlap


def finish(stream: StreamState, start: int | None, cap_at_start: bool) -> StreamState:
    """The stream after its read completed: `high` moves to what it covered, never past the read's start."""
    high = stream.top if stream.top is not None else stream.high
    if high is not None and cap_at_start and start is not None:
        high = min(high, start)
    if stream.high is not None and high is not None:
        high = max(high, stream.high)
    return StreamState(high=high, done=True)


def prune_seen(state: CursorState, lows: dict[str, int | None]) -> list[tuple[str, str, int, int]]:
    """Keep the seen pairs a next read can meet again (poll key at or above its stream's lower bound)."""
    kept = [entry for entry in state.seen if (low := lows.get(entry[0])) is None or entry[3] >= low]
    return kept[-SEEN_LIMIT:]


def prune_seen_reading(
    state: CursorState, overlap: int, cap_at_start: bool
) -> list[tuple[str, str, int, int]]:
    """`prune_seen` part-way through a paged read: drops what even the read's final lower bound leaves
    out. Each stream's high-water mark can only rise as its read goes on, so the bound the read ends with
    is at or above the one its pages so far give; without this the pairs of every row read so far
    ride in the cursor, which is decoded and encoded on every page (quadratic in a big read's pages)."""
    lows = {
        name: lower_bound(finish(getattr(state, name), state.start, cap_at_start), overlap)
        for name in ("rows", "tombs")
    }
    return prune_seen(state, lows)
