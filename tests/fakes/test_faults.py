"""The fake's fault knobs: injected failures are deterministic, counted, and leave the right state."""

from __future__ import annotations

import pytest

from engine.errors import (
    ConfigurationError,
    LedgersyncError,
    NeedsReauthorizationError,
    RateLimitedError,
    RecordRejectedError,
    UpstreamUnavailableError,
)
from engine.fakes import FakeConnector
from engine.model import EntityType, Side
from engine.plan import Op, OpKind

from .conftest import op

CREATE = {"display_name": "Acme"}


def create_op(connector: FakeConnector, op_id: str = "op-1") -> Op:
    return op(connector, EntityType.CUSTOMER, OpKind.CREATE, dict(CREATE), op_id=op_id)


@pytest.mark.parametrize(
    "error",
    [
        RateLimitedError,
        UpstreamUnavailableError,
        NeedsReauthorizationError,
        RecordRejectedError,
        RateLimitedError("slow down", retry_after=7.0),
    ],
)
def test_fail_next_raises_before_applying_then_lets_writes_through(
    app: FakeConnector, error: LedgersyncError | type[LedgersyncError]
) -> None:
    app.fail_next(2, error)
    expected = error if isinstance(error, type) else type(error)
    for _ in range(2):
        with pytest.raises(expected):
            app.write(create_op(app))
    assert app.writes == 0
    assert app.all(EntityType.CUSTOMER) == {}
    result = app.write(create_op(app))
    assert app.writes == 1
    assert app.calls["write"] == 3
    assert list(app.all(EntityType.CUSTOMER)) == [result.external_id]


def test_an_injected_instance_is_raised_as_given(app: FakeConnector) -> None:
    app.fail_next(1, RateLimitedError("slow down", retry_after=7.0))
    with pytest.raises(RateLimitedError) as caught:
        app.write(create_op(app))
    assert caught.value.retry_after == 7.0


def test_faults_queue_in_order(app: FakeConnector) -> None:
    app.fail_next(1, RateLimitedError)
    app.fail_next(1, UpstreamUnavailableError)
    with pytest.raises(RateLimitedError):
        app.write(create_op(app))
    with pytest.raises(UpstreamUnavailableError):
        app.write(create_op(app))
    assert app.write(create_op(app)).external_id == "1"


def test_faults_can_target_reads(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, CREATE)
    app.fail_next(1, UpstreamUnavailableError, method="read_changes")
    app.fail_next(1, UpstreamUnavailableError, method="fetch")
    app.write(op(app, EntityType.CUSTOMER, OpKind.UPDATE, {"notes": "x"}, external_id=cid))
    with pytest.raises(UpstreamUnavailableError):
        app.read_changes(EntityType.CUSTOMER, None)
    with pytest.raises(UpstreamUnavailableError):
        app.fetch(EntityType.CUSTOMER, cid)
    assert app.fetch(EntityType.CUSTOMER, cid).version.seq == 1
    with pytest.raises(ValueError, match="faults go into"):
        app.fail_next(1, UpstreamUnavailableError, method="create")


def test_a_timeout_after_commit_is_replayed_not_duplicated(app: FakeConnector) -> None:
    app.fail_after_commit(1)
    with pytest.raises(UpstreamUnavailableError):
        app.write(create_op(app))
    assert app.writes == 1
    stored = list(app.all(EntityType.CUSTOMER))
    retried = app.write(create_op(app))
    assert [retried.external_id] == stored
    assert app.writes == 1
    assert app.calls["write"] == 2


def test_a_replayed_op_id_is_not_checked_again(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, CREATE)
    update = op(app, EntityType.CUSTOMER, OpKind.UPDATE, {"notes": "x"}, external_id=cid, expected_seq=0)
    first = app.write(update)
    app.edit(EntityType.CUSTOMER, cid, notes="user")
    assert app.write(update) == first, "the stored result comes back even though seq 0 is stale now"
    assert app.writes == 1


def test_a_revoked_connection_refuses_every_port_call_until_reconnected(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, CREATE)
    app.revoke()
    with pytest.raises(NeedsReauthorizationError):
        app.write(create_op(app))
    with pytest.raises(NeedsReauthorizationError):
        app.read_changes(EntityType.CUSTOMER, None)
    with pytest.raises(NeedsReauthorizationError):
        app.fetch(EntityType.CUSTOMER, cid)
    app.edit(EntityType.CUSTOMER, cid, notes="a person still works on their side")
    assert app.writes == 0
    app.reconnect()
    assert app.write(create_op(app)).external_id == "2"
    assert app.calls == {"write": 2, "read_changes": 1, "fetch": 1}


def test_reject_when_parks_matching_ops_only(app: FakeConnector) -> None:
    app.reject_when(lambda o: o.fields.get("display_name") == "Bad")
    bad = op(app, EntityType.CUSTOMER, OpKind.CREATE, {"display_name": "Bad"}, op_id="bad")
    with pytest.raises(RecordRejectedError) as caught:
        app.write(bad)
    assert caught.value.code == "injected"
    assert app.write(create_op(app)).fields["display_name"] == "Acme"
    app.reject_when(None)
    assert app.write(bad).fields["display_name"] == "Bad"


def test_an_op_for_the_other_side_is_a_wiring_error(app: FakeConnector, qbo: FakeConnector) -> None:
    with pytest.raises(ConfigurationError):
        qbo.write(create_op(app))
    assert (qbo.writes, qbo.all(EntityType.CUSTOMER)) == (0, {})
    assert app.side is Side.APP
