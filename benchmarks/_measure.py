"""Timing, peak memory and the ratio table shared by the benchmarks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import psutil


class PeakRSS:
    """Highest resident memory of this process while the block runs, sampled every few milliseconds.

    ``ru_maxrss`` only gives the peak of the whole process so far, so it cannot tell the variants
    of one run apart.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def mib(self) -> float:
        return self.peak / 2**20


@dataclass
class Row:
    variant: str
    units: int
    seconds: float
    peak_mib: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Table:
    title: str
    unit: str  # "tok/s", "texts/s", "cells/min"
    rows: list[Row] = field(default_factory=list)
    per: float = 1.0  # seconds the unit's rate is per: 60 for "cells/min"

    def measure(self, variant: str, work: Callable[[], int], note: str = "") -> Row:
        """Run ``work`` (which returns the units it produced) once, timed, with its peak memory."""
        with PeakRSS() as peak:
            started = time.perf_counter()
            units = work()
            seconds = time.perf_counter() - started
        row = Row(variant, units, seconds, peak.mib, note)
        self.rows.append(row)
        print(f"  {variant}: {units} in {seconds:.2f} s = {row.rate * self.per:.1f} {self.unit}", flush=True)
        return row

    def render(self, baseline: str) -> str:
        """Markdown table; each rate is also given as a ratio to the ``baseline`` row's rate."""
        base = next(r for r in self.rows if r.variant == baseline)
        lines = [
            f"### {self.title}",
            "",
            f"| variant | {self.unit} | ratio to {baseline} | seconds | peak RSS MiB | note |",
            "|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.variant} | {_rate(row.rate * self.per)} | {row.rate / base.rate:.2f}x | {row.seconds:.2f} | {row.peak_mib:,.0f} | {row.note} |"
            )
        return "\n".join(lines)


def _rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"  # a few cells per second still shows its digits


def emit(text: str, out: str | None) -> None:
    """Print the report, and write it to ``out`` too when given."""
    print("\n" + text)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
