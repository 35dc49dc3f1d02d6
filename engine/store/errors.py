"""The store's own errors, placed in the engine's error tree by what the caller should do."""

from __future__ import annotations

from engine.errors import LedgersyncError, UpstreamUnavailableError, VersionConflictError


class NotStoredError(LedgersyncError, LookupError):
    """An id handed to the store (link, op, conflict, inbox entry) names nothing stored: a caller bug."""


class LinkExistsError(VersionConflictError):
    """The external id is already linked on that side: another worker linked it first; re-read."""


class SnapshotConflictError(VersionConflictError):
    """The snapshot's revision moved since it was read: another worker saved it first; re-read."""


class StoreUnavailableError(UpstreamUnavailableError):
    """The database could not be reached, was locked too long, or aborted the transaction
    (deadlock, serialization failure): nothing was committed; retry the whole transaction.
    """
