"""The query language subset real clients send: SELECT */COUNT(*), WHERE ... AND ..., ORDERBY, paging."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.quickbooks.emulator import faults
from connectors.quickbooks.emulator.clock import parse_moment
from connectors.quickbooks.emulator.context import ENTITIES, NAME_LISTS, Context
from connectors.quickbooks.emulator.store import JsonDict, Row

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:''|\\'|[^'])*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|<>|[=<>(),*])"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
OPERATORS = ("=", "<", ">", "<=", ">=", "IN", "LIKE")


@dataclass(frozen=True)
class Condition:
    prop: str
    op: str
    values: tuple[Any, ...]


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    start: int = 1
    max_results: int | None = None


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            raise faults.query_parse(f'Encountered " "{text[pos : pos + 10]}" at column {pos + 1}.')
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise faults.query_parse("Encountered <EOF> where more input was expected.")
        self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() in words:
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        _, text = self.take()
        if text.upper() != value:
            raise faults.query_parse(f'Encountered "{text}", was expecting "{value}".')

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'").replace("\\'", "'")
        if kind == "num":
            return Decimal(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise faults.query_parse(f'Encountered "{text}" where a value was expected.')

    def integer(self, clause: str) -> int:
        kind, text = self.take()
        if kind != "num" or not text.lstrip("-").isdigit():
            raise faults.query_parse(f'Encountered "{text}" after {clause}, was expecting an integer.')
        return int(text)


def parse(text: str) -> Query:
    p = _Parser(text)
    if not p.keyword("SELECT"):
        raise faults.query_parse("Query must start with SELECT.")
    count = False
    if p.keyword("COUNT"):
        p.expect("(")
        p.expect("*")
        p.expect(")")
        count = True
    else:
        p.expect("*")
    while p.peek() == ("op", ","):  # `SELECT *, Sku FROM Item`: extra columns change nothing
        p.take()
        p.take()
    if not p.keyword("FROM"):
        raise faults.query_parse("Encountered a token where FROM was expected.")
    kind, entity = p.take()
    if kind != "word" or entity not in ENTITIES:
        raise faults.query_validation(f"{entity} is not a valid entity.")
    query = Query(entity=entity, count=count)
    if p.keyword("WHERE"):
        query.where.append(_condition(p))
        while p.keyword("AND"):
            query.where.append(_condition(p))
        if p.keyword("OR"):
            raise faults.query_parse("OR is not supported.")
    ordered = p.keyword("ORDERBY")
    if not ordered and p.keyword("ORDER"):
        p.expect("BY")
        ordered = True
    if ordered:
        while True:
            kind, prop = p.take()
            if kind != "word":
                raise faults.query_parse(f'Encountered "{prop}" after ORDERBY.')
            descending = p.keyword("DESC")
            if not descending:
                p.keyword("ASC")
            query.order.append((prop, descending))
            if p.peek() != ("op", ","):
                break
            p.take()
    while p.peek() is not None:
        if p.keyword("STARTPOSITION"):
            query.start = p.integer("STARTPOSITION")
        elif p.keyword("MAXRESULTS"):
            query.max_results = p.integer("MAXRESULTS")
        else:
            raise faults.query_parse(f'Encountered "{p.take()[1]}" at the end of the query.')
    return query


def _condition(p: _Parser) -> Condition:
    kind, prop = p.take()
    if kind != "word":
        raise faults.query_parse(f'Encountered "{prop}" where a property name was expected.')
    _, op = p.take()
    op = op.upper()
    if op not in OPERATORS:
        raise faults.query_parse(f'Encountered "{op}", was expecting one of {", ".join(OPERATORS)}.')
    if op == "IN":
        p.expect("(")
        values = [p.value()]
        while p.peek() == ("op", ","):
            p.take()
            values.append(p.value())
        p.expect(")")
        return Condition(prop, op, tuple(values))
    value = p.value()
    if op == "LIKE" and not isinstance(value, str):
        raise faults.query_parse("LIKE needs a quoted pattern.")
    return Condition(prop, op, (value,))


def _lookup(data: JsonDict, prop: str) -> Any:
    current: Any = data
    for part in prop.split("."):
        if not isinstance(current, dict):
            return None
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    if isinstance(current, dict) and "value" in current:
        return current["value"]  # a reference compares by its id
    return current


def _comparable(ctx: Context, field_value: Any, literal: Any) -> tuple[Any, Any] | None:
    if field_value is None:
        return None
    if isinstance(literal, bool) or isinstance(field_value, bool):
        return (field_value, literal) if isinstance(field_value, bool) and isinstance(literal, bool) else None
    try:
        if isinstance(field_value, int | float | Decimal):
            return Decimal(str(field_value)), Decimal(str(literal))
        if isinstance(literal, Decimal) and str(field_value).replace(".", "", 1).lstrip("-").isdigit():
            return Decimal(str(field_value)), literal
    except InvalidOperation:
        return None
    text = str(field_value)
    if re.match(r"^\d{4}-\d{2}-\d{2}", text) and re.match(r"^\d{4}-\d{2}-\d{2}", str(literal)):
        try:
            return _moment(ctx, text), _moment(ctx, str(literal))
        except ValueError:
            return None
    return text.casefold(), str(literal).casefold()


def _moment(ctx: Context, text: str) -> datetime:
    return parse_moment(text, ctx.config.tz)


def _matches(ctx: Context, data: JsonDict, cond: Condition) -> bool:
    field_value = _lookup(data, cond.prop)
    if cond.op == "LIKE":
        pattern = "^" + ".*".join(re.escape(part) for part in str(cond.values[0]).split("%")) + "$"
        return (
            field_value is not None
            and re.match(pattern, str(field_value), re.IGNORECASE | re.DOTALL) is not None
        )
    if cond.op == "IN":
        return any(_compare(ctx, field_value, "=", v) for v in cond.values)
    return _compare(ctx, field_value, cond.op, cond.values[0])


def _compare(ctx: Context, field_value: Any, op: str, literal: Any) -> bool:
    pair = _comparable(ctx, field_value, literal)
    if pair is None:
        return False
    left, right = pair
    try:
        result: bool = {
            "=": left == right,
            "<": left < right,
            ">": left > right,
            "<=": left <= right,
            ">=": left >= right,
        }[op]
    except TypeError:
        return False
    return result


def run(ctx: Context, text: str) -> JsonDict:
    """Answer a query statement with the `QueryResponse` object (without the top-level `time`)."""
    query = parse(text)
    limit = query.max_results if query.max_results is not None else ctx.config.query_default_results
    if limit > ctx.config.query_max_results:
        raise faults.query_validation(
            f"value {limit} is too large. Max allowed value is {ctx.config.query_max_results}"
        )
    if limit < 1 or query.start < 1:
        raise faults.query_validation("STARTPOSITION and MAXRESULTS must be positive")
    where = list(query.where)
    if query.entity in NAME_LISTS and not any(c.prop.lower() == "active" for c in where):
        where.append(Condition("Active", "=", (True,)))  # inactive name-list records stay hidden
    rows = ctx.store.selected(
        query.entity,
        (tuple(where), tuple(query.order)),
        functools.partial(_select, ctx, query.entity, where, query.order),
    )
    if query.count:
        return {"totalCount": len(rows)}
    page = [r.data for r in rows[query.start - 1 : query.start - 1 + limit]]
    if not page:
        return {}
    return {query.entity: page, "startPosition": query.start, "maxResults": len(page)}


def _select(ctx: Context, entity: str, where: list[Condition], order: list[tuple[str, bool]]) -> list[Row]:
    """The rows of `entity` that meet every condition, in the query's order (creation order first)."""
    rows = [row for row in ctx.store.all(entity) if all(_matches(ctx, row.data, c) for c in where)]
    rows.sort(key=lambda r: r.created_at)
    for prop, descending in reversed(order):
        rows.sort(key=functools.partial(_row_sort_key, ctx, prop), reverse=descending)
    return rows


def _row_sort_key(ctx: Context, prop: str, row: Row) -> tuple[int, Any]:
    return _sort_key(ctx, row.data, prop)


def _sort_key(ctx: Context, data: JsonDict, prop: str) -> tuple[int, Any]:
    value = _lookup(data, prop)
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, Decimal(str(value)))
    text = str(value)
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            return (2, _moment(ctx, text).timestamp())
        except ValueError:
            pass
    if text.isdigit():
        return (1, Decimal(text))
    return (3, text.casefold())
