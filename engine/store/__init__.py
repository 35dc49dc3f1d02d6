"""The state store: links, snapshots, journal, ops, ledger, conflicts, cursors and audit, in SQL.

SQLAlchemy and Alembic are used here and nowhere else; what leaves this package are the frozen
values of engine.state.
"""

from engine.store.errors import LinkExistsError, NotStoredError, SnapshotConflictError, StoreUnavailableError
from engine.store.sql import DEFAULT_URL, SqlStateStore, open_store

__all__ = [
    "DEFAULT_URL",
    "LinkExistsError",
    "NotStoredError",
    "SnapshotConflictError",
    "SqlStateStore",
    "StoreUnavailableError",
    "open_store",
]
