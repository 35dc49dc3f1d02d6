"""Injected faults (5xx, timeout after commit) and webhook delivery: signed, batched, retried, in order."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator, sign
from tests.emulator.conftest import Api, fault_code


class Receiver:
    """A webhook endpoint that records what it gets and answers the statuses it is told to; inside
    `holding(realm)` it keeps each delivery for that realm waiting for its answer until the block ends."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, str]] = []
        self.statuses: list[int] = []
        self.gate: threading.Event | None = None
        self.gated_realm = ""
        self.held = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append((raw, self.headers["intuit-signature"]))
                gate = receiver.gate
                if gate is not None and receiver.gated_realm in raw.decode():
                    receiver.held.set()
                    gate.wait(60)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextlib.contextmanager
    def holding(self, realm: str) -> Iterator[threading.Event]:
        """Deliveries wait for their answer until the block ends; yields an event set once one does
        (the emulator's dispatcher is then inside that POST, and what changes next queues behind it)."""
        self.held.clear()
        self.gated_realm = realm
        self.gate = threading.Event()
        try:
            yield self.held
        finally:
            self.gate.set()
            self.gate = None

    def events(self, realm: str | None = None) -> list[dict[str, Any]]:
        """CloudEvents received (of one realm's company, if given), in the order they came."""
        every = [event for raw, _ in self.bodies for event in json.loads(raw)]
        return [e for e in every if realm is None or e["intuitaccountid"] == realm]

    def wait_for(self, count: int, timeout: float = 30.0, realm: str | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events(realm)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events(realm)


def _ids(raw: bytes) -> set[str]:
    return {e["intuitentityid"] for e in json.loads(raw)}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture(scope="module")
def qbo(receiver: Receiver) -> Iterator[EmulatorHandle]:
    config = EmulatorConfig(
        webhook_url=receiver.url,
        webhook_batch_window=0.05,
        webhook_retry_delays=(0.1, 0.2),
        verifier_token="vt",
    )
    with running_emulator(config) as handle:
        yield handle


@pytest.fixture(autouse=True)
def clean(receiver: Receiver, qbo: EmulatorHandle) -> None:
    # The test before (on this xdist worker, not always the one before in the file) may have left
    # changes on their way: one delivered now would take the answers this test sets up.
    deadline = time.monotonic() + 30
    while qbo.webhook_deliveries()["pending"]:
        assert time.monotonic() < deadline, "earlier webhooks were never delivered"
        time.sleep(0.02)
    receiver.bodies.clear()
    receiver.statuses.clear()
    qbo.clear_faults()


def test_injected_server_errors_hit_the_next_n_requests(api: Api, qbo: EmulatorHandle) -> None:
    qbo.inject_fault("server_error", count=2, status=503)
    first, second, third = (api.get("/companyinfo/1") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert fault_code(first) == "10000" and first.json()["Fault"]["type"] == "SystemFault"


def test_timeout_after_commit_then_requestid_retry_creates_nothing_twice(
    api: Api, qbo: EmulatorHandle
) -> None:
    qbo.clear_request_log()
    qbo.inject_fault("timeout_after_commit", delay=0.5, path_contains="/customer")
    with pytest.raises(httpx.ReadTimeout):
        api.client.post(
            "/customer", json={"DisplayName": "Timed Out"}, params={"requestid": "t-1"}, timeout=0.2
        )
    retry = api.post("/customer", {"DisplayName": "Timed Out"}, requestid="t-1")
    assert retry.status_code == 200
    count = api.query("select count(*) from Customer where DisplayName = 'Timed Out'").json()
    assert count["QueryResponse"]["totalCount"] == 1
    # The emulator still holds the first answer; it is logged when that ends. Wait for it here, or
    # on a busy machine it lands in the next test's request log.
    deadline = time.monotonic() + 30
    while qbo.request_log()["by_endpoint"].get("POST customer", 0) < 2:
        assert time.monotonic() < deadline, "the held answer was never logged"
        time.sleep(0.02)


def test_request_log_counts_endpoints_and_metered_classes(api: Api, qbo: EmulatorHandle) -> None:
    qbo.clear_request_log()
    api.get("/companyinfo/1")
    api.create("Customer", {"DisplayName": "Logged"})
    api.query("select * from Customer")
    log = qbo.request_log()
    assert log["by_endpoint"] == {"GET companyinfo": 1, "POST customer": 1, "query": 1}
    assert log["by_class"] == {"CorePlus": 2, "Core": 1}
    assert log["metered"] == 2


def test_changes_are_delivered_as_signed_cloudevents(api: Api, receiver: Receiver) -> None:
    customer = api.create("Customer", {"DisplayName": "Hooked"})
    # Earlier tests' changes may still be on their way (a busy machine): look for this one's.
    deadline = time.monotonic() + 30
    while not (found := [(raw, sig) for raw, sig in list(receiver.bodies) if customer["Id"] in _ids(raw)]):
        assert time.monotonic() < deadline, "the change was never delivered"
        time.sleep(0.02)
    raw, signature = found[0]
    assert signature == sign(raw, "vt")
    (event,) = [e for e in json.loads(raw) if e["intuitentityid"] == customer["Id"]]
    assert event["type"] == "qbo.customer.created.v1"
    assert (event["intuitentityid"], event["intuitaccountid"]) == (customer["Id"], api.qbo.realm_id)
    assert event["specversion"] == "1.0" and event["time"].endswith("Z")


def test_a_failed_delivery_is_retried_and_holds_later_events(
    api: Api, qbo: EmulatorHandle, receiver: Receiver
) -> None:
    receiver.statuses.extend([500, 400])
    first = api.create("Customer", {"DisplayName": "Held 1"})
    events = receiver.wait_for(3)  # two failed attempts, then the success
    assert [e["intuitentityid"] for e in events[:3]] == [first["Id"]] * 3
    qbo.edit_record("Customer", first["Id"], {"Notes": "edited in the UI"})
    events = receiver.wait_for(4)
    assert events[3]["type"] == "qbo.customer.updated.v1"
    # The emulator logs a delivery once its answer is back, a moment after the receiver has the body.
    deadline = time.monotonic() + 10
    while (statuses := [d["status"] for d in qbo.webhook_deliveries()["deliveries"]][-3:]) != [400, 200, 200]:
        assert time.monotonic() < deadline, statuses
        time.sleep(0.02)


def test_dropped_and_duplicated_webhooks(api: Api, qbo: EmulatorHandle, receiver: Receiver) -> None:
    qbo.inject_fault("webhook_drop")
    dropped = api.create("Customer", {"DisplayName": "Dropped"})
    qbo.inject_fault("webhook_duplicate")
    twice = api.create("Customer", {"DisplayName": "Twice"})
    events = receiver.wait_for(2)
    assert [e["intuitentityid"] for e in events] == [twice["Id"], twice["Id"]]
    assert events[0]["id"] == events[1]["id"]
    assert dropped["Id"] not in {e["intuitentityid"] for e in receiver.events()}
    notes = [d["note"] for d in qbo.webhook_deliveries()["deliveries"]]
    assert "dropped by fault injection" in notes


def test_reordered_webhooks_arrive_in_reverse_order(receiver: Receiver) -> None:
    # The fault reverses one batch. Two changes share a batch only if both are queued before the
    # dispatcher takes it: a delivery held open keeps the dispatcher waiting while they queue, so
    # they go together whatever the machine's pace (the long timeout keeps it from giving up).
    # A realm of its own: the module's emulator may still be delivering earlier tests' changes.
    realm = "9341455600000777"
    config = EmulatorConfig(
        realm_id=realm,
        webhook_url=receiver.url,
        webhook_batch_window=0.05,
        webhook_timeout=60.0,
        verifier_token="vt",
    )
    with running_emulator(config) as qbo:
        qbo.connect()
        with receiver.holding(realm) as held:
            gate = qbo.create_record("Customer", {"DisplayName": "Gate"})
            assert held.wait(30), "the gate's webhook never arrived"
            a = qbo.create_record("Customer", {"DisplayName": "Order A"})
            b = qbo.create_record("Customer", {"DisplayName": "Order B"})
            qbo.inject_fault("webhook_reorder")
        delivered = [e["intuitentityid"] for e in receiver.wait_for(3, realm=realm)]
    assert delivered == [gate["Id"], b["Id"], a["Id"]]


def test_legacy_format_by_option(receiver: Receiver) -> None:
    config = EmulatorConfig(webhook_url=receiver.url, webhook_format="legacy", webhook_batch_window=0.05)
    with running_emulator(config) as legacy:
        legacy.connect()
        created = legacy.create_record("Customer", {"DisplayName": "Legacy"})
        deadline = time.monotonic() + 5
        while not receiver.bodies and time.monotonic() < deadline:
            time.sleep(0.02)
    body = json.loads(receiver.bodies[0][0])
    entity = body["eventNotifications"][0]["dataChangeEvent"]["entities"][0]
    assert (entity["name"], entity["id"], entity["operation"]) == ("Customer", created["Id"], "Create")


def test_state_file_keeps_data_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "qbo.json"
    with running_emulator(EmulatorConfig(state_file=state)) as first:
        tokens = first.connect()
        saved = first.create_record("Customer", {"DisplayName": "Persisted"})
    with running_emulator(EmulatorConfig(state_file=state)) as second:
        assert second.read_record("Customer", saved["Id"])["DisplayName"] == "Persisted"
        answer = httpx.get(
            f"{second.company_url}/customer/{saved['Id']}",
            headers={"Authorization": f"Bearer {tokens.access_token}"},
        )
        assert answer.status_code == 200


def test_cli_command_documents_every_option_with_its_default() -> None:
    from ledgersync.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["emulator", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--realm",
        "--client-id",
        "--client-secret",
        "--webhook-url",
        "--verifier-token",
        "--state",
        "--minute-seconds",
        "--webhook-format",
    ):
        assert option in result.output
    assert "127.0.0.1" in result.output and "8700" in result.output
