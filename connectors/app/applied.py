"""`ledgersync_applied_ops` in the app database: each op's result, written in the op's own transaction.

A retry after a lost answer finds the stored result and returns it instead of writing twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from engine.model import EntityType, Version, fields_from_json, fields_to_json
from engine.ports import WriteResult

metadata = sa.MetaData()
applied_ops = sa.Table(
    "ledgersync_applied_ops",
    metadata,
    sa.Column("op_id", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)


def create_table(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        # A writer's transaction from its first statement (BEGIN IMMEDIATE on SQLite): a deferred
        # one that reads the schema first can deadlock with a concurrent writer, and SQLite then
        # answers "database is locked" at once instead of waiting.
        conn.info["ledgersync_write"] = True
        with conn.begin():
            metadata.create_all(conn, checkfirst=True)


def table_exists(engine: sa.Engine) -> bool:
    """Whether the table is there; False too when the database cannot say (it is asked again)."""
    try:
        return sa.inspect(engine).has_table(applied_ops.name)
    except sa.exc.SQLAlchemyError:
        return False


def stored_result(conn: sa.Connection, op_id: str) -> WriteResult | None:
    return stored_results(conn, [op_id]).get(op_id)


def stored_results(conn: sa.Connection, op_ids: Sequence[str]) -> dict[str, WriteResult]:
    """The results stored for those of `op_ids` that were applied, by op id (one statement)."""
    c = applied_ops.c
    found: dict[str, WriteResult] = {}
    for row in conn.execute(sa.select(c.op_id, c.entity, c.result).where(c.op_id.in_(list(op_ids)))):
        data = json.loads(row.result)
        found[row.op_id] = WriteResult(
            external_id=data["external_id"],
            version=Version.model_validate(data["version"]),
            fields=fields_from_json(EntityType(row.entity), data["fields"]),
            deleted=data["deleted"],
        )
    return found


def remember(conn: sa.Connection, op_id: str, entity: EntityType, result: WriteResult, now: datetime) -> None:
    remember_many(conn, [(op_id, entity, result)], now)


def _result_json(entity: EntityType, result: WriteResult) -> str:
    data = {
        "external_id": result.external_id,
        "version": result.version.model_dump(mode="json"),
        "fields": fields_to_json(entity, result.fields),
        "deleted": result.deleted,
    }
    return json.dumps(data)


def remember_many(
    conn: sa.Connection, results: Sequence[tuple[str, EntityType, WriteResult]], now: datetime
) -> None:
    """Store the results of many ops in one statement (an executemany)."""
    if not results:
        return
    conn.execute(
        applied_ops.insert(),
        [
            {"op_id": op_id, "entity": e.value, "result": _result_json(e, result), "applied_at": now}
            for op_id, e, result in results
        ],
    )
