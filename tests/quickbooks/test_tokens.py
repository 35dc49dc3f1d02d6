"""Token custody against the emulator: encrypted at rest, refreshed ahead of expiry and after a 401,
single-flight across workers, a dead grant parks the connection, reconnect resumes it."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest

from connectors.quickbooks.crypto import TokenCipher, generate_key
from connectors.quickbooks.emulator import EmulatorConfig
from connectors.quickbooks.emulator.server import EmulatorHandle
from connectors.quickbooks.tokens import ReauthNotice, WebhookNotifier, hard_expiry_warning
from engine.errors import ConfigurationError, NeedsReauthorizationError
from engine.model import EntityType
from engine.ports import StateStore
from engine.state import ConnectionStatus
from tests.quickbooks.conftest import Rig


def endpoint_count(qbo: EmulatorHandle, endpoint: str) -> int:
    return int(qbo.request_log()["by_endpoint"].get(endpoint, 0))


def status_count(qbo: EmulatorHandle, status: int) -> int:
    return int(qbo.request_log()["by_status"].get(str(status), 0))


def test_connect_stores_the_tokens_encrypted(qbo: EmulatorHandle, store: StateStore):
    with ExitStack() as stack:
        rig = Rig(qbo, store, stack)
        tokens = rig.connect("c1")
        with store.session() as session:
            stored = session.get_connection("c1")
        assert stored is not None and stored.tokens_encrypted is not None
        assert stored.status is ConnectionStatus.CONNECTED and stored.realm_id == qbo.realm_id
        for token in (tokens.access_token.get_secret_value(), tokens.refresh_token.get_secret_value()):
            assert token.encode() not in stored.tokens_encrypted
            assert token[:40].encode() not in stored.tokens_encrypted
        assert stored.access_expires_at == tokens.expires_at
        assert stored.refresh_hard_expires_at is not None
        assert TokenCipher(rig.key).decrypt(stored.tokens_encrypted) == tokens


@pytest.mark.parametrize("key", [None, "", "not-a-fernet-key"])
def test_a_missing_or_bad_key_is_a_configuration_error_that_says_how_to_make_one(key: str | None):
    with pytest.raises(ConfigurationError, match=r"Fernet\.generate_key") as caught:
        TokenCipher(key)
    if key:
        assert key not in str(caught.value)


def test_tokens_encrypted_with_another_key_cannot_be_read(rig: Rig):
    tokens = rig.connect("c1")
    sealed = TokenCipher(rig.key).encrypt(tokens)
    with pytest.raises(ConfigurationError, match="reconnect"):
        TokenCipher(generate_key()).decrypt(sealed)


def test_a_token_close_to_expiry_is_refreshed_before_the_call_with_no_failed_call(qbo: EmulatorHandle, store):
    with ExitStack() as stack:
        rig = Rig(qbo, store, stack)
        rig.connect("c1")
        client = rig.client("c1")
        client.query("select * from Customer")
        qbo.advance_clock(3601)
        rig.clock.advance(3601 - 10 * 60)  # our clock: 10 minutes left, inside the 15-minute margin
        client.query("select * from Customer")
        qbo.advance_clock(3000)
        rig.clock.advance(3000)
        client.query("select * from Customer")
        assert status_count(qbo, 401) == 0
        assert endpoint_count(qbo, "token") == 3  # code exchange + two refreshes


def test_a_token_that_expires_mid_run_is_refreshed_after_one_401_and_the_call_succeeds(rig: Rig):
    rig.connect("c1")
    client = rig.client("c1")
    customer = client.create("Customer", {"DisplayName": "Ann"}, "op-1")
    rig.qbo.advance_clock(3601)  # only QuickBooks' clock moved: our token looks valid to us
    assert client.read("Customer", customer["Id"])["DisplayName"] == "Ann"
    assert status_count(rig.qbo, 401) == 1
    assert endpoint_count(rig.qbo, "token") == 2


@pytest.mark.parametrize(
    "emulator_config", [EmulatorConfig(refresh_grace_period=0, refresh_rotation_interval=0)]
)
def test_two_workers_racing_to_refresh_end_with_one_valid_token_pair(qbo: EmulatorHandle, store):
    """Every refresh rotates the refresh token and the old one dies at once: a double refresh would
    leave one worker holding a dead grant."""
    with ExitStack() as stack:
        rig = Rig(qbo, store, stack)
        rig.connect("c1")
        workers = [rig.client("c1", custodian=rig.new_custodian(), http=rig.new_http()) for _ in range(2)]
        for worker in workers:
            worker.query("select * from Customer")  # both hold the first access token now
        qbo.advance_clock(3601)
        start = threading.Barrier(len(workers))
        errors: list[BaseException] = []
        tokens: list[str] = []

        def run(worker_index: int) -> None:
            try:
                start.wait()
                workers[worker_index].query("select * from Customer")
                tokens.append(workers[worker_index].tokens.access_token("c1"))
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert endpoint_count(qbo, "token") == 2  # the code exchange and ONE refresh
        assert len(set(tokens)) == 1
        with store.session() as session:
            stored = session.get_connection("c1")
        assert stored is not None and stored.tokens_encrypted is not None
        final = TokenCipher(rig.key).decrypt(stored.tokens_encrypted)
        assert final.access_token.get_secret_value() == tokens[0]
        # QuickBooks accepts the stored refresh token: the pair is valid.
        assert rig.oauth.refresh(final.refresh_token).access_token.get_secret_value()


def test_after_unauthorized_reuses_a_token_another_worker_already_refreshed(rig: Rig):
    first = rig.connect("c1").access_token.get_secret_value()
    other = rig.new_custodian()
    refreshed = other.after_unauthorized("c1", first)
    assert refreshed != first
    assert rig.custodian.after_unauthorized("c1", first) == refreshed
    assert endpoint_count(rig.qbo, "token") == 2


def test_a_revoked_connection_is_parked_notified_and_reconnect_resumes_it(rig: Rig):
    notices: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        notices.append(request)
        return httpx.Response(204)

    hook = rig.stack.enter_context(httpx.Client(transport=httpx.MockTransport(receiver)))
    custodian = rig.new_custodian(notifier=WebhookNotifier(hook, "https://ops.example/hooks/qbo"))
    rig.connect("c1", custodian)
    client = rig.client("c1", custodian=custodian)
    created = client.create("Customer", {"DisplayName": "Kept"}, "op-kept")
    with rig.store.session() as session:
        link = session.create_link("c1", EntityType.CUSTOMER, "app-1", created["Id"])

    rig.qbo.disconnect()  # the user disconnects the app inside QuickBooks
    with pytest.raises(NeedsReauthorizationError):
        client.read("Customer", created["Id"])
    with rig.store.session() as session:
        parked = session.get_connection("c1")
    assert parked is not None and parked.status is ConnectionStatus.NEEDS_REAUTH
    assert len(notices) == 1
    notice = ReauthNotice.model_validate_json(notices[0].content)
    assert notice.connection_id == "c1" and notice.realm_id == rig.qbo.realm_id
    with pytest.raises(NeedsReauthorizationError):  # parked: no call goes out until reconnect
        client.read("Customer", created["Id"])
    assert len(notices) == 1

    rig.connect("c1", custodian)  # reconnect
    assert client.read("Customer", created["Id"])["DisplayName"] == "Kept"
    with rig.store.session() as session:
        resumed = session.get_connection("c1")
        assert session.get_link(link.id) == link
    assert resumed is not None and resumed.status is ConnectionStatus.CONNECTED


def test_reconnecting_a_connection_to_another_company_is_refused(rig: Rig):
    tokens = rig.connect("c1")
    with pytest.raises(ConfigurationError, match="another company"):
        rig.custodian.connect("c1", tokens.model_copy(update={"realm_id": "123"}))


def test_the_scheduled_refresh_renews_what_expires_within_the_margin(rig: Rig):
    rig.connect("soon")
    rig.clock.advance(20 * 60)
    rig.connect("later")
    rig.clock.advance(26 * 60)  # "soon" has 14 minutes left, "later" 34
    report = rig.custodian.refresh_due()
    assert report.refreshed == ("soon",)
    assert report.needs_reauth == () and report.failed == ()
    rig.qbo.disconnect()
    rig.clock.advance(60 * 60)
    report = rig.custodian.refresh_due()
    assert report.needs_reauth == ("later", "soon")


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(refresh_token_hard_ttl=10 * 86400.0)])
def test_a_near_hard_expiry_is_warned_about(rig: Rig, caplog: pytest.LogCaptureFixture):
    caplog.set_level("WARNING")
    rig.connect("c1")
    with rig.store.session() as session:
        connection = session.get_connection("c1")
    assert connection is not None
    warning = hard_expiry_warning(connection, rig.clock.now(), timedelta(days=30))
    assert warning is not None and "ledgersync connect --connection c1" in warning
    assert "hard expiry is in 9 days" in caplog.text or "hard expiry is in 10 days" in caplog.text
    assert hard_expiry_warning(connection, rig.clock.now(), timedelta(days=5)) is None
