"""The scheduler's jobs with several connections: each per-connection job goes to every connection
that is connected now (one revoked is skipped, the rest go on), token refresh and alerts go once, and
one connection's failed send neither stops the others nor is forgotten (raised for the next tick)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from engine.jobs import Jobs
from engine.model import EntityType


class Sent:
    """Stands in for an actor: keeps the messages sent to it, and fails for the connections told."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.messages: list[tuple[object, ...]] = []
        self.delays: list[int] = []
        self.failing = failing

    def send(self, *args: object) -> None:
        if args and args[0] in self.failing:
            raise ConnectionError("broker down for this one")
        self.messages.append(args)

    def send_with_options(self, args: tuple[object, ...], delay: int = 0) -> None:
        self.send(*args)
        self.delays.append(delay)


def actors(**failing: frozenset[str]) -> Any:
    names = ("poll", "scheduled_poll", "poll_side", "kick", "dispatch", "sweep", "ingest")
    names += ("refresh_tokens", "alerts")
    return SimpleNamespace(**{name: Sent(failing.get(name, frozenset())) for name in names})


def test_per_connection_jobs_reach_every_active_connection_and_only_those() -> None:
    active = ["tenant-acme", "tenant-initech"]  # tenant-globex is revoked: not listed as active
    sent = actors()
    jobs = Jobs(sent, lambda: active)
    for job in ("kick", "dispatch", "sweep", "quickbooks_poll", "token_refresh", "alerts"):
        jobs(job)
    assert sent.kick.messages == [("tenant-acme",), ("tenant-initech",)]
    assert sent.sweep.messages == sent.kick.messages
    # The CDC poll: one message (one metered call) per company, not one per entity, on the scheduler's
    # rounds' own queue (poll_side is declared on engine.broker.SCHEDULED).
    assert sent.poll_side.messages == [("tenant-acme", "quickbooks"), ("tenant-initech", "quickbooks")]
    assert sent.poll.messages == []
    assert sent.refresh_tokens.messages == [()] and sent.alerts.messages == [()]
    assert sent.dispatch.messages == [("",)]  # every connection's resolved conflicts, in one query
    active.append("tenant-globex")  # reconnected: served from the next job on
    jobs("kick")
    assert sent.kick.messages[-1] == ("tenant-globex",)


def test_one_probe_of_the_shared_app_database_polls_every_connection() -> None:
    sent = actors()
    probes: list[int] = []

    def probe() -> dict[EntityType, frozenset[str] | None]:
        probes.append(1)
        return {EntityType.CUSTOMER: None}

    Jobs(sent, lambda: ["a", "b"], probe=probe)("app_probe")
    assert probes == [1] and sent.poll.messages == [("a", "app", "customer"), ("b", "app", "customer")]


def test_a_tenants_change_polls_its_own_connection_only() -> None:
    """With 200 tenants in one database, one tenant's edit must not make 200 connections poll."""
    sent = actors()
    moved = {EntityType.CUSTOMER: frozenset({"acme"}), EntityType.ITEM: None}
    jobs = Jobs(
        sent, lambda: ["tenant-acme", "tenant-globex"], probe=lambda: moved, tenant_of=lambda c: c[7:]
    )
    jobs("app_probe")
    assert sent.poll.messages == [
        ("tenant-acme", "app", "customer"),
        ("tenant-acme", "app", "item"),
        ("tenant-globex", "app", "item"),  # anyone's (the probe could not tell whose)
    ]


def test_after_the_first_sending_a_job_is_spread_over_its_interval() -> None:
    """200 companies' polls sent in one tick were 800 messages at once, an edit's queued behind them."""
    sent = actors()
    connections = [f"tenant-{n}" for n in range(4)]
    jobs = Jobs(sent, lambda: connections, spread={"kick": timedelta(seconds=60)})
    jobs("kick")
    assert len(sent.kick.messages) == 4 and sent.kick.delays == []  # a start catches up at once
    jobs("kick")
    assert sent.kick.messages[4:] == [(c,) for c in connections]
    assert sent.kick.delays == [15_000, 30_000, 45_000]  # the first now, the others spread


def test_the_scheduled_inbox_check_asks_a_read_only_of_companies_with_unread_webhooks() -> None:
    sent = actors()
    jobs = Jobs(sent, lambda: ["a", "b", "c"], unread=lambda: ["b"])
    jobs("app_poll")
    assert {m[0] for m in sent.scheduled_poll.messages} == {"a", "b", "c"}  # the app of every one
    assert sent.ingest.messages == [("b",)]


def test_a_failed_send_for_one_connection_leaves_the_others_served_and_is_raised() -> None:
    sent = actors(kick=frozenset({"a"}))
    with pytest.raises(ConnectionError):
        Jobs(sent, lambda: ["a", "b"])("kick")
    assert sent.kick.messages == [("b",)]
