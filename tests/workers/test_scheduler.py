"""The scheduler: due jobs (pure), ticks, and one active instance through a Redis lease."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from engine.clock import FakeClock
from engine.scheduler import Intervals, RedisLease, Scheduler, due

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def test_every_job_is_due_at_first_then_each_on_its_own_interval():
    intervals = Intervals()
    assert set(due(T0, {}, intervals)) == {
        "app_poll",
        "app_probe",
        "quickbooks_poll",
        "kick",
        "dispatch",
        "token_refresh",
        "sweep",
        "alerts",
    }
    last = dict.fromkeys(intervals.of(), T0)
    assert due(T0 + timedelta(milliseconds=500), last, intervals) == []
    assert due(T0 + timedelta(seconds=1), last, intervals) == ["app_probe"]
    assert set(due(T0 + timedelta(seconds=2), last, intervals)) == {"app_probe", "dispatch"}
    assert set(due(T0 + timedelta(seconds=5), last, intervals)) == {"app_poll", "app_probe", "dispatch"}
    assert set(due(T0 + timedelta(minutes=45), last, intervals)) == {
        "app_poll",
        "app_probe",
        "quickbooks_poll",
        "kick",
        "dispatch",
        "token_refresh",
        "alerts",
    }


def test_the_intervals_are_the_configured_schedule_and_default_to_its_defaults():
    from engine.jobs import intervals
    from engine.settings import Schedule

    assert Intervals() == intervals(Schedule())
    configured = intervals(Schedule(token_refresh_minutes=20))
    assert configured.token_refresh == timedelta(minutes=20)
    last = dict.fromkeys(configured.of(), T0)
    assert "token_refresh" in due(T0 + timedelta(minutes=20), last, configured)
    assert "token_refresh" not in due(T0 + timedelta(minutes=19), last, configured)


def test_a_tick_sends_what_is_due_and_remembers_it():
    clock = FakeClock(T0)
    sent: list[str] = []
    scheduler = Scheduler(sent.append, Intervals(), clock.now)
    scheduler.tick_once()
    assert len(sent) == 8
    assert scheduler.active
    clock.advance(6)
    assert scheduler.tick_once() == ["app_poll", "app_probe", "dispatch"]


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = redis.Redis(host="127.0.0.1", port=6379)
    yield c
    c.close()


def test_only_one_scheduler_holds_the_lease_and_another_takes_over_when_it_stops(client: redis.Redis):
    key = f"ledgersync-test:{secrets.token_hex(4)}"
    first, second = RedisLease(client, key, ttl_ms=5_000), RedisLease(client, key, ttl_ms=5_000)
    sent: list[str] = []
    one = Scheduler(lambda job: sent.append(f"one:{job}"), Intervals(), lambda: T0, first)
    two = Scheduler(lambda job: sent.append(f"two:{job}"), Intervals(), lambda: T0, second)
    one.tick_once()
    two.tick_once()
    assert sent and all(s.startswith("one:") for s in sent)
    assert one.active and not two.active  # a standby's listener asks for nothing either
    assert first.acquire()  # renews its own lease
    first.release()
    assert two.tick_once() and sent[-1].startswith("two:")
    second.release()
    assert client.get(key) is None
