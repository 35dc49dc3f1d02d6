"""`SqlConnector`: the app side of the sync on any SQLAlchemy database, driven by a YAML table mapping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc

from connectors.app import applied, schema
from connectors.app.capture import Poller
from connectors.app.catalog import Catalog
from connectors.app.codec import Codec
from connectors.app.database import make_engine, transaction, translate
from connectors.app.layout import Layout, bind
from connectors.app.mapping import Mapping, load_mapping
from connectors.app.outbox import OutboxReader
from connectors.app.records import Reader
from connectors.app.tombstones import Tombstones
from connectors.app.writer import Writer, is_replay
from engine.clock import SystemClock
from engine.errors import (
    ConfigurationError,
    LedgersyncError,
    NotFoundError,
    RecordRejectedError,
    UpstreamUnavailableError,
)
from engine.model import ChangeEvent, EntityType, Side
from engine.plan import Op
from engine.ports import BatchWriter, Capabilities, ChangePage, Clock, Journaled, WriteResult

log = logging.getLogger(__name__)

#: Ops written in one app transaction, each in a savepoint of its own: one commit for many, and a
#: record the database refuses fails alone.
BATCH_SIZE = 100


class SqlConnector:
    """Implements `engine.ports.Connector` for the app's own database.

    The mapping is checked against the database when the connector is built: a table, column or
    column type that does not fit raises ConfigurationError naming the mapping key, before any sync.
    Call `close()` (or use it as a context manager) to release the database connections.
    """

    def __init__(
        self,
        mapping: Mapping,
        engine: sa.Engine,
        *,
        connection: str = "default",
        tenant: str | None = None,
        clock: Clock | None = None,
        page_size: int | None = None,
        layouts: dict[EntityType, Layout] | None = None,
    ) -> None:
        """`tenant`: the app tenant this connection serves, when the mapping names tenant columns.
        `layouts`: the mapping already checked against this database and bound (`for_tenant`)."""
        self.mapping = mapping
        self.engine = engine
        self.connection = connection
        self.tenant = tenant
        self.clock = clock or SystemClock()
        self._page_size = page_size
        if layouts is not None:
            self.layouts: dict[EntityType, Layout] = {e: lay.for_tenant(tenant) for e, lay in layouts.items()}
        else:
            try:
                catalog = Catalog(engine)
                schema.check(catalog, mapping)
                self.layouts = bind(catalog, mapping, tenant)
            except exc.SQLAlchemyError as error:
                raise translate(error) from error
        codec = Codec(engine.dialect.name)
        self.reader = Reader(codec)
        self.reader.integer_keys = {entity: layout.integer_key for entity, layout in self.layouts.items()}
        self.tombstones = Tombstones(codec)
        size = page_size or mapping.page_size
        self.poller = Poller(connection, self.reader, self.tombstones, codec, self.clock, size)
        self.outbox = OutboxReader(mapping.outbox_table, self.poller, self.reader, self.tombstones, size)
        self.writer = Writer(mapping, self.layouts, codec, self.reader, self.tombstones, self.clock)
        self._applied_ready = False
        self._applied_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        mapping_file: str | Path,
        url: str,
        *,
        connection: str = "default",
        tenant: str | None = None,
        clock: Clock | None = None,
        schema: str | None = None,
        page_size: int | None = None,
    ) -> SqlConnector:
        """Load `mapping_file`, open the database at `url` and check one against the other."""
        mapping = load_mapping(mapping_file)
        engine = make_engine(url, schema=schema)
        try:
            return cls(
                mapping, engine, connection=connection, tenant=tenant, clock=clock, page_size=page_size
            )
        except BaseException:
            engine.dispose()
            raise

    def for_tenant(self, connection: str, tenant: str | None) -> SqlConnector:
        """A connector for another tenant's connection on the same database and mapping: checked and
        bound once, so a deployment of many companies reflects the database once, not per company."""
        return SqlConnector(
            self.mapping,
            self.engine,
            connection=connection,
            tenant=tenant,
            clock=self.clock,
            page_size=self._page_size,
            layouts=self.layouts,
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SqlConnector:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # the Connector port

    @property
    def side(self) -> Side:
        return Side.APP

    def capabilities(self) -> Capabilities:
        return Capabilities(side=Side.APP, entities=frozenset(self.layouts), batch_size=BATCH_SIZE)

    def read_changes(
        self, entity: EntityType, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        layout = self._layout(entity)
        with transaction(self.engine, snapshot=True) as conn:
            if layout.spec.capture.mode == "outbox":
                return self.outbox.read(conn, layout, cursor, journaled)
            return self.poller.read(conn, layout, cursor, journaled)

    def fetch(self, entity: EntityType, external_id: str) -> ChangeEvent:
        layout = self._layout(entity)
        now = self.clock.now()
        try:
            key = layout.key(external_id)
        except ValueError:
            raise NotFoundError(f"{entity} {external_id!r} is not an id of the app") from None
        with transaction(self.engine) as conn:
            found = self.reader.select(conn, layout, layout.pk == key, now)
            stored = found[0] if found else self.tombstones.find(conn, layout, key, now)
            if stored is None:
                stored = self.outbox.deleted(conn, layout, external_id, now)
        if stored is None:
            raise NotFoundError(f"{entity} {external_id} never existed in the app")
        if stored.invalid is not None:
            raise RecordRejectedError(
                f"{entity} {external_id} in the app is not valid", code="invalid", detail=stored.invalid
            )
        return self.poller.event(entity, stored, now)

    def write(self, op: Op) -> WriteResult:
        """Apply `op` in one transaction, at most once per op id (see `connectors.app.applied`)."""
        self._ensure_applied_table()
        try:
            with transaction(self.engine, write=True) as conn:
                result = self.writer.apply(conn, op)
        except Exception as error:
            if not is_replay(error):
                raise
            with transaction(self.engine) as conn:
                stored = applied.stored_result(conn, op.op_id)
            assert stored is not None, "a replayed op has a stored result"
            result = stored
        log.info(
            "app write applied",
            extra={
                "connection": self.connection,
                "tenant": self.tenant,
                "entity": op.entity,
                "op_id": op.op_id,
                "record": result.external_id,
                "kind": op.kind,
            },
        )
        return result

    # the optional BatchWriter port: many ops in one transaction

    def write_many(self, ops: Sequence[Op]) -> list[WriteResult | LedgersyncError]:
        """Apply `ops` in one transaction, each in a savepoint: an op the app refuses (a bad value, a
        record gone or changed meanwhile) gets its error and the others are written. When the
        database itself fails (or the commit does), nothing was written: every op gets that error."""
        self._ensure_applied_table()
        results: list[WriteResult | LedgersyncError | None] = [None] * len(ops)
        replayed: list[int] = []
        try:
            with transaction(self.engine, write=True) as conn:
                for i, outcome in enumerate(self.writer.apply_each(conn, ops)):
                    if isinstance(outcome, WriteResult | LedgersyncError):
                        results[i] = outcome
                    elif is_replay(outcome):
                        replayed.append(i)
                    elif isinstance(outcome, exc.SQLAlchemyError):
                        translated = translate(outcome)
                        if isinstance(translated, UpstreamUnavailableError):
                            raise translated from outcome
                        results[i] = translated
                    else:
                        raise outcome
        except LedgersyncError as error:
            log.warning("app batch of %d ops not written: %s", len(ops), error)
            return [error] * len(ops)
        if replayed:
            with transaction(self.engine) as conn:
                stored = applied.stored_results(conn, [ops[i].op_id for i in replayed])
            for i in replayed:
                results[i] = stored[ops[i].op_id]
        out: list[WriteResult | LedgersyncError] = []
        for op, result in zip(ops, results, strict=True):
            assert result is not None, f"op {op.op_id} has a result"
            out.append(result)
            if isinstance(result, WriteResult):
                context = {
                    "entity": op.entity,
                    "op_id": op.op_id,
                    "record": result.external_id,
                    "kind": op.kind,
                }
                log.debug("app write applied", extra={"connection": self.connection, **context})
        log.info("app batch written", extra={"connection": self.connection, "ops": len(ops)})
        return out

    def _ensure_applied_table(self) -> None:
        # Created on the first write, not at start-up: reading (a dry run, a poll) changes nothing in
        # the app's database.
        if self._applied_ready:
            return
        with self._applied_lock:
            try:
                applied.create_table(self.engine)
            except exc.SQLAlchemyError as error:
                # Another process may have created it at the same moment. If not (the database was
                # locked, say), the next write tries again: marked ready without the table, every
                # write after would fail as "unavailable" for as long as the process runs.
                if not applied.table_exists(self.engine):
                    log.warning("ledgersync_applied_ops not created (tried on the next write): %s", error)
                    return
            self._applied_ready = True

    def _layout(self, entity: EntityType) -> Layout:
        layout = self.layouts.get(entity)
        if layout is None:
            raise ConfigurationError(f"the app mapping has no entities.{entity}")
        return layout


def _conforms(connector: SqlConnector) -> BatchWriter:
    # Checked by mypy: SqlConnector implements the engine's Connector port, and BatchWriter.
    return connector
