"""The console's pages as a signed-in reviewer uses them (no browser): filters, bulk resolve, typed
values, parked records, connections and the banner, history search."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from engine.model import EntityType, Side
from engine.state import AuditAction, Connection, ConnectionStatus, ParkedRecord
from tests.web.conftest import API_TOKEN, World, sign_in
from tests.web.console_world import several_conflicts

C = EntityType.CUSTOMER
SCRIPT = {"Authorization": f"Bearer {API_TOKEN}"}


def token_of(client: TestClient, path: str = "/conflicts") -> str:
    found = re.search(r'name="token" value="([0-9a-f]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_the_list_filters_by_entity_field_age_and_connection(world: World, client: TestClient):
    several_conflicts(world)
    assert "6 conflicts waiting, on 5 records" in client.get("/conflicts").text
    assert "3 shown by the filters, on 3 records" in client.get("/conflicts?field=phone").text
    assert "2 shown by the filters, on 1 record" in client.get("/conflicts?entity=payment").text
    assert "none match the filters" in client.get("/conflicts?connection=elsewhere").text
    assert "none match the filters" in client.get("/conflicts?age=1").text
    world.loop.runner.clock.advance(2 * 86_400)  # type: ignore[attr-defined]
    sign_in(client)  # two days on, yesterday's session has ended
    assert "6 shown by the filters" in client.get("/conflicts?age=1").text
    assert "none match the filters" in client.get("/conflicts?age=7").text


def test_scripts_resolve_a_set_through_the_api(world: World, client: TestClient):
    phones = several_conflicts(world)
    ids = [c["id"] for c in client.get("/api/conflicts").json() if c["field"] == "phone"]
    with TestClient(world.app()) as script:
        done = script.post(
            "/api/conflicts/resolve", json={"ids": [*ids, 99], "take": "quickbooks"}, headers=SCRIPT
        )
    assert done.status_code == 200 and done.json()["resolved"] == 3
    assert done.json()["problems"] == ["#99: no conflict 99"]
    assert {world.conflict(i)["resolved_by"] for i in ids} == {"a script (API token)"}
    world.loop.runner.run_until_quiet()
    for app_id, phone in phones.items():
        assert world.loop.app.get(C, app_id)["phone"] == phone  # type: ignore[index]


def test_a_bulk_form_without_a_choice_or_ticks_says_what_is_missing(client: TestClient):
    token = token_of(client)
    none = client.post("/conflicts/bulk", data={"token": token, "take": "app"}, follow_redirects=False)
    assert "Tick%20the%20conflicts" in none.headers["location"]
    odd = client.post(
        "/conflicts/bulk", data={"token": token, "ids": "1", "take": "x"}, follow_redirects=False
    )
    assert "Choose%20which%20side" in odd.headers["location"]
    assert client.post("/conflicts/bulk", data={"ids": "1", "take": "app"}).status_code == 403


@pytest.mark.parametrize(
    ("typed", "stored", "error"),
    [
        ("123", "123", None),  # text stays text: a phone number is not a number
        ("", None, None),  # empty clears the field on both sides
        ("  spaced@example.com ", "  spaced@example.com ", None),
    ],
)
def test_a_typed_value_is_taken_as_the_fields_type(
    world: World, client: TestClient, typed: str, stored: object, error: str | None
):
    done = client.post(
        "/conflicts/1/resolve", data={"token": token_of(client), "value": typed}, follow_redirects=False
    )
    assert done.status_code == 303 and "error" not in done.headers["location"]
    assert world.conflict()["resolution"] == stored and world.conflict()["resolved_by"] == "maria"


def test_a_typed_value_the_field_cannot_hold_is_refused_and_kept_in_the_box(world: World, client: TestClient):
    several_conflicts(world)
    date_conflict = next(c["id"] for c in client.get("/api/conflicts").json() if c["field"] == "txn_date")
    page = f"/conflicts/{date_conflict}"
    done = client.post(
        f"{page}/resolve", data={"token": token_of(client), "value": "next Tuesday"}, follow_redirects=True
    )
    assert "Payment date: Type a date as YYYY-MM-DD" in done.text and 'value="next Tuesday"' in done.text
    assert world.conflict(date_conflict)["status"] == "open"
    client.post(f"{page}/resolve", data={"token": token_of(client), "value": "2026-11-05"})
    assert world.conflict(date_conflict)["resolution"] == "2026-11-05"


def park_unreadable(world: World) -> ParkedRecord:
    record = ParkedRecord(
        connection="default",
        side=Side.APP,
        entity=EntityType.INVOICE,
        external_id="17",
        seq=3,
        reason="row 2 of invoice_lines, column amount: 'abc' is not a number",
        parked_at=datetime(2026, 11, 1, tzinfo=UTC),
        checked_at=datetime(2026, 11, 1, 12, tzinfo=UTC),
    )
    with world.loop.store.session() as s:
        s.park_record(record)
    return record


def test_a_record_that_could_not_be_read_is_explained_retried_and_skipped(world: World, client: TestClient):
    park_unreadable(world)
    page = client.get("/parked").text
    assert "could not read this invoice from the app: row 2 of invoice_lines, column amount" in page
    assert "Fix the value named here in the app&#39;s database" in page
    token = token_of(client, "/parked")
    retried = client.post("/parked/retry", data={"token": token, "kind": "record", "id": "app:invoice:17"})
    assert "read again first thing" in retried.text
    with world.loop.store.session() as s:
        (still,) = s.parked_records("default")
    assert still.checked_at < datetime(2026, 1, 1, tzinfo=UTC)  # first in line at the next poll
    skipped = client.post("/parked/skip", data={"token": token, "kind": "record", "id": "app:invoice:17"})
    assert "Removed from the list" in skipped.text and "Nothing is parked." in skipped.text
    with world.loop.store.session() as s:
        assert s.parked_records("default") == []
        (line,) = [e for e in s.history("default") if e.action is AuditAction.SKIPPED]
    assert line.detail["by"] == "maria"
    gone = client.post("/parked/skip", data={"token": token, "kind": "record", "id": "app:invoice:17"})
    assert "no parked record app:invoice:17" in gone.text


def test_a_company_needing_reauthorization_shows_a_banner_on_every_page(world: World, client: TestClient):
    assert "must be reconnected" not in client.get("/conflicts").text
    with world.loop.store.session() as s:
        s.save_connection(Connection(id="default", realm_id="9130", status=ConnectionStatus.NEEDS_REAUTH))
    for path in ("/conflicts", "/conflicts/1", "/parked", "/connections", "/history"):
        assert "must be reconnected" in client.get(path).text, path
    connections = client.get("/connections").text
    assert "Needs reconnecting" in connections and "Ask an admin to reconnect" in connections


def test_history_is_found_by_either_sides_id_and_reads_as_a_timeline(world: World, client: TestClient):
    found = client.get("/history?entity=customer&id=1", follow_redirects=True)
    assert "History of customer" in found.text and "conflict on Email opened" in found.text
    assert "echo" not in found.text and "op_id" not in found.text
    missing = client.get("/history?entity=customer&id=404")
    assert "No customer with the id 404 in the app or in QuickBooks." in missing.text


def test_the_connections_page_says_how_often_tokens_are_renewed_as_configured(world: World):
    from engine.settings import Schedule

    world.schedule = Schedule(token_refresh_minutes=20)
    with TestClient(world.app()) as browser:
        page = sign_in(browser).get("/connections").text
    assert "renewed automatically every 20 minutes" in page


def test_a_conflict_is_resolved_under_its_own_connections_policy(world: World):
    """Tenants may override the policy: the console resolves each conflict under its connection's."""
    from pydantic import SecretStr

    from engine.settings import Web
    from engine.web import WebServices, create_web_app
    from policies import PolicySet
    from tests.web.conftest import SECRET

    asked: list[str] = []

    def policies(connection: str) -> PolicySet:
        asked.append(connection)
        return PolicySet.default()

    services = WebServices(
        store=world.loop.store,
        policy=PolicySet.default(),
        clock=world.loop.runner.clock,
        policies=policies,
        secret_key=SecretStr(SECRET),
        web=Web(api_token=SecretStr(API_TOKEN)),
    )
    with TestClient(create_web_app(services)) as script:
        done = script.post(
            "/api/conflicts/1/resolve",
            json={"take": "quickbooks", "by": "script"},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
    assert done.status_code == 200, done.text
    assert asked == [world.conflict()["connection"]]
    plain = WebServices(store=world.loop.store, policy=PolicySet.default(), clock=world.loop.runner.clock)
    assert plain.policy_of("tenant-acme") is plain.policy
