"""Figures of the chaos scenarios: printed, merged into bench/results/chaos.json (one
entry per scenario, the latest run's), and judged against their limits, so that a
regression fails `make chaos`."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "chaos.json"


@dataclass(frozen=True)
class Limit:
    """A figure's bound: at most `most` (counts of bad things, latencies), or at least
    `least` (counts of things that must have happened for the run to mean anything)."""

    most: float | None = None
    least: float | None = None

    def broken_by(self, value: float) -> bool:
        if self.most is not None and value > self.most:
            return True
        return self.least is not None and value < self.least

    def describe(self) -> str:
        if self.most is not None and self.least is not None:
            return f"{self.least:g}..{self.most:g}"
        return f"<= {self.most:g}" if self.most is not None else f">= {self.least:g}"


def record(
    scenario: str,
    figures: Mapping[str, float],
    limits: dict[str, Limit],
    *,
    started: float,
    notes: dict[str, Any] | None = None,
) -> list[str]:
    """Print and store one scenario's figures; returns the figures over their limits."""
    elapsed = time.monotonic() - started
    regressions = [
        f"{name} = {figures[name]:g} (limit {limit.describe()})"
        for name, limit in limits.items()
        if name not in figures or limit.broken_by(figures[name])
    ]
    entry = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(elapsed, 1),
        "figures": dict(figures),
        "limits": {name: limit.describe() for name, limit in limits.items()},
        "passed": not regressions,
        "load": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        **({"notes": notes} if notes else {}),
    }
    print(f"\nchaos {scenario} ({elapsed:.1f} s):")
    for name, value in figures.items():
        limit = limits.get(name)
        mark = "" if limit is None else f"   [limit {limit.describe()}]"
        print(f"  {name}: {value:g}{mark}")
    _merge(scenario, entry)
    return regressions


def _merge(scenario: str, entry: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(RESULTS.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        data[scenario] = entry
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, RESULTS)


class Budget:
    """A scenario's time bound: `left()` seconds remain of `seconds`; loops stop early
    rather than overrun (and say so in the figures)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def over(self) -> bool:
        return self.left() <= 0
