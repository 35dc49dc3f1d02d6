"""/metrics in Prometheus' text format, read from the state store (and connector gauges) at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from engine.web.app import WebServices

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    def __init__(self, services: WebServices) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        with self.services.store.session() as s:
            counts = s.counts(self.services.connection)
        events = GaugeMetricFamily(
            "ledgersync_events", "Change events journaled, by status", labels=["status"]
        )
        for status, n in counts.journal.items():
            events.add_metric([status], n)
        ops = GaugeMetricFamily("ledgersync_ops", "Planned writes, by outcome", labels=["status"])
        for status, n in counts.ops.items():
            ops.add_metric([status], n)
        conflicts = GaugeMetricFamily("ledgersync_open_conflicts", "Conflicts waiting for a reviewer")
        conflicts.add_metric([], counts.conflicts.get("open", 0))
        echoes = GaugeMetricFamily("ledgersync_echoes_dropped", "Our own writes seen coming back and dropped")
        echoes.add_metric([], counts.audit.get("echo_dropped", 0))
        links = GaugeMetricFamily("ledgersync_links", "Records linked between the app and QuickBooks")
        links.add_metric([], counts.links)
        yield from (events, ops, conflicts, echoes, links)
        if self.services.gauges is not None:
            for name, value in sorted(self.services.gauges().items()):
                gauge = GaugeMetricFamily(f"ledgersync_{name}", name.replace("_", " "))
                gauge.add_metric([], value)
                yield gauge


def endpoint(services: WebServices) -> Callable[[Request], Response]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(services))

    def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    return metrics
