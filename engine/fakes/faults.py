"""Fault knobs for the fake connector: deterministic, counted failures injected on purpose."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

from engine.errors import LedgersyncError, NeedsReauthorizationError, RecordRejectedError
from engine.plan import Op

#: The connector calls a fault may be injected into.
METHODS = ("read_changes", "fetch", "write")

Fault = LedgersyncError | type[LedgersyncError]


class FaultKnobs:
    """Mixed into the fake connector: every port call passes `_trip(method)` first.

    Order of checks on a call: count it, refuse it if revoked, raise the next queued fault.
    """

    def __init__(self) -> None:
        #: Port calls made, per method name (failed ones included).
        self.calls: Counter[str] = Counter()
        self.revoked = False
        self._queued: dict[str, deque[Fault]] = {method: deque() for method in METHODS}
        self._after_commit = 0
        self._reject: Callable[[Op], bool] | None = None

    def fail_next(self, n: int, error: Fault, *, method: str = "write") -> None:
        """The next `n` calls of `method` raise `error` (an instance, or a class built with a message)
        before doing anything; queued after any faults already waiting."""
        if method not in METHODS:
            raise ValueError(f"faults go into one of {METHODS}, not {method!r}")
        self._queued[method].extend([error] * n)

    def fail_after_commit(self, n: int) -> None:
        """The next `n` writes apply, then raise UpstreamUnavailableError (a timeout after the commit)."""
        self._after_commit += n

    def reject_when(self, predicate: Callable[[Op], bool] | None) -> None:
        """Writes whose op matches `predicate` raise RecordRejectedError before applying (None: stop)."""
        self._reject = predicate

    def revoke(self) -> None:
        """The grant is gone: every port call raises NeedsReauthorizationError until `reconnect()`."""
        self.revoked = True

    def reconnect(self) -> None:
        self.revoked = False

    def _trip(self, method: str) -> None:
        self.calls[method] += 1
        if self.revoked:
            raise NeedsReauthorizationError(f"{method}: the connection's grant was revoked")
        queued = self._queued[method]
        if queued:
            fault = queued.popleft()
            raise fault(f"{method}: injected fault") if isinstance(fault, type) else fault

    def _check_rejected(self, op: Op) -> None:
        if self._reject is not None and self._reject(op):
            raise RecordRejectedError(f"op {op.op_id} rejected by an injected rule", code="injected")

    def _take_after_commit(self) -> bool:
        """Whether this (applied) write must now fail as if its response were lost."""
        if self._after_commit:
            self._after_commit -= 1
            return True
        return False
