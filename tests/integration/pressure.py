"""How hard the runtime tests press on the system: read from LEDGERSYNC_RUNTIME_* variables, so that a
race a quiet machine hides can be brought out on demand rather than by luck. Unset, each knob is what
CI runs. A harsher run (README, "Run the tests"):

    LEDGERSYNC_RUNTIME_WORKERS=3 LEDGERSYNC_RUNTIME_THREADS=8 LEDGERSYNC_RUNTIME_KICK_SECONDS=0.3 \\
    LEDGERSYNC_RUNTIME_LATENCY=0.05 LEDGERSYNC_RUNTIME_BURN=1 LEDGERSYNC_RUNTIME_SEEDS=1,2,3 \\
    .venv/bin/python -m pytest tests/integration/test_runtime.py -k two_workers -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

PREFIX = "LEDGERSYNC_RUNTIME_"


@dataclass(frozen=True)
class Pressure:
    #: Worker processes in distributed mode, and threads in each.
    workers: int = 2
    threads: int = 4
    #: Seeds of the users' random edits; the distributed test runs once per seed.
    seeds: tuple[int, ...] = (6,)
    #: Seconds QuickBooks holds each customer request before serving it (a slow network).
    latency: float = 0.0
    #: How often the scheduler's kick sweeps every pending op and record (it races the messages).
    kick_seconds: float = 2.0
    #: Busy-looping processes started for the test's length: a machine whose cores are taken.
    burn: int = 0


def pressure_from(env: Mapping[str, str]) -> Pressure:
    """The knobs set in `env`; a bad value is an error naming the variable."""
    default = Pressure()

    def read(name: str, kind: type[int] | type[float], fallback: float) -> float:
        text = env.get(PREFIX + name)
        if text is None or not text.strip():
            return fallback
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise ValueError(f"{PREFIX}{name}={text!r}: expected {expected}") from None
        if value < 0 or (value == 0 and name in ("WORKERS", "THREADS", "KICK_SECONDS")):
            raise ValueError(f"{PREFIX}{name}={text!r}: out of range")
        return value

    seeds_text = env.get(PREFIX + "SEEDS", "").strip()
    try:
        seeds = tuple(int(s) for s in seeds_text.split(",") if s.strip()) or default.seeds
    except ValueError:
        raise ValueError(f"{PREFIX}SEEDS={seeds_text!r}: expected integers separated by commas") from None
    return Pressure(
        workers=int(read("WORKERS", int, default.workers)),
        threads=int(read("THREADS", int, default.threads)),
        seeds=seeds,
        latency=read("LATENCY", float, default.latency),
        kick_seconds=read("KICK_SECONDS", float, default.kick_seconds),
        burn=int(read("BURN", int, default.burn)),
    )


PRESSURE = pressure_from(os.environ)


@contextlib.contextmanager
def burning(processes: int) -> Iterator[None]:
    """`processes` busy loops for the block's length, each stopped by its own pid afterwards."""
    started = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
        yield
    finally:
        for process in started:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
