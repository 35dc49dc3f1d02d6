"""Plain field changes written as a set: a handful of statements for a whole batch, the same outcome as
writing each op alone, and a set the database refuses falls back to one op at a time so only the culprit
fails. Tried on the shop (text keys, products polled by version), not the example app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.app import SqlConnector
from engine.errors import LedgersyncError, RecordRejectedError
from engine.model import EntityType, Side
from engine.plan import Op, OpKind
from engine.ports import WriteResult
from tests.app.shop import Shop, create_shop
from tests.support.stores import postgres_schema, postgres_url

CUSTOMER, ITEM = EntityType.CUSTOMER, EntityType.ITEM
CLIENTS = [f"C-{n}" for n in range(1, 5)]
PRODUCTS = [f"P-{n}" for n in range(1, 5)]


def op(kind: OpKind, entity: EntityType, external_id: str, fields: dict[str, Any], **extra: Any) -> Op:
    return Op(
        op_id=uuid.uuid4().hex,
        connection="test",
        link_id=f"link-{external_id}",
        entity=entity,
        side=Side.APP,
        kind=kind,
        fields=fields,
        reason="test",
        external_id=external_id,
        **extra,
    )


def fill(shop: Shop) -> None:
    for n, code in enumerate(CLIENTS):
        shop.add_client(code, f"Client {n}", second=-60)
    for n, sku in enumerate(PRODUCTS):
        shop.add_product(sku, f"Product {n}", cost=f"{n + 1}.00")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    if request.param == "postgres":
        with postgres_schema() as schema:
            made = create_shop(postgres_url(), schema, tmp_path)
            fill(made)
            yield made
    else:
        made = create_shop(f"sqlite:///{tmp_path / 'shop.db'}", None, tmp_path)
        fill(made)
        yield made


def count_statements(connector: SqlConnector) -> list[str]:
    seen: list[str] = []
    sa.event.listen(connector.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_a_batch_of_plain_changes_takes_a_few_statements_and_each_reads_back(shop: Shop) -> None:
    with shop.connector() as connector:
        tops = {s: connector.fetch(ITEM, s).version.seq for s in PRODUCTS}
        ops = [op(OpKind.UPDATE, CUSTOMER, c, {"email": f"{c.lower()}@new.example"}) for c in CLIENTS]
        ops += [op(OpKind.UPDATE, ITEM, s, {"unit_price": Decimal("9.50")}) for s in PRODUCTS]
        ops.append(op(OpKind.INACTIVATE, CUSTOMER, "C-1", {}))  # C-1 named twice: written alone, after
        statements = count_statements(connector)
        results = connector.write_many(ops)
    assert all(isinstance(r, WriteResult) for r in results)
    # Two reads (stored results, current rows), two UPDATEs per entity's column set, one read-back per
    # entity, one insert of the results, the savepoints; then C-1's two writes one by one.
    assert len(statements) < 30, statements
    with shop.connector() as connector:
        for c in CLIENTS[1:]:
            assert connector.fetch(CUSTOMER, c).fields["email"] == f"{c.lower()}@new.example"
        assert connector.fetch(CUSTOMER, "C-1").fields["active"] is False
        items = [connector.fetch(ITEM, s) for s in PRODUCTS]
    # Polled by version: each write takes a version above every one the table had, all different.
    versions = [i.version.seq for i in items]
    assert len(set(versions)) == len(versions) and min(versions) > max(tops.values())
    assert [r.version.seq for r in results[4:8]] == versions  # type: ignore[union-attr]
    assert all(i.fields["unit_price"] == Decimal("9.50") for i in items)


def refuse_mail(shop: Shop, mail: str) -> None:
    """A rule of the app's own, in the database: this e-mail is refused."""
    if shop.dialect == "sqlite":
        shop.run(
            "CREATE TRIGGER refuse BEFORE UPDATE ON clients"
            f" WHEN NEW.mail = '{mail}' BEGIN SELECT RAISE(ABORT, 'mail refused'); END"
        )
        return
    shop.run(
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.mail = '" + mail + "' THEN"
        " RAISE EXCEPTION 'mail refused' USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END"
        " $$ LANGUAGE plpgsql"
    )
    shop.run("CREATE TRIGGER refuse BEFORE UPDATE ON clients FOR EACH ROW EXECUTE FUNCTION refuse()")


def test_a_set_the_database_refuses_is_written_one_by_one_and_only_the_culprit_fails(shop: Shop) -> None:
    refuse_mail(shop, "no@shop.example")
    ops = [op(OpKind.UPDATE, CUSTOMER, c, {"email": f"{c.lower()}@new.example"}) for c in CLIENTS]
    ops[2] = op(OpKind.UPDATE, CUSTOMER, CLIENTS[2], {"email": "no@shop.example"})
    with shop.connector() as connector:
        results = connector.write_many(ops)
        assert isinstance(results[2], RecordRejectedError) and "mail refused" in str(results[2])
        for n, c in enumerate(CLIENTS):
            fields = connector.fetch(CUSTOMER, c).fields
            if n == 2:
                assert fields["email"] == "c-3@shop.example"  # unchanged
            else:
                assert isinstance(results[n], WriteResult)
                assert fields["email"] == f"{c.lower()}@new.example"


# Equivalence: a batch gives each op the outcome it gets alone, and leaves the same records.

TEXT = st.one_of(st.text(max_size=12), st.just(""), st.just("x" * 300), st.none())
PRICE = st.one_of(
    st.decimals(min_value=-1000, max_value=10**6, places=2, allow_nan=False),
    st.just(Decimal("1.005")),
    st.none(),
)
CHANGE = st.one_of(
    st.tuples(st.just(CUSTOMER), st.sampled_from(CLIENTS), st.fixed_dictionaries({"email": TEXT})),
    st.tuples(st.just(CUSTOMER), st.sampled_from(CLIENTS), st.fixed_dictionaries({"display_name": TEXT})),
    st.tuples(st.just(CUSTOMER), st.sampled_from(CLIENTS), st.just({"__inactivate__": True})),
    st.tuples(st.just(ITEM), st.sampled_from(PRODUCTS), st.fixed_dictionaries({"unit_price": PRICE})),
    st.tuples(st.just(ITEM), st.sampled_from(PRODUCTS), st.fixed_dictionaries({"name": TEXT})),
    st.tuples(st.just(ITEM), st.sampled_from(["P-404", "not a key"]), st.just({"name": "ghost"})),
)
BATCH = st.lists(st.tuples(CHANGE, st.sampled_from(["none", "current", "stale"])), min_size=1, max_size=10)


def build(connector: SqlConnector, batch: list[Any]) -> list[Op]:
    ops = []
    for (entity, key, fields), expect in batch:
        extra: dict[str, Any] = {}
        if expect != "none":
            try:
                seq = connector.fetch(entity, key).version.seq
            except LedgersyncError:
                seq = 1
            extra["expected_seq"] = seq if expect == "current" else seq - 1
        kind = OpKind.INACTIVATE if "__inactivate__" in fields else OpKind.UPDATE
        ops.append(op(kind, entity, key, {} if kind is OpKind.INACTIVATE else fields, **extra))
    return ops


def outcome(result: Any) -> Any:
    if isinstance(result, WriteResult):
        return ("written", result.external_id, result.fields)
    return type(result).__name__


def state(connector: SqlConnector) -> dict[str, Any]:
    found = {}
    for entity, keys in ((CUSTOMER, CLIENTS), (ITEM, PRODUCTS)):
        for key in keys:
            found[key] = connector.fetch(entity, key).fields
    return found


TABLES = ("clients", "products")


def reset(connector: SqlConnector, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Put the filled shop's rows back (cheaper than a new database and connector per example)."""
    with connector.engine.begin() as conn:
        for table in (*TABLES, "ledgersync_applied_ops"):
            if table in rows:
                conn.execute(sa.text(f"DELETE FROM {table}"))
                if rows[table]:
                    conn.execute(sa.table(table, *map(sa.column, rows[table][0])).insert(), rows[table])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlConnector, SqlConnector, Any]]:
    """Two filled shops on SQLite, one written in batches and one op at a time, and their first rows."""
    connectors = []
    for name in ("together", "alone"):
        directory = tmp_path_factory.mktemp(name)
        made = create_shop(f"sqlite:///{directory / 'shop.db'}", None, directory)
        fill(made)
        connectors.append(made.connector())
    with connectors[0].engine.connect() as conn:
        rows = {t: [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))] for t in TABLES}
    rows["ledgersync_applied_ops"] = []
    try:
        yield connectors[0], connectors[1], rows
    finally:
        for connector in connectors:
            connector.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=BATCH)
def test_a_batch_gives_each_op_the_outcome_it_gets_alone(pair: Any, batch: list[Any]) -> None:
    together, alone, rows = pair
    for connector in (together, alone):
        connector.write_many([])  # the applied-ops table exists from here on
        reset(connector, rows)
    ops = build(together, batch)
    batched = [outcome(r) for r in together.write_many(ops)]
    one_by_one = []
    for each in ops:
        try:
            one_by_one.append(outcome(alone.write(each)))
        except LedgersyncError as error:
            one_by_one.append(outcome(error))
    assert batched == one_by_one
    assert state(together) == state(alone)
