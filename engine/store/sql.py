"""`SqlStateStore`: the state store on SQLAlchemy (SQLite by default, PostgreSQL for many workers)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import InterfaceError, OperationalError

from engine.errors import ConfigurationError
from engine.ports import StateStore
from engine.store import tables
from engine.store.claims import OpClaims
from engine.store.engines import open_engine
from engine.store.errors import StoreUnavailableError
from engine.store.session import SqlSession

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///ledgersync.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def _begin_immediate(conn: sa.Connection) -> None:
    # Take the write lock up front: a session that reads, then writes, cannot fail half-way with
    # "database is locked", and sessions serialize (which is what lock_link relies on there).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, schema: str | None = None) -> sa.Engine:
    """An engine set up for the store: WAL, foreign keys and a busy timeout on SQLite;
    on PostgreSQL, `schema` (if given) becomes the search_path of every connection.
    """
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as error:
        raise ConfigurationError(f"not a state store URL: {url!r}") from error
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"unsupported state store database {backend!r}", detail="use a sqlite:// or postgresql:// URL"
        )
    return open_engine(
        url,
        schema=schema,
        sqlite_begin=_begin_immediate,
        sqlite_pragmas=("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"),
        what="state store",
    )


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini), bound to `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class SqlStateStore:
    """The state store on one database.

    `session()` is one transaction: it commits when the block exits normally and rolls back when
    it raises. On SQLite each session holds the database write lock from its first statement, so
    sessions run one at a time (others wait up to the busy timeout); on PostgreSQL they run
    concurrently (READ COMMITTED) and `lock_link` serializes work on one record. `claim_ops` keeps
    two workers from writing one op at once.
    """

    def __init__(self, url: str = DEFAULT_URL, *, create: bool = False, schema: str | None = None) -> None:
        self._url = url
        self._engine = make_engine(url, schema=schema)
        # Claims hold their connection during a write: a pool of their own never starves the sessions.
        claims = (
            make_engine(url, schema=schema).execution_options(isolation_level="AUTOCOMMIT")
            if self._engine.dialect.name == "postgresql"
            else None
        )
        self._claims = OpClaims(self._database_name(), claims)
        if create:
            self.migrate()

    def _database_name(self) -> str:
        """What names the database for claims kept in this process: a SQLite file by its full path."""
        database = self._engine.url.database
        if self._engine.dialect.name == "sqlite" and database and database != ":memory:":
            return str(Path(database).resolve())
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """The database kind: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[SqlSession]:
        """A transaction: commits when the block exits normally, rolls back on an exception.

        Database outages, lock timeouts, deadlocks and serialization failures surface as
        StoreUnavailableError (retriable: nothing was committed).
        """
        try:
            with self._engine.begin() as conn:
                yield SqlSession(conn)
        except (OperationalError, InterfaceError) as error:
            log.warning(
                "state store unavailable: %s", type(error.orig).__name__, extra={"backend": self.backend}
            )
            raise StoreUnavailableError("the state store is unavailable", detail=str(error.orig)) from error

    def claim_ops(self, op_ids: Sequence[str]) -> AbstractContextManager[frozenset[str]]:
        """Claim those of `op_ids` that no other worker holds, while the block runs; yields the ids
        claimed. An op claimed elsewhere is being applied there, and that worker records its outcome.

        Released when the block ends, or when the process dies (PostgreSQL). On SQLite the claims
        are those of this process: two processes on one SQLite file are not kept apart.
        """
        return self._claims.hold(op_ids)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic upgrade head), in one transaction."""
        with self._engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        log.info("state store migrated", extra={"backend": self.backend})

    def analyze(self) -> None:
        """Refresh PostgreSQL's statistics of every table of the store, after a backfill filled them:
        until autovacuum gets to it the planner believes them empty, and plans a look-up in a set as a
        scan of a whole index prefix. Nothing on SQLite (it plans well without statistics)."""
        if self.backend != "postgresql":
            return
        with self._engine.begin() as conn:
            # Named one by one: a bare ANALYZE goes through every schema of the database.
            for table in tables.metadata.sorted_tables:
                conn.execute(sa.text(f"ANALYZE {table.name}"))
        log.info("state store statistics refreshed", extra={"backend": self.backend})

    def dispose(self) -> None:
        """Close every pooled connection; the store is unusable afterwards."""
        self._engine.dispose()
        self._claims.dispose()

    def __repr__(self) -> str:
        return f"SqlStateStore({sa.make_url(self._url).render_as_string(hide_password=True)!r})"


def open_store(url: str) -> SqlStateStore:
    """Open the store at `url` and bring its schema up to date."""
    return SqlStateStore(url, create=True)


def _conforms(store: SqlStateStore) -> StateStore:
    # Checked by mypy: SqlStateStore (and its sessions) implement the engine's StateStore port.
    return store
