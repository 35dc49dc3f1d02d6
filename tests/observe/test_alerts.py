"""Alerts, received by a real local HTTP endpoint and a real local SMTP server: each incident once per
channel, whichever process checks and however often; again when it comes back after clearing; a
receiver that fails is tried again at the next check and never holds up the sync."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.quickbooks.budget import MeteredRead
from engine.broker import in_process_worker, make_broker, wait_until_idle
from engine.clock import FakeClock
from engine.configfile import ConfigFileError
from engine.errors import ConfigurationError
from engine.model import EntityType, Side
from engine.observe.alerts import AlertCheck
from engine.observe.notify import notifiers
from engine.settings import Alerts, Email, load_config
from engine.state import Connection, ConnectionStatus
from engine.store import SqlStateStore
from engine.workers import Services, build_actors
from ledgersync.bootstrap import SECTIONS, Runtime
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.receivers import SmtpReceiver, WebhookReceiver, smtp_receiver, webhook_receiver
from tests.support.sample import CUSTOMERS
from tests.support.stores import postgres_schema, postgres_url

C = EntityType.CUSTOMER
REALM = "9130350000000001"
CONFIG = """\
state_url: {state_url}
alerts:
  webhook_url: {webhook}
  email:
    host: 127.0.0.1
    port: {smtp}
    starttls: false
    sender: ledgersync@example.com
    to: [ops@example.com]
  conflict_hours: 24
  quota_percent: 80
quickbooks:
  environment: http://127.0.0.1:9
  client_id: obs-client
  client_secret: obs-secret
  metered_read_quota: 10
"""


@dataclass
class World:
    loop: InProcess
    clock: FakeClock
    config_path: Path
    hook: WebhookReceiver
    mail: SmtpReceiver

    def runtime(self) -> Runtime:
        """One ledgersync process on this world's store (a restart, another replica: another call)."""
        return Runtime(load_config(self.config_path, {}, SECTIONS), clock=self.clock)

    def check(self, runtime: Runtime | None = None) -> tuple[int, int]:
        """One alert check; how many webhook posts and e-mails arrived in all so far."""
        own = runtime is None
        runtime = runtime or self.runtime()
        try:
            check = runtime.alert_check()
            assert check is not None
            check.run()
        finally:
            if own:
                runtime.close()
        return len(self.hook.bodies), len(self.mail.messages)

    def set_status(self, status: ConnectionStatus) -> None:
        with self.loop.store.session() as s:
            s.save_connection(Connection(id="default", realm_id=REALM, status=status))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(datetime(2026, 11, 2, 9, tzinfo=UTC))
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    loop = in_process(state_url, PolicySet.default(), clock)
    with webhook_receiver() as hook, smtp_receiver() as mail:
        path = tmp_path / "ledgersync.yaml"
        path.write_text(CONFIG.format(state_url=state_url, webhook=hook.url, smtp=mail.port))
        built = World(loop, clock, path, hook, mail)
        built.set_status(ConnectionStatus.CONNECTED)
        try:
            yield built
        finally:
            loop.store.dispose()


def open_a_conflict(loop: InProcess) -> None:
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        link = s.find_link("default", C, Side.APP, app_id)
    assert link is not None and link.quickbooks_id is not None
    loop.app.edit(C, app_id, email="app@example.com")
    loop.quickbooks.edit(C, link.quickbooks_id, email="accounts@example.com")
    loop.runner.run_until_quiet()


def park_a_record(loop: InProcess) -> None:
    loop.quickbooks.reject_when(lambda op: op.entity is C)
    loop.app.create(C, dict(CUSTOMERS[1]))
    loop.runner.run_until_quiet()
    loop.quickbooks.reject_when(None)


def texts(world: World) -> list[str]:
    return [body["text"] for body in world.hook.bodies]


def test_each_incident_is_sent_once_per_channel_whoever_checks_and_again_after_it_clears(world: World):
    assert world.check() == (0, 0), "nothing is wrong yet"

    open_a_conflict(world.loop)
    park_a_record(world.loop)
    runtime = world.runtime()
    for _ in range(8):  # 8 of the plan's 10: the 80% mark
        runtime.budget().record_metered(REALM, MeteredRead.QUERY)
    world.set_status(ConnectionStatus.NEEDS_REAUTH)

    # The conflict is young: re-authorization, the parked record and the quota are incidents.
    assert world.check(runtime) == (3, 3)
    sent = texts(world)
    assert any("needs re-authorization" in t and "needs_reauth" in t for t in sent)
    assert any("record parked" in t and "rejected by an injected rule" in t for t in sent)
    assert any("8 metered QuickBooks reads in 2026-11: 80% of the plan's 10" in t for t in sent)
    assert world.mail.recipients == [["ops@example.com"]] * 3
    assert {m["Subject"] for m in world.mail.messages} == {
        "[ledgersync] default: connection needs re-authorization",
        "[ledgersync] default: record parked",
        "[ledgersync] default: metered QuickBooks reads near the plan's quota",
    }

    # Checked again, by this process and by a restarted one: nothing new.
    assert world.check(runtime) == (3, 3)
    assert world.check() == (3, 3)

    # A day later the conflict has waited too long: that one incident, once.
    world.clock.advance(25 * 3600)
    assert world.check(runtime) == (4, 4)
    assert "conflict waiting for a reviewer" in texts(world)[-1] and "email" in texts(world)[-1]
    assert world.check(runtime) == (4, 4)

    # Reconnected, the incident clears and nothing is sent; revoked again, it is a new incident.
    world.set_status(ConnectionStatus.CONNECTED)
    assert world.check(runtime) == (4, 4)
    world.set_status(ConnectionStatus.NEEDS_REAUTH)
    assert world.check(runtime) == (5, 5)
    assert "needs re-authorization" in texts(world)[-1]
    assert world.check(runtime) == (5, 5)
    runtime.close()


def test_a_failing_receiver_is_tried_again_at_the_next_check_and_the_sync_goes_on(world: World):
    world.set_status(ConnectionStatus.NEEDS_REAUTH)
    world.hook.fail_next = 1
    runtime = world.runtime()
    check = runtime.alert_check()
    assert check is not None
    broker = make_broker(None)
    loop = world.loop
    services = Services(
        store=loop.store,
        policy=loop.runner.policy,
        clock=world.clock,
        connectors=lambda _: loop.runner.connectors,
        check_alerts=check.run,
    )
    actors = build_actors(broker, services)
    worker = in_process_worker(broker, threads=2)
    worker.start()
    try:
        app_id = loop.app.create(C, dict(CUSTOMERS[0]))
        actors.alerts.send()
        actors.kick.send("default")
        loop.runner.poll_new(Side.APP, C)
        actors.kick.send("default")
        wait_until_idle(broker, worker)
        # The webhook refused; the e-mail went; the sync wrote the new customer regardless.
        assert (world.hook.refused, len(world.hook.bodies), len(world.mail.messages)) == (1, 0, 1)
        with loop.store.session() as s:
            link = s.find_link("default", C, Side.APP, app_id)
            (failed,) = [i for i in s.incidents() if i.channel == "webhook"]
        assert link is not None and link.quickbooks_id is not None
        assert failed.sent_at is None and "HTTP 500" in (failed.last_error or "")

        actors.alerts.send()  # the next scheduled check
        wait_until_idle(broker, worker)
        actors.alerts.send()
        wait_until_idle(broker, worker)
    finally:
        worker.stop()
        runtime.close()
    assert (len(world.hook.bodies), len(world.mail.messages)) == (1, 1)
    assert "needs re-authorization" in world.hook.bodies[0]["text"]


@pytest.mark.postgres
def test_processes_checking_at_the_same_moment_send_each_incident_once(tmp_path: Path):
    url = postgres_url()
    with postgres_schema(url) as schema, webhook_receiver() as hook, smtp_receiver() as mail:
        # Four processes: a store (its own connections) each, on one database.
        stores = [SqlStateStore(url, create=n == 0, schema=schema) for n in range(4)]
        for n in range(5):
            with stores[0].session() as s:
                s.save_connection(Connection(id=f"c{n}", status=ConnectionStatus.NEEDS_REAUTH))
        settings = Alerts(
            webhook_url=hook.url,
            email=Email(
                host="127.0.0.1", port=mail.port, starttls=False, sender="a@b.example", to=["o@b.example"]
            ),
        )
        clock = FakeClock(datetime(2026, 11, 2, tzinfo=UTC))
        checks = [AlertCheck(store, notifiers(settings), settings, clock) for store in stores]
        start = threading.Barrier(len(checks))
        errors: list[BaseException] = []

        def run(check: AlertCheck) -> None:
            start.wait()
            try:
                check.run()
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(check,)) for check in checks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for store in stores:
            store.dispose()
    assert errors == []
    assert sorted(b["text"].split(":")[0] for b in hook.bodies) == [f"*c{n}" for n in range(5)]
    assert len(mail.messages) == 5


@pytest.mark.parametrize(
    ("section", "field", "expected"),
    [
        ("webhook_url: hooks.example.com/x", "alerts.webhook_url", "absolute http(s) address"),
        ("email: {port: 25, sender: a@b.example, to: [o@b.example]}", "alerts.email.host", "required key"),
        (
            "email: {host: smtp.example.com, sender: nobody, to: [o@b.example]}",
            "alerts.email.sender",
            "not an e-mail",
        ),
    ],
)
def test_a_bad_alerts_section_is_a_configuration_error_naming_the_field(
    tmp_path: Path, section: str, field: str, expected: str
):
    path = tmp_path / "ledgersync.yaml"
    path.write_text(f"alerts:\n  {section}\n")
    with pytest.raises(ConfigFileError) as raised:
        load_config(path, {}, SECTIONS)
    assert isinstance(raised.value, ConfigurationError)
    (problem,) = raised.value.problems
    assert f": {field}: " in problem and expected in problem


def test_alerts_check_on_the_command_line_sends_once_and_says_so_in_json(world: World, tmp_path: Path):
    from typer.testing import CliRunner

    from ledgersync.cli import _register, app

    if not app.registered_groups:
        _register()
    runner = CliRunner()
    world.set_status(ConnectionStatus.REVOKED)
    args = ["--config", str(world.config_path), "alerts", "check", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert [i["key"] for i in report["open"]] == ["needs_reauth:default"]
    assert report["sent"] == [
        {"key": "needs_reauth:default", "channel": "webhook"},
        {"key": "needs_reauth:default", "channel": "email"},
    ]
    assert report["failed"] == []
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["sent"] == [] and len(again["open"]) == 1
    assert (len(world.hook.bodies), len(world.mail.messages)) == (1, 1)

    bare = tmp_path / "bare.yaml"
    bare.write_text(f"state_url: sqlite:///{tmp_path / 'bare.db'}\n")
    off = runner.invoke(app, ["--config", str(bare), "alerts", "check"])
    assert off.exit_code == 2 and "no alert channel" in off.output


def test_many_new_incidents_at_once_are_one_digest_per_channel(world: World):
    loop = world.loop
    loop.quickbooks.reject_when(lambda op: op.entity is C)
    for n in range(30):
        loop.app.create(C, {**CUSTOMERS[0], "display_name": f"Parked {n}", "email": f"p{n}@example.com"})
    loop.runner.run_until_quiet()
    assert world.check() == (1, 1)
    (digest,) = texts(world)
    assert digest.startswith("*30 incidents need attention*\n- default: record parked: A create of customer")
    assert digest.count("\n- default: record parked") == 25 and digest.endswith(
        "and 5 more: see `ledgersync status`."
    )
    assert world.mail.messages[0]["Subject"] == "[ledgersync] 30 incidents need attention"
    assert world.check() == (1, 1)

    loop.app.create(C, {**CUSTOMERS[0], "display_name": "One more", "email": "one@example.com"})
    loop.runner.run_until_quiet()
    assert world.check() == (2, 2)
    assert texts(world)[-1].startswith("*default: record parked*")
