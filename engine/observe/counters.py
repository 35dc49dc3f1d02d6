"""Counters every process adds to and /metrics reads: in memory (one process) or in Redis (many).

A counter is a name plus labels; `add` never raises (a counter lost to an unreachable Redis must not
fail the QuickBooks call it counts), `read` returns every labelled value of every counter.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

import redis

log = logging.getLogger(__name__)

#: Labels as sorted (name, value) pairs, so equal label sets are equal keys.
Labels = tuple[tuple[str, str], ...]


class Increment(NamedTuple):
    name: str
    labels: Mapping[str, str]
    amount: float = 1.0


def labels_of(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


class Counters(Protocol):
    def add(self, increments: Iterable[Increment]) -> None:
        """Add each amount to its counter (created at 0 the first time)."""
        ...

    def read(self) -> dict[str, dict[Labels, float]]:
        """Every counter's value per label set."""
        ...


class MemoryCounters:
    """The counters of one process (embedded mode, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {}

    def add(self, increments: Iterable[Increment]) -> None:
        with self._lock:
            for name, labels, amount in increments:
                values = self._values.setdefault(name, {})
                key = labels_of(labels)
                values[key] = values.get(key, 0.0) + amount

    def read(self) -> dict[str, dict[Labels, float]]:
        with self._lock:
            return {name: dict(values) for name, values in self._values.items()}


class RedisCounters:
    """Counters shared by every process through Redis: one hash per counter, a field per label set."""

    def __init__(self, client: redis.Redis, prefix: str = "ledgersync:counters") -> None:
        self._redis = client
        self._prefix = prefix

    def add(self, increments: Iterable[Increment]) -> None:
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for name, labels, amount in increments:
                    pipe.hincrbyfloat(f"{self._prefix}:{name}", json.dumps(labels_of(labels)), amount)
                    pipe.sadd(f"{self._prefix}:names", name)
                pipe.execute()
        except redis.RedisError as error:
            log.warning("counters not recorded: %s", error)

    def close(self) -> None:
        self._redis.close()

    def read(self) -> dict[str, dict[Labels, float]]:
        names = sorted(_text(n) for n in self._redis.smembers(f"{self._prefix}:names"))
        found: dict[str, dict[Labels, float]] = {}
        for name in names:
            raw = self._redis.hgetall(f"{self._prefix}:{name}")
            found[name] = {
                tuple((str(k), str(v)) for k, v in json.loads(_text(field))): float(_text(value))
                for field, value in raw.items()
            }
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
