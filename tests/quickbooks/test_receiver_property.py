"""Property: whatever a signed body holds, the receiver answers 200 and the inbox keeps it.

QuickBooks re-sends every delivery not answered 200 and holds later events behind it, so a signed
body that crashes the receiver would stall a company's whole feed. Bodies here: arbitrary bytes,
arbitrary JSON, nesting deeper than any parser's stack, integers longer than Python converts, and
CloudEvents and legacy notifications with any value of any type at any level.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectors.quickbooks.receiver import create_receiver_app
from connectors.quickbooks.webhooks import sign
from engine.clock import FakeClock
from engine.ports import StateStore
from engine.state import InboxEntry
from tests.support.stores import fresh_store

TOKEN = "property-verifier-token"
PATH = "/webhooks/quickbooks"
LIMIT = 16 * 1024  # small, so that some generated bodies are over it too

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 60_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"eventNotifications":[', "]}")]))
    core = draw(st.sampled_from(["0", '"x"', "{}", "[]", "null"]))
    closed = draw(st.booleans())  # an unterminated body is malformed too
    return (opener * depth + core + (closer * depth if closed else "")).encode()


@st.composite
def shaped_events(draw: st.DrawFn) -> bytes:
    """A CloudEvents array or a legacy body in which any field may hold any JSON value."""
    good = {
        "specversion": "1.0",
        "id": "evt-1",
        "type": "qbo.customer.updated.v1",
        "time": "2026-05-01T11:59:00.000Z",
        "intuitentityid": "1",
        "intuitaccountid": "111",
        "data": {},
    }
    dropped = draw(st.sets(st.sampled_from(sorted(good))))
    event: dict[str, Any] = {
        key: draw(st.just(value) | json_values) for key, value in good.items() if key not in dropped
    }
    entity = {
        key: draw(st.just(value) | json_values)
        for key, value in {"name": "Customer", "id": "1", "operation": "Update", "lastUpdated": "x"}.items()
    }
    legacy = {
        "eventNotifications": draw(
            st.just(
                [{"realmId": draw(st.just("111") | json_values), "dataChangeEvent": {"entities": [entity]}}]
            )
            | json_values
        )
    }
    payload = draw(st.sampled_from([[event], event, legacy, [event, draw(json_values)]]))
    return json.dumps(payload).encode()


bodies = (
    st.binary(max_size=4096)
    | json_values.map(lambda value: json.dumps(value).encode())
    | deeply_nested()
    | shaped_events()
    | st.integers(4_300, 20_000).map(lambda digits: b"[" + b"7" * digits + b"]")
    | st.binary(min_size=LIMIT + 1, max_size=LIMIT + 4096)
)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, StateStore]]:
    path: Path = tmp_path_factory.mktemp("receiver-property")
    with fresh_store("sqlite", path) as state:
        clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
        with TestClient(create_receiver_app(state, TOKEN, clock, max_body=LIMIT)) as client:
            yield client, state


def newest_entry(state: StateStore) -> InboxEntry:
    with state.session() as s:
        entries = s.inbox_pending(limit=1_000_000) + s.inbox_kept(limit=1)
    return max(entries, key=lambda entry: entry.id)


@settings(max_examples=300, deadline=None)
@given(body=bodies)
def test_any_signed_body_is_acknowledged_and_kept_pending_or_as_malformed(
    receiver: tuple[TestClient, StateStore], body: bytes
) -> None:
    client, state = receiver
    answer = client.post(PATH, content=body, headers={"intuit-signature": sign(body, TOKEN)})
    assert answer.status_code == 200, answer.text
    entry = newest_entry(state)
    if len(body) > LIMIT:
        assert entry.body == body[:LIMIT]
        assert entry.error is not None and "-byte limit" in entry.error
    else:
        assert entry.body == body
        # Pending for the worker, or kept for a person with its reason: never silently dropped.
        assert (not entry.processed and entry.error is None) or (
            entry.processed and entry.error is not None and entry.error.startswith("malformed: ")
        ), entry
