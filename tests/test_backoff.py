"""The one backoff function (engine.backoff): its bounds, its growth, and that both retry loops use it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.backoff import OP_BASE_SECONDS, OP_CAP_SECONDS, backoff_delay

attempts = st.integers(min_value=-3, max_value=10_000)
amounts = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
draws = st.floats(min_value=0, max_value=1, exclude_max=True)


def ceiling(attempt: int, base: float, cap: float) -> float:
    return min(cap, base * 2.0 ** min(max(attempt, 0), 62))


@given(attempt=attempts, base=amounts, cap=amounts, draw=draws)
def test_a_delay_lies_between_half_the_ceiling_and_the_ceiling_and_never_past_the_cap(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    delay = backoff_delay(attempt, base, cap, lambda: draw)
    top = ceiling(attempt, base, cap)
    assert top / 2 <= delay <= top <= cap


@given(attempt=st.integers(min_value=0, max_value=200), base=amounts, cap=amounts, draw=draws)
def test_a_later_attempt_never_waits_less_for_the_same_draw(
    attempt: int, base: float, cap: float, draw: float
) -> None:
    assert backoff_delay(attempt, base, cap, lambda: draw) <= backoff_delay(
        attempt + 1, base, cap, lambda: draw
    )


def test_the_ceiling_doubles_until_the_cap_and_the_draw_spreads_the_upper_half() -> None:
    assert [backoff_delay(n, 0.5, 4.0, lambda: 0.0) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert backoff_delay(3, 0.5, 4.0, lambda: 0.5) == 3.0
    assert backoff_delay(-1, 0.5, 4.0, lambda: 0.0) == 0.25  # a negative attempt counts as the first


def test_an_op_retry_waits_between_a_quarter_second_and_five_minutes() -> None:
    assert backoff_delay(0, OP_BASE_SECONDS, OP_CAP_SECONDS) <= 0.5
    assert all(150.0 <= backoff_delay(n, OP_BASE_SECONDS, OP_CAP_SECONDS) <= 300.0 for n in (10, 40, 10**6))
