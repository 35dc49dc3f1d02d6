"""A dry run: read both sides, decide everything, report the plan, and write nothing anywhere.

Every step runs in ONE state-store transaction that is rolled back at the end, and no op is applied,
so neither side, nor the journal, nor any cursor changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from engine.model import Side
from engine.plan import Op, OpStatus
from engine.ports import Clock, Connector, Policy, StateStore, StoreSession
from engine.runner import Runner, RunStats
from engine.state import Conflict


@dataclass
class DryRunReport:
    ops: list[Op] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    stats: RunStats = field(default_factory=RunStats)


class _RollbackRequest(Exception):  # noqa: N818 - control flow, not an error
    """Raised to undo the dry run's transaction."""


class _Pinned:
    """A StateStore whose every session is the one open transaction."""

    def __init__(self, session: StoreSession) -> None:
        self._session = session

    def session(self) -> AbstractContextManager[StoreSession]:
        @contextmanager
        def same() -> Iterator[StoreSession]:
            yield self._session

        return same()

    def claim_ops(self, op_ids: Sequence[str]) -> AbstractContextManager[frozenset[str]]:
        @contextmanager
        def every() -> Iterator[frozenset[str]]:
            yield frozenset(op_ids)  # a dry run applies nothing, and alone

        return every()

    def migrate(self) -> None:
        return None

    def dispose(self) -> None:
        return None


def dry_run(
    store: StateStore, connectors: Mapping[Side, Connector], policy: Policy, clock: Clock, connection: str
) -> DryRunReport:
    report = DryRunReport()
    try:
        with store.session() as s:
            runner = Runner(_Pinned(s), connectors, policy, clock, connection)
            for side in connectors:
                runner.poll_side(side, report.stats)
            runner.decide_pending(report.stats)
            report.ops = [r.op for r in s.ops(connection, [OpStatus.PENDING])]
            report.conflicts = s.list_conflicts(connection, open_only=True)
            raise _RollbackRequest
    except _RollbackRequest:
        pass
    return report
