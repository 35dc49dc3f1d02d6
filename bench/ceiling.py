"""QuickBooks' theoretical ceiling for creating records, from its limits. Pure.

Per realm and per (sliding) minute QuickBooks admits R = 500 requests, of which at most B = 40 may be
`/batch` requests of at most k = 30 items each, with at most 10 requests in flight. A create is either
one single write (one request, one record) or one item of a batch (1/k of a request). Let b be the
batch requests and s the single writes sent per minute; the records created per minute are

    r = k*b + s,   subject to   b <= B,   b + s <= R,   s >= u*r

where u is the share of the mix that must go as single writes. Maximising: with every entity batchable
(u = 0: QuickBooks' /batch takes customers, items, invoices and payments alike; the dependencies only
force customers and items, then invoices, then payments into successive batches, which costs round
trips, not requests), b = B and s = R - B:

    r_max = k*B + (R - B) = 30*40 + 460 = 1,660 records per minute, for any mix large enough.

If a share u must go singly (a strategy that batches only customers and items has u = the invoices'
and payments' share), the bound is r_max = min(R / (u + (1-u)/k), B*k / (1-u)) once u*1660 > 460;
for the benchmark's mix (30% customers, 10% items, 40% invoices, 20% payments, u = 0.6) that is
815/min. A loop of single writes only (u = 1, the naive python-quickbooks loop) tops out at R = 500.

The in-flight limit binds only when requests are slow: 10 in flight sustain R requests a minute while
the mean latency stays under 10 * minute / R (1.2 s with a real minute, 120 ms with the benchmark's
6-second one); the emulator answers well inside that, so it is left out of r_max.

The limits are a sliding window from an idle start: the first minute's 500 requests are all available
at once, so a run lasting under a few minutes is flattered (320 records fit in one window). Figures
from the small size are therefore indicative; the full size runs long enough to be rate-bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 500
    batch_requests_per_minute: int = 40
    batch_max_items: int = 30
    max_in_flight: int = 10


def records_per_minute(limits: Limits, single_share: float = 0.0) -> float:
    """The most records a minute can create when `single_share` of them must be single writes."""
    r, b, k = limits.requests_per_minute, limits.batch_requests_per_minute, limits.batch_max_items
    if not 0.0 <= single_share <= 1.0:
        raise ValueError(f"single_share is a share, between 0 and 1, not {single_share}")
    best = k * b + (r - b)
    if single_share * best <= r - b:
        return float(best)
    if single_share == 1.0:
        return float(r)
    return min(r / (single_share + (1 - single_share) / k), b * k / (1 - single_share))


def latency_bound(limits: Limits, minute_seconds: float) -> float:
    """The mean request latency (seconds) above which the in-flight limit, not R, caps a minute."""
    return limits.max_in_flight * minute_seconds / limits.requests_per_minute
