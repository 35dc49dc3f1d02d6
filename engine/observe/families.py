"""Metric families as plain values: what each source hands /metrics, which writes Prometheus' format.

Sources are functions called at scrape time, so a family always says what is true now: the store's
counts and ages, the counters every process adds to, the queue, the QuickBooks budget. A family with
no samples still appears (its HELP and TYPE), so a dashboard's queries name something that exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal, NamedTuple

from engine.observe.counters import Counters

PREFIX = "ledgersync_"


class Family(NamedTuple):
    #: Without the `ledgersync_` prefix (and, for counters, without `_total`).
    name: str
    help: str
    kind: Literal["gauge", "counter"]
    labels: tuple[str, ...]
    samples: list[tuple[tuple[str, ...], float]]


Source = Callable[[], Iterable[Family]]


def gauge(name: str, help_text: str, labels: tuple[str, ...] = ("connection",)) -> Family:
    return Family(name, help_text, "gauge", labels, [])


def counter_families(counters: Counters, declared: Mapping[str, tuple[str, tuple[str, ...]]]) -> list[Family]:
    """The declared counters (name -> help, labels), each with every label set counted so far."""
    values = counters.read()
    families = []
    for name, (help_text, labels) in declared.items():
        samples = [
            (tuple(dict(key).get(label, "") for label in labels), value)
            for key, value in sorted(values.get(name, {}).items())
        ]
        families.append(Family(name, help_text, "counter", labels, samples))
    return families
