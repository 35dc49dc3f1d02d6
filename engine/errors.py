"""The one error tree of ledgersync, sorted by what the runner should do.

    LedgersyncError
     +-- ConfigurationError          fatal until a human fixes config (bad YAML, missing key)
     +-- RetriableError              try again later, same op id
     |    +-- RateLimitedError       wait `retry_after` seconds first
     |    +-- UpstreamUnavailableError   5xx, timeouts, connection resets: back off
     +-- NeedsReauthorizationError   the connection lost its grant: park ops, notify, wait
     +-- RecordRejectedError         the other side refused this record: park it, show it
     |    +-- DuplicateNameError     the name is taken; `existing_id` names the holder
     |    +-- FieldRefusedError      one field's value refused (a rename into a taken name): that
     |                               field goes to review as a conflict, the record's others sync
     +-- VersionConflictError        someone changed the record meanwhile: re-read, re-reconcile
     +-- NotFoundError               the record is gone on that side

Connectors translate their foreign errors into this tree in one table each.
"""

from __future__ import annotations


class LedgersyncError(Exception):
    """Base of every error ledgersync raises on purpose."""

    def __init__(self, message: str, *, detail: str | None = None, tid: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        #: QuickBooks' intuit_tid (or any upstream trace id), for support tickets.
        self.tid = tid

    def __str__(self) -> str:
        parts = [self.message]
        if self.detail:
            parts.append(f"({self.detail})")
        if self.tid:
            parts.append(f"[intuit_tid={self.tid}]")
        return " ".join(parts)


class ConfigurationError(LedgersyncError):
    """The configuration is wrong; nothing will work until a human fixes it."""


class RetriableError(LedgersyncError):
    """A transient failure: retry later with the same op id."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """The other side throttled us; wait `retry_after` seconds before the next call."""


class UpstreamUnavailableError(RetriableError):
    """The other side failed or timed out; back off and retry."""


class NeedsReauthorizationError(LedgersyncError):
    """The connection's grant is gone (revoked, refresh token expired): ops wait for reconnect."""


class RecordRejectedError(LedgersyncError):
    """The other side refused this record; it is parked until someone fixes it."""

    def __init__(self, message: str, *, code: str | None = None, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
        self.code = code


class DuplicateNameError(RecordRejectedError):
    """A name that must be unique is taken; `existing_id` is the record holding it, if known."""

    def __init__(self, message: str, *, existing_id: str | None = None, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
        self.existing_id = existing_id


class FieldRefusedError(RecordRejectedError):
    """The other side refused one field's new value, not the record: a rename into a name another
    record holds, under a policy that leaves the choice to a person. The message says why (who holds
    the name); the engine opens a conflict on `field` with it, and writes the op's other fields."""

    def __init__(self, message: str, *, field: str, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
        self.field = field


class VersionConflictError(LedgersyncError):
    """The record changed since we read it (stale SyncToken, app version moved)."""


class NotFoundError(LedgersyncError):
    """The record does not exist on that side (deleted, or never was)."""
