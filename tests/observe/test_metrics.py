"""/metrics on a real sync (emulator, example app, SQLite store): each family the issue names is there,
labelled per connection, and moves when the test causes what it counts. The Grafana dashboard in
examples/ queries only metrics that exist."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from typer.testing import CliRunner

from engine.broker import make_broker
from engine.clock import SystemClock
from engine.errors import NeedsReauthorizationError
from engine.model import EntityType, Side
from engine.observe.counters import Increment, RedisCounters
from engine.settings import load_config
from engine.store import SqlStateStore
from engine.workers import Services, build_actors, queue_families
from examples.invoicing.actions import add_customer
from examples.invoicing.edit import edit_record
from ledgersync.bootstrap import SECTIONS, Runtime
from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox
from policies import PolicySet

REPO = Path(__file__).parents[2]
DASHBOARD = REPO / "examples" / "grafana" / "ledgersync.json"
C = EntityType.CUSTOMER


class Scrape:
    """One /metrics answer: sample values by name and labels, and the families it declares."""

    def __init__(self, text: str) -> None:
        self.families = {f.name for f in text_string_to_metric_families(text)}
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples
        ]
        self.names = {name for name, _, _ in self.samples} | self.families

    def value(self, name: str, **labels: str) -> float | None:
        """The sum of `name`'s samples whose labels include `labels` (None: no such sample)."""
        found = [v for n, got, v in self.samples if n == name and labels.items() <= got.items()]
        return sum(found) if found else None


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path) as ready:
        config = yaml.safe_load(ready.config_path.read_text())
        # A 429 without Retry-After holds the company this long (a minute otherwise).
        config["quickbooks"].update(throttle_penalty_seconds=0.3, metered_read_quota=1000)
        config["web"]["api_token"] = SCRAPER_TOKEN  # /metrics takes the API token (or a session)
        ready.config_path.write_text(yaml.safe_dump(config))
        yield ready


SCRAPER_TOKEN = "prometheus-scraper-token"


def connect(box: Sandbox) -> None:
    if not app.registered_groups:
        _register()
    result = CliRunner().invoke(app, ["--config", str(box.config_path), "connect"], env=box.environ)
    assert result.exit_code == 0, result.output


def test_each_family_is_on_metrics_and_moves_when_its_cause_happens(box: Sandbox):
    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    broker = make_broker(None)
    actors = build_actors(broker, runtime.services())  # no worker: what is sent stays queued
    web = TestClient(runtime.web_app(broker=broker))

    def scrape() -> Scrape:
        assert web.get("/metrics").status_code == 401
        answer = web.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"})
        assert answer.status_code == 200
        return Scrape(answer.text)

    try:
        before = scrape()
        assert before.value("ledgersync_token_age_seconds") is None, "not connected yet"
        connect(box)
        connected = scrape()
        assert connected.value("ledgersync_token_age_seconds", connection="default") is not None
        assert connected.value("ledgersync_token_expires_in_seconds", token="access") > 3000
        assert connected.value("ledgersync_token_expires_in_seconds", token="refresh") > 86400
        assert connected.value("ledgersync_connection_status", connection="default", status="connected") == 1
        assert connected.value("ledgersync_quickbooks_metered_read_quota", connection="default") == 1000
        assert connected.value("ledgersync_quickbooks_requests_total") is None

        # Changes read from the app and not yet decided: the app side lags; decided, ops are pending.
        runner = runtime.runner()
        runner.poll_new(Side.APP, C)
        assert scrape().value("ledgersync_sync_lag_seconds", connection="default", side="app") > 0
        runner.decide_pending()
        assert scrape().value("ledgersync_ops", connection="default", status="pending") > 0

        runner.run_until_quiet()
        synced = scrape()
        assert synced.value("ledgersync_sync_lag_seconds", side="app") == 0
        assert synced.value("ledgersync_ops", status="pending") is None
        assert synced.value("ledgersync_ops", connection="default", status="applied") > 0
        assert synced.value("ledgersync_links", connection="default") > 0
        written = synced.value("ledgersync_quickbooks_requests_total", connection="default", status="200")
        assert written and written > 0
        reads = synced.value("ledgersync_quickbooks_metered_reads", connection="default", kind="total")
        assert reads and reads > (connected.value("ledgersync_quickbooks_metered_reads", kind="total") or 0)
        cdc = synced.value("ledgersync_quickbooks_requests_total", entity="Customer", operation="cdc")
        assert cdc and cdc > 0

        # QuickBooks throttles one call: a 429 counted, and the wait for the budget.
        box.qbo.inject_fault("rate_limit", count=1)
        runner.poll_new(Side.QUICKBOOKS, C)
        throttled = scrape()
        assert throttled.value("ledgersync_quickbooks_throttled_total", connection="default") == 1
        assert throttled.value("ledgersync_quickbooks_requests_total", status="429") == 1
        waited = throttled.value("ledgersync_quickbooks_budget_wait_seconds_total", connection="default")
        assert waited and waited >= 0.25
        assert (synced.value("ledgersync_quickbooks_budget_wait_seconds_total") or 0) < waited

        # The same customer's e-mail edited on both sides (manual by policy): an open conflict.
        with runtime.store.session() as s:
            (link, *_) = [lk for lk in s.list_links("default", C) if lk.app_id and lk.quickbooks_id]
        assert link.app_id and link.quickbooks_id
        edit_record(box.app_url, "customer", int(link.app_id), {"email": "app@example.com"})
        box.qbo.edit_record(
            "Customer", link.quickbooks_id, {"PrimaryEmailAddr": {"Address": "qb@example.com"}}
        )
        runner.run_until_quiet()
        conflicted = scrape()
        assert conflicted.value("ledgersync_open_conflicts", connection="default") == 1
        assert conflicted.value("ledgersync_oldest_open_conflict_age_seconds", connection="default") > 0

        # A customer the app holds without a name cannot be read: parked.
        assert scrape().value("ledgersync_parked_records", connection="default") == 0
        add_customer(box.app_url, display_name="")
        runner.run_until_quiet()
        assert scrape().value("ledgersync_parked_records", connection="default") == 1

        # Messages sent and not worked off: the queue's depth and its oldest message's age.
        actors.poll.send("default", "app", "customer")
        actors.poll.send("default", "quickbooks", "customer")
        actors.refresh_tokens.send()
        queued = scrape()
        assert queued.value("ledgersync_queue_messages", connection="default", actor="poll") == 2
        assert queued.value("ledgersync_queue_messages", connection="", actor="refresh_tokens") == 1
        assert queued.value("ledgersync_queue_oldest_message_age_seconds", actor="poll") > 0
        assert queued.value("ledgersync_queue_length", queue="ledgersync") == 3

        # The company disconnects: the connection needs re-authorization and a new write waits.
        box.qbo.disconnect()
        add_customer(box.app_url, display_name="Waits For Reconnect")
        with contextlib.suppress(NeedsReauthorizationError):
            runner.run_until_quiet()
        waiting = scrape()
        assert waiting.value("ledgersync_connection_status", connection="default", status="needs_reauth") == 1
        assert waiting.value("ledgersync_ops", connection="default", status="waiting") == 1
        assert waiting.value("ledgersync_sync_lag_seconds", connection="default", side="app") > 0

        # Every metric the dashboard queries is one /metrics has.
        queried = dashboard_metrics()
        assert queried and queried <= waiting.names, sorted(queried - waiting.names)
    finally:
        web.close()
        runtime.close()


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            exprs.extend(str(v) for k, v in node.items() if k in ("expr", "query"))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    return {name for expr in exprs for name in re.findall(r"\bledgersync_[a-z_]+", expr)}


def test_with_redis_every_process_adds_to_the_same_counters_and_the_queue_is_read_from_redis(
    tmp_path: Path,
):
    client = redis.Redis(host="127.0.0.1", port=6379)
    namespace = f"obs_{tmp_path.name[-12:].replace('-', '_')}"
    one, two = RedisCounters(client, f"{namespace}:counters"), RedisCounters(client, f"{namespace}:counters")
    broker = RedisBroker(url="redis://127.0.0.1:6379/0", namespace=namespace)
    try:
        labels = {"connection": "c1", "entity": "Invoice", "operation": "create", "status": "200"}
        one.add([Increment("quickbooks_requests", labels)])
        two.add(
            [
                Increment("quickbooks_requests", labels),
                Increment("quickbooks_throttled", {"connection": "c1"}),
            ]
        )
        assert one.read() == {
            "quickbooks_requests": {tuple(sorted(labels.items())): 2.0},
            "quickbooks_throttled": {(("connection", "c1"),): 1.0},
        }

        store = SqlStateStore(f"sqlite:///{tmp_path / 'state.db'}", create=True)
        services = Services(
            store=store, policy=PolicySet.default(), clock=SystemClock(), connectors=lambda _: {}
        )
        actors = build_actors(broker, services)
        for _ in range(3):
            actors.kick.send("c1")
        depth, age, length = queue_families(broker, services.clock.now())
        assert depth.samples == [(("c1", "ledgersync_scheduled", "kick"), 3)]  # the scheduler's queue
        assert age.samples[0][1] >= 0
        assert dict(length.samples)[("ledgersync_scheduled",)] == 3
        store.dispose()
    finally:
        broker.flush_all()
        broker.close()
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        client.close()


def test_every_connection_is_on_metrics_with_its_tenant_and_company(box: Sandbox):
    from engine.state import Connection, ConnectionStatus

    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    web = TestClient(runtime.web_app())
    try:
        with runtime.store.session() as s:
            now = runtime.clock.now()
            s.save_connection(Connection(id="tenant-acme", app_tenant="acme", realm_id="111", updated_at=now))
            s.save_connection(
                Connection(
                    id="tenant-beta",
                    app_tenant="beta",
                    realm_id="222",
                    status=ConnectionStatus.REVOKED,
                    updated_at=now,
                )
            )
        scrape = Scrape(web.get("/metrics", headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"}).text)
        assert (
            scrape.value("ledgersync_connection_info", connection="tenant-acme", tenant="acme", realm="111")
            == 1
        )
        assert (
            scrape.value("ledgersync_connection_info", connection="tenant-beta", tenant="beta", realm="222")
            == 1
        )
        assert scrape.value("ledgersync_connection_status", connection="tenant-beta", status="revoked") == 1
        assert scrape.value("ledgersync_links", connection="tenant-acme") == 0
    finally:
        web.close()
        runtime.close()
