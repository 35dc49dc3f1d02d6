"""The per-realm rate budget, in memory and on a real Redis: per-minute, per-second, batch and in-flight
limits, the hold after a 429, and the monthly metered-read counters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis

from connectors.quickbooks.budget import (
    MemoryRateBudget,
    MeteredRead,
    RateBudget,
    RedisRateBudget,
)
from connectors.quickbooks.settings import QboSettings
from engine.errors import RateLimitedError

REALM = "9341455600000001"
#: How long a request counts in a (60 s) minute's window after its answer.
WINDOW = 60.0


class FakeTime:
    """A clock whose sleep moves it: waits cost nothing and are recorded."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def settings(**limits: float) -> QboSettings:
    return QboSettings(environment="sandbox", client_id="id", client_secret="secret", **limits)


BudgetFactory = Callable[..., RateBudget]


@pytest.fixture(params=["memory", "redis"])
def make_budget(request: pytest.FixtureRequest, redis_prefix: str) -> Iterator[BudgetFactory]:
    if request.param == "memory":
        yield MemoryRateBudget
        return
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        yield lambda s, **kw: RedisRateBudget(client, s, prefix=redis_prefix, **kw)
    finally:
        for key in client.scan_iter(f"{redis_prefix}:*"):
            client.delete(key)
        client.close()


def take(budget: RateBudget, count: int, *, batch: bool = False) -> None:
    for _ in range(count):
        with budget.acquire(REALM, batch=batch):
            pass


def test_requests_per_minute_are_capped_and_the_next_waits_for_the_window(make_budget: BudgetFactory):
    clock = FakeTime(1_800_000_000.0)
    budget = make_budget(settings(requests_per_minute=5), clock=clock, sleep=clock.sleep)
    take(budget, 5)
    assert clock.sleeps == []
    take(budget, 1)
    assert sum(clock.sleeps) == pytest.approx(WINDOW)
    # another realm has its own budget
    with budget.acquire("other-realm"):
        pass
    assert sum(clock.sleeps) == pytest.approx(WINDOW)


def test_a_request_counts_in_the_minute_until_a_minute_after_its_answer(make_budget: BudgetFactory):
    # QuickBooks counts a request from when it arrives, somewhere between our start and its answer:
    # counted from the start, a slow request's slot came back while QuickBooks still counted it.
    clock = FakeTime(1_800_000_000.0)
    budget = make_budget(
        settings(requests_per_minute=2, batch_requests_per_minute=1), clock=clock, sleep=clock.sleep
    )
    with budget.acquire(REALM, batch=True):
        clock.now += 10.0  # a slow answer
    take(budget, 1)
    assert clock.sleeps == []
    take(budget, 1)  # the per-minute window frees a minute after the batch's answer, not its start
    assert sum(clock.sleeps) == pytest.approx(60.0)


def test_a_shortened_minute_is_really_short(make_budget: BudgetFactory):
    budget = make_budget(settings(requests_per_minute=3, minute_seconds=0.2))
    started = time.monotonic()
    take(budget, 7)  # 3 + 3 + 1: two full windows waited out
    assert 0.35 <= time.monotonic() - started < 2.0


def test_batch_requests_have_their_own_per_minute_cap_and_count_toward_the_total(make_budget: BudgetFactory):
    clock = FakeTime(1_800_000_000.0)
    budget = make_budget(
        settings(requests_per_minute=10, batch_requests_per_minute=2), clock=clock, sleep=clock.sleep
    )
    take(budget, 2, batch=True)
    take(budget, 8)  # singles still go: 10 in all
    assert clock.sleeps == []
    take(budget, 1, batch=True)
    assert sum(clock.sleeps) == pytest.approx(WINDOW)


def test_spare_calls_leave_the_minutes_remaining_batches_their_requests(make_budget: BudgetFactory):
    clock = FakeTime(1_800_000_000.0)
    limits = settings(requests_per_minute=10, batch_requests_per_minute=3, requests_per_second=None)
    budget = make_budget(limits, clock=clock, sleep=clock.sleep)
    assert budget.room(REALM) == (3, 7, 0.0)
    for _ in range(7):  # R - B = 7 spare calls, then the 8th waits for the first to leave the window
        with budget.acquire(REALM, spare=True):
            pass
    assert clock.sleeps == []
    assert budget.room(REALM) == (3, 0, 0.0)
    take(budget, 3, batch=True)  # the three batches still go, at once
    assert clock.sleeps == []
    batches, spares, wait = budget.room(REALM)
    assert (batches, spares) == (0, 0) and wait == pytest.approx(WINDOW)
    clock.now += 30.0
    assert budget.room(REALM)[2] == pytest.approx(WINDOW - 30.0)
    with budget.acquire(REALM, spare=True):
        pass
    assert sum(clock.sleeps) == pytest.approx(WINDOW - 30.0)
    # a call that is not spare is not held back for the batches: all ten requests go
    other = "other-realm"
    for _ in range(10):
        with budget.acquire(other):
            pass
    assert sum(clock.sleeps) == pytest.approx(WINDOW - 30.0)
    assert budget.room(other)[:2] == (0, 0)


def test_room_reports_a_penalty_and_takes_nothing(make_budget: BudgetFactory):
    clock = FakeTime(1_800_000_000.0)
    budget = make_budget(
        settings(requests_per_minute=5, batch_requests_per_minute=2), clock=clock, sleep=clock.sleep
    )
    for _ in range(20):
        budget.room(REALM)
    assert budget.room(REALM) == (2, 3, 0.0)
    budget.penalize(REALM, 12.0)
    assert budget.room(REALM) == (0, 0, pytest.approx(12.0))


def test_no_more_than_ten_requests_start_in_any_second_of_the_minute(make_budget: BudgetFactory):
    clock = FakeTime(1_800_000_000.0)
    budget = make_budget(settings(minute_seconds=6.0), clock=clock, sleep=clock.sleep)
    take(budget, 10)
    assert clock.sleeps == []
    take(budget, 1)  # the 11th waits for the first to leave the (scaled) second: 6 s / 60
    assert sum(clock.sleeps) == pytest.approx(0.1)
    unlimited = make_budget(settings(requests_per_second=None), clock=clock, sleep=clock.sleep)
    take(unlimited, 30)
    assert sum(clock.sleeps) == pytest.approx(0.1)


def test_no_more_than_max_in_flight_calls_run_at_once(make_budget: BudgetFactory):
    budget = make_budget(settings(max_in_flight=3))
    lock = threading.Lock()
    running = 0
    peak = 0

    def call() -> None:
        nonlocal running, peak
        with budget.acquire(REALM):
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            with lock:
                running -= 1

    threads = [threading.Thread(target=call) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3


def test_a_penalty_after_429_holds_every_caller_of_the_realm(make_budget: BudgetFactory):
    clock = FakeTime(1_800_000_000.0)
    budget = make_budget(settings(), clock=clock, sleep=clock.sleep)
    budget.penalize(REALM, 60.0)
    budget.penalize(REALM, 5.0)  # a shorter penalty does not cut a longer one short
    take(budget, 1)
    assert sum(clock.sleeps) == pytest.approx(60.0)
    take(budget, 1)
    assert sum(clock.sleeps) == pytest.approx(60.0)


def test_metered_reads_are_counted_per_kind_and_month(make_budget: BudgetFactory):
    clock = FakeTime(datetime(2026, 11, 30, 23, 59, tzinfo=UTC).timestamp())
    budget = make_budget(settings(), clock=clock, sleep=clock.sleep)
    for kind in (MeteredRead.READ, MeteredRead.READ, MeteredRead.QUERY, MeteredRead.CDC, MeteredRead.BATCH):
        budget.record_metered(REALM, kind)
    november = {"read": 2, "query": 1, "cdc": 1, "batch": 1, "total": 5}
    assert budget.metered_reads(REALM) == november
    clock.now += 120  # December now: a fresh month
    budget.record_metered(REALM, MeteredRead.QUERY)
    assert budget.metered_reads(REALM)["total"] == 1
    assert budget.metered_reads(REALM, "2026-11") == november
    assert budget.metered_reads("other-realm")["total"] == 0


def test_redis_budget_is_shared_by_workers(redis_prefix: str):
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        clock = FakeTime(1_800_000_000.0)
        s = settings(requests_per_minute=4)
        first = RedisRateBudget(client, s, prefix=redis_prefix, clock=clock, sleep=clock.sleep)
        second = RedisRateBudget(client, s, prefix=redis_prefix, clock=clock, sleep=clock.sleep)
        take(first, 2)
        take(second, 2)
        assert clock.sleeps == []
        take(first, 1)
        assert sum(clock.sleeps) == pytest.approx(WINDOW)
        second.record_metered(REALM, MeteredRead.CDC)
        assert first.metered_reads(REALM)["cdc"] == 1
    finally:
        for key in client.scan_iter(f"{redis_prefix}:*"):
            client.delete(key)
        client.close()


def test_a_patient_budget_hands_a_long_wait_back_and_other_companies_go_on(
    make_budget: BudgetFactory,
) -> None:
    # A company in a 429 storm: its call raises at once (with how long to come back) instead of
    # holding a worker thread for the penalty; another company's call is served meanwhile.
    clock = FakeTime(1_000.0)
    budget = make_budget(settings(), clock=clock, sleep=clock.sleep, patience=2.0)
    budget.penalize(REALM, 60.0)
    with pytest.raises(RateLimitedError) as raised, budget.acquire(REALM):
        pass
    assert raised.value.retry_after is not None and 59.0 <= raised.value.retry_after <= 60.0
    assert clock.sleeps == []
    with budget.acquire("9341455600000002"):
        pass
    clock.sleep(58.5)  # a short wait is still waited out, within the patience
    with budget.acquire(REALM):
        pass
    assert clock.sleeps[-1] <= 2.0
