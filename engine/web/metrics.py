"""/metrics in Prometheus' text format: the store's families (per connection) and every source's,
read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from engine.model import Side
from engine.observe.families import PREFIX, Family, gauge
from engine.state import Connection

if TYPE_CHECKING:
    from engine.ports import StoreSession
    from engine.web.app import WebServices

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The tokens whose expiry /metrics shows, and the connection's column holding it.
_EXPIRIES = {
    "access": "access_expires_at",
    "refresh": "refresh_expires_at",
    "refresh_hard": "refresh_hard_expires_at",
}


def store_families(s: StoreSession, connections: Iterable[str], now: datetime) -> list[Family]:
    """Per connection: journal, ops and conflicts by status, their ages, links, echoes, parked
    records, sync lag per side, and the connection's status and tokens."""
    f = {
        "events": gauge("events", "Change events journaled, by status", ("connection", "status")),
        "ops": gauge(
            "ops", "Planned writes by status (pending, waiting, parked, applied...)", ("connection", "status")
        ),
        "open_conflicts": gauge("open_conflicts", "Conflicts waiting for a reviewer"),
        "oldest": gauge("oldest_open_conflict_age_seconds", "Age of the oldest open conflict (0: none)"),
        "echoes": gauge("echoes_dropped", "Our own writes seen coming back and dropped"),
        "links": gauge("links", "Records linked between the app and QuickBooks"),
        "parked": gauge("parked_records", "Records a side holds that could not be read (see status)"),
        "lag": gauge(
            "sync_lag_seconds",
            "Age of the oldest change read from `side` and not yet written to the other side (0: none)",
            ("connection", "side"),
        ),
        "status": gauge("connection_status", "1 for the connection's status", ("connection", "status")),
        "info": gauge(
            "connection_info",
            "1 per connection, naming the app tenant it serves and its QuickBooks company",
            ("connection", "tenant", "realm"),
        ),
        "age": gauge("token_age_seconds", "Seconds since the connection's tokens were last refreshed"),
        "expiry": gauge(
            "token_expires_in_seconds", "Seconds until each token expires", ("connection", "token")
        ),
    }
    stored = {c.id: c for c in s.list_connections()}
    for cid in sorted({*connections, *stored}):
        counts, observed = s.counts(cid), s.observed(cid)
        f["events"].samples.extend(((cid, k), v) for k, v in sorted(counts.journal.items()))
        f["ops"].samples.extend(((cid, k), v) for k, v in sorted(counts.ops.items()))
        f["open_conflicts"].samples.append(((cid,), counts.conflicts.get("open", 0)))
        oldest = observed.oldest_open_conflict
        f["oldest"].samples.append(((cid,), 0.0 if oldest is None else _seconds(now, oldest)))
        f["echoes"].samples.append(((cid,), counts.audit.get("echo_dropped", 0)))
        f["links"].samples.append(((cid,), counts.links))
        f["parked"].samples.append(((cid,), observed.parked_records))
        for side in Side:
            since = observed.oldest_unsynced.get(side.value)
            f["lag"].samples.append(((cid, side.value), 0.0 if since is None else _seconds(now, since)))
        if cid in stored:
            _connection(f, stored[cid], now)
    return list(f.values())


def _connection(f: dict[str, Family], connection: Connection, now: datetime) -> None:
    cid = connection.id
    f["status"].samples.append(((cid, connection.status.value), 1))
    f["info"].samples.append(((cid, connection.app_tenant, connection.realm_id or ""), 1))
    if connection.updated_at is not None:
        f["age"].samples.append(((cid,), _seconds(now, connection.updated_at)))
    for token, column in _EXPIRIES.items():
        at: datetime | None = getattr(connection, column)
        if at is not None:
            f["expiry"].samples.append(((cid, token), (at - now).total_seconds()))


def _seconds(now: datetime, since: datetime) -> float:
    return max(0.0, (now - since).total_seconds())


def _metric(family: Family) -> Metric:
    name = PREFIX + family.name
    metric: GaugeMetricFamily | CounterMetricFamily
    if family.kind == "counter":
        metric = CounterMetricFamily(name, family.help, labels=family.labels)
    else:
        metric = GaugeMetricFamily(name, family.help, labels=family.labels)
    for labels, value in family.samples:
        metric.add_metric(list(labels), value)
    return metric


class _Collector(Collector):
    def __init__(self, services: WebServices) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        services = self.services
        with services.store.session() as s:
            families = store_families(s, [services.connection], services.clock.now())
        for source in services.sources:
            families += source()
        yield from (_metric(family) for family in families)


def endpoint(services: WebServices) -> Callable[[Request], Response]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(services))

    def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    return metrics
