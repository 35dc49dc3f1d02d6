"""Links and their snapshots: the id mapping of each record and the base both sides last agreed on."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from engine.model import EntityType, Side
from engine.state import Link, Snapshot
from engine.store import rows
from engine.store import tables as t
from engine.store.base import SessionBase, id_column
from engine.store.errors import LinkExistsError, NotStoredError, SnapshotConflictError


class LinksMixin(SessionBase):
    def find_link(self, connection: str, entity: EntityType, side: Side, external_id: str) -> Link | None:
        row = self._one(
            sa.select(t.links).where(
                t.links.c.connection == connection,
                t.links.c.entity == entity.value,
                t.links.c[id_column(side)] == external_id,
            )
        )
        return None if row is None else rows.to_link(row)

    def get_link(self, link_id: str) -> Link | None:
        row = self._one(sa.select(t.links).where(t.links.c.id == link_id))
        return None if row is None else rows.to_link(row)

    def _require_link(self, link_id: str) -> Link:
        link = self.get_link(link_id)
        if link is None:
            raise NotStoredError(f"no link {link_id!r}")
        return link

    def _check_free(self, connection: str, entity: EntityType, side: Side, external_id: str | None) -> None:
        holder = None if external_id is None else self.find_link(connection, entity, side, external_id)
        if holder is not None:
            raise LinkExistsError(
                f"{entity.value} {external_id!r} on {side.value} is already linked",
                detail=f"link {holder.id}",
            )

    def create_link(
        self, connection: str, entity: EntityType, app_id: str | None, quickbooks_id: str | None
    ) -> Link:
        """A new link with a uuid4-hex id; LinkExistsError if either id is already linked for the entity."""
        self._check_free(connection, entity, Side.APP, app_id)
        self._check_free(connection, entity, Side.QUICKBOOKS, quickbooks_id)
        link = Link(
            id=uuid.uuid4().hex,
            connection=connection,
            entity=entity,
            app_id=app_id,
            quickbooks_id=quickbooks_id,
        )
        try:
            self._conn.execute(sa.insert(t.links).values(**link.model_dump(mode="json")))
        except IntegrityError as error:  # lost a race with another worker: this transaction is over
            raise LinkExistsError(f"{entity.value} is already linked", detail=str(error.orig)) from error
        return link

    def set_link_id(self, link_id: str, side: Side, external_id: str | None) -> Link:
        """Set (or clear, with None) the link's id on `side`; LinkExistsError if another link holds it."""
        link = self._require_link(link_id)
        if external_id == link.external_id(side):
            return link
        self._check_free(link.connection, link.entity, side, external_id)
        try:
            self._conn.execute(
                sa.update(t.links).where(t.links.c.id == link_id).values({id_column(side): external_id})
            )
        except IntegrityError as error:
            raise LinkExistsError(f"{link.entity.value} is already linked", detail=str(error.orig)) from error
        return link.model_copy(update={id_column(side): external_id})

    def lock_link(self, link_id: str, *, wait: bool = True) -> bool:
        """Hold the link's row until the transaction ends: SELECT ... FOR UPDATE on PostgreSQL; True.

        `wait=False` (SKIP LOCKED): False at once, instead of waiting, while another transaction
        holds it. A transaction that locks many links (the sweep) must not wait for one while holding
        the others: two of them waiting for each other's links deadlock.

        On SQLite, FOR UPDATE is not rendered: every session takes the database write lock when it
        begins (BEGIN IMMEDIATE), which already serializes workers. NotStoredError for an unknown link.
        """
        statement = (
            sa.select(t.links.c.id).where(t.links.c.id == link_id).with_for_update(skip_locked=not wait)
        )
        if self._one(statement) is not None:
            return True
        if not wait and self.get_link(link_id) is not None:
            return False
        raise NotStoredError(f"no link {link_id!r}")

    def list_links(self, connection: str, entity: EntityType | None = None) -> list[Link]:
        """The connection's links (of one entity type, if given), in a stable order."""
        statement = sa.select(t.links).where(t.links.c.connection == connection)
        if entity is not None:
            statement = statement.where(t.links.c.entity == entity.value)
        statement = statement.order_by(t.links.c.entity, t.links.c.id)
        return [rows.to_link(r) for r in self._all(statement)]

    def get_snapshot(self, link_id: str) -> Snapshot | None:
        row = self._one(sa.select(t.snapshots).where(t.snapshots.c.link_id == link_id))
        return None if row is None else rows.to_snapshot(row)

    def save_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """Optimistic save: `snapshot.revision` must equal the stored one (any value when none is stored).

        Stores the snapshot with revision + 1 and returns what it stored. SnapshotConflictError (a
        VersionConflictError) when the stored revision differs: another worker saved first; re-read.
        NotStoredError when the link does not exist.
        """
        saved = snapshot.model_copy(update={"revision": snapshot.revision + 1})
        values = saved.model_dump()
        stored = self._one(sa.select(t.snapshots.c.revision).where(t.snapshots.c.link_id == snapshot.link_id))
        if stored is None:
            link = self._require_link(snapshot.link_id)
            try:
                self._conn.execute(sa.insert(t.snapshots).values(connection=link.connection, **values))
            except IntegrityError as error:  # another worker stored the first revision meanwhile
                raise SnapshotConflictError(f"snapshot of link {link.id} was saved meanwhile") from error
            return saved
        # The revision is checked by the UPDATE itself, so no concurrent save slips in between.
        result = self._conn.execute(
            sa.update(t.snapshots)
            .where(t.snapshots.c.link_id == snapshot.link_id, t.snapshots.c.revision == snapshot.revision)
            .values(**values)
        )
        if result.rowcount != 1:
            raise SnapshotConflictError(
                f"snapshot of link {snapshot.link_id} moved to revision {stored['revision']}",
                detail=f"saved from revision {snapshot.revision}",
            )
        return saved
