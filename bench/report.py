"""Figures and the table they print as: each measured value beside the bar issue 11 sets for it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Figure:
    """One measured value. `bar` says what is required ("<= 2 ms"); `passed` is None without a bar."""

    group: str
    name: str
    value: float | None
    unit: str
    bar: str = ""
    passed: bool | None = None
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if self.unit == "%":
            return f"{self.value:.0f} %"
        magnitude = abs(self.value)
        text = f"{self.value:.3g}" if magnitude < 100 else f"{self.value:,.0f}"
        return f"{text} {self.unit}".strip()


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def figure(
    group: str,
    name: str,
    value: float | None,
    unit: str,
    bar: str = "",
    check: Callable[[float], bool] | None = None,
    note: str = "",
) -> Figure:
    passed = None if check is None or value is None else bool(check(value))
    return Figure(group, name, value, unit, bar, passed, note)


def table(figures: Iterable[Figure]) -> str:
    rows = [("", "figure", "value", "bar", ""), *_rows(figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) if i != 2 else row[i].rjust(widths[i]) for i in range(4)]
        lines.append("  ".join(cells) + ("  " + row[4] if row[4] else ""))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _rows(figures: Iterable[Figure]) -> list[tuple[str, str, str, str, str]]:
    out = []
    for f in figures:
        verdict = {True: "PASS", False: "FAIL", None: ""}[f.passed]
        tail = " ".join(part for part in (verdict, f.note and f"({f.note})") if part)
        out.append((f.group, f.name, f.shown(), f.bar, tail))
    return out


def as_json(figures: Iterable[Figure]) -> str:
    return json.dumps([asdict(f) for f in figures], indent=2)


def summary(figures: list[Figure]) -> str:
    judged = [f for f in figures if f.passed is not None]
    failed = sum(1 for f in judged if not f.passed)
    return f"{len(judged) - failed} of {len(judged)} bars met, {failed} not met"
