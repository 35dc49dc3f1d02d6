"""Cursor math for reading QuickBooks changes: CDC windows, the 1000-object cap, the query sweep. Pure.

A cursor is in one of two modes:

- `cdc`: the next read is `GET /cdc?changedSince=<since>`. `since` is a moment up to which every change
  has been read; it never passes the start of the read that produced it (in QuickBooks' clock: the
  response `time` minus the request's duration), less a small overlap, since the objects' timestamps
  are second-precision and a write may commit with a stamp just before the read began.
- `sweep`: the next read is a query page, `LastUpdatedTime >= since` in `LastUpdatedTime` order. Used
  for the first read (there is no "everything" in CDC), for a cursor older than CDC's 30 days, and when
  more than a cap's worth of changes share one timestamp. When the sweep ends, CDC resumes at `resume`,
  which is never after the sweep began, so nothing changed during the sweep is lost, and deletions
  (which queries never show) are read from CDC as far back as it allows.

CDC has no paging and no end time. The emulator, like QuickBooks as far as is known, keeps the oldest
changes when it cuts a response at the cap, so a capped response covers everything strictly before the
newest `LastUpdatedTime` it returned: the next read starts at that moment (inclusive, so nothing at it
is lost) and the page is marked incomplete. If that moment is not after `since`, the window cannot be
narrowed by time any more and the cursor switches to a sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from engine import jsontext

#: QuickBooks refuses changedSince older than this (facts 6).
CDC_MAX_DAYS = 30
#: Kept clear of the 30-day edge so a read that takes a while is not refused.
CDC_EDGE_MARGIN = timedelta(hours=1)
#: Re-read this much before the last covered moment (duplicates are dropped on (id, SyncToken)).
DEFAULT_OVERLAP = timedelta(seconds=60)
#: Objects per CDC response before QuickBooks cuts it (facts 6), and rows per query page (facts 5).
CDC_CAP = 1000
SWEEP_PAGE = 1000
_FORMAT = 1


class CursorError(ValueError):
    """A stored cursor that this connector did not write (or a newer format)."""


class Mode(StrEnum):
    CDC = "cdc"
    SWEEP = "sweep"


@dataclass(frozen=True)
class QboCursor:
    mode: Mode
    #: CDC: changedSince of the next read. Sweep: the lower bound of the next page (None: from the start).
    since: datetime | None = None
    #: Sweep: STARTPOSITION of the next page among the rows at `since` (1-based).
    position: int = 1
    #: Sweep: where CDC resumes when the sweep is done (None: as far back as CDC allows).
    resume: datetime | None = None
    #: CDC: the (Id, SyncToken) versions already read that the overlap will bring again (those stamped
    #: at or after `since`); the next read hands them over no more (`unseen`), but still counts them.
    seen: frozenset[tuple[str, str]] = frozenset()

    def __post_init__(self) -> None:
        for moment in (self.since, self.resume):
            if moment is not None and moment.tzinfo is None:
                raise CursorError("cursor moments must be timezone-aware")
        if self.mode is Mode.CDC and self.since is None:
            raise CursorError("a CDC cursor needs a changedSince moment")
        if self.position < 1:
            raise CursorError(f"STARTPOSITION counts from 1, got {self.position}")


@dataclass(frozen=True)
class Step:
    """Where to go after one read: the new cursor, and whether everything up to now is read."""

    cursor: QboCursor
    complete: bool


def initial() -> QboCursor:
    """The first read: sweep everything, then CDC for deletions and whatever changed meanwhile."""
    return QboCursor(Mode.SWEEP)


def decode(text: str | None) -> QboCursor:
    if text is None:
        return initial()
    try:
        raw = jsontext.loads(text)
        if not isinstance(raw, Mapping) or raw.get("v") != _FORMAT:
            raise CursorError(f"not a QuickBooks cursor (format {_FORMAT}): {text!r}")
        return QboCursor(
            mode=Mode(raw["mode"]),
            since=_moment(raw.get("since")),
            position=int(raw.get("position", 1)),
            resume=_moment(raw.get("resume")),
            seen=frozenset((str(i), str(t)) for i, t in raw.get("seen", ())),
        )
    except (ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, CursorError):
            raise
        raise CursorError(f"not a QuickBooks cursor: {text!r} ({exc})") from exc


def encode(cursor: QboCursor) -> str:
    raw: dict[str, Any] = {"v": _FORMAT, "mode": cursor.mode.value}
    if cursor.since is not None:
        raw["since"] = cursor.since.isoformat()
    if cursor.seen:
        raw["seen"] = sorted(cursor.seen)
    if cursor.mode is Mode.SWEEP:
        raw["position"] = cursor.position
        if cursor.resume is not None:
            raw["resume"] = cursor.resume.isoformat()
    return jsontext.dumps_text(raw)


def oldest_cdc_since(now: datetime) -> datetime:
    """The oldest changedSince QuickBooks still accepts at `now` (with a margin)."""
    return now - timedelta(days=CDC_MAX_DAYS) + CDC_EDGE_MARGIN


#: How close to CDC's 30-day edge a cursor may be before it is swept instead. Smaller than the edge
#: margin a sweep resumes CDC at, so a cursor a sweep just produced is never "too old" a moment later
#: (which would sweep again, forever).
TOO_OLD_MARGIN = timedelta(minutes=5)


def too_old(cursor: QboCursor, now: datetime) -> bool:
    """A CDC cursor that QuickBooks would refuse: its changes must be swept with queries instead."""
    edge = now - timedelta(days=CDC_MAX_DAYS) + TOO_OLD_MARGIN
    return cursor.mode is Mode.CDC and cursor.since is not None and cursor.since < edge


def to_sweep(cursor: QboCursor) -> QboCursor:
    """Sweep from where a CDC cursor stood (it was too old for CDC)."""
    return QboCursor(Mode.SWEEP, since=cursor.since)


def read_started(response_time: datetime, elapsed: float) -> datetime:
    """The start of a read in QuickBooks' clock: its answer's `time` less how long the call took."""
    return response_time - timedelta(seconds=max(elapsed, 0.0))


def after_cdc(
    cursor: QboCursor,
    started: datetime,
    stamps: Sequence[datetime],
    *,
    cap: int = CDC_CAP,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> Step:
    """The cursor after a CDC read from `cursor.since` that began at `started` and returned objects
    last updated at `stamps` (deleted rows included)."""
    assert cursor.mode is Mode.CDC and cursor.since is not None
    if len(stamps) < cap:
        # Everything up to the start of the read is covered; keep an overlap, never step backwards.
        return Step(QboCursor(Mode.CDC, since=max(cursor.since, started - overlap)), complete=True)
    newest = max(stamps)
    if newest > cursor.since:
        # Cut at the cap: everything before the newest stamp is covered, the rest of that second is not.
        return Step(QboCursor(Mode.CDC, since=newest), complete=False)
    # More than a cap's worth of changes in one instant: time cannot split it, a paged query can.
    return Step(
        QboCursor(Mode.SWEEP, since=cursor.since, resume=cursor.since + timedelta(seconds=1)), complete=False
    )


def after_sweep_page(
    cursor: QboCursor, started: datetime, stamps: Sequence[datetime], *, page_size: int = SWEEP_PAGE
) -> Step:
    """The cursor after one query page read at `started` (QuickBooks' clock) with rows stamped `stamps`."""
    assert cursor.mode is Mode.SWEEP
    resume = cursor.resume if cursor.resume is not None else oldest_cdc_since(started)
    if len(stamps) < page_size:
        # The sweep is done: CDC resumes no later than the sweep began (incomplete: read it now).
        return Step(QboCursor(Mode.CDC, since=min(resume, started)), complete=False)
    newest = max(stamps)
    if cursor.since is None or newest > cursor.since:
        # Keyset paging: restart at the newest stamp (its rows come again and are de-duplicated), so
        # rows that move to the end because they changed mid-sweep shift no unread row into a read page.
        return Step(QboCursor(Mode.SWEEP, since=newest, resume=resume), complete=False)
    # A whole page at one instant: page on within it.
    return Step(replace(cursor, position=cursor.position + len(stamps), resume=resume), complete=False)


def sweep_query(entity: str, cursor: QboCursor, *, name_list: bool, page_size: int = SWEEP_PAGE) -> str:
    """The query for the sweep's next page; inactive name-list records included (queries hide them)."""
    assert cursor.mode is Mode.SWEEP
    conditions = ["Active IN (true,false)"] if name_list else []
    if cursor.since is not None:
        conditions.append(f"MetaData.LastUpdatedTime >= '{cursor.since.isoformat()}'")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # Not SQL, and nothing user-typed: the entity name and moments come from our own code.
    select = f"SELECT * FROM {entity}{where}"  # noqa: S608
    return f"{select} ORDERBY MetaData.LastUpdatedTime STARTPOSITION {cursor.position} MAXRESULTS {page_size}"


def version_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(Id, SyncToken) of a QBO object; a deleted row counts as its own version."""
    deleted = str(obj.get("status", "")).casefold() == "deleted"
    return (str(obj.get("Id")), "deleted" if deleted else str(obj.get("SyncToken")))


def dedupe(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """QBO objects without repeats of the same (Id, SyncToken)."""
    seen: set[tuple[str, str]] = set()
    out: list[Mapping[str, Any]] = []
    for obj in objects:
        key = version_of(obj)
        if key not in seen:
            seen.add(key)
            out.append(obj)
    return out


#: The most versions a CDC cursor remembers; past it, it remembers none and the overlap's rows are
#: handed over again (the journal drops them as duplicates, at the cost of mapping them).
SEEN_LIMIT = 5_000


def unseen(cursor: QboCursor, objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The objects of a CDC answer read from `cursor` that it has not handed over already."""
    if not cursor.seen:
        return list(objects)
    return [obj for obj in objects if version_of(obj) not in cursor.seen]


def remember(step: Step, objects: Iterable[Mapping[str, Any]]) -> Step:
    """`step` of a complete CDC read, its cursor remembering the versions the next read's overlap will
    bring again: the objects stamped at or after its `since` (the answer holds every one of them)."""
    cursor = step.cursor
    if not step.complete or cursor.mode is not Mode.CDC or cursor.since is None:
        return step
    since = cursor.since
    seen = frozenset(
        version_of(obj) for obj in objects if (stamp := stamp_of(obj)) is not None and stamp >= since
    )
    return replace(step, cursor=replace(cursor, seen=seen if len(seen) <= SEEN_LIMIT else frozenset()))


def parse_stamp(value: Any) -> datetime | None:
    """A QuickBooks timestamp (`MetaData.LastUpdatedTime`, a response `time`); None if absent or naive."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def stamp_of(obj: Mapping[str, Any]) -> datetime | None:
    meta = obj.get("MetaData")
    return parse_stamp(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = parse_stamp(value)
    if moment is None:
        raise CursorError(f"not a timezone-aware moment: {value!r}")
    return moment
