"""Rounds, statistics, the printed table and the JSON result of one scenario.

Every figure is taken over several rounds; a round measures guestcard and its floor back to back, so the
ratio of one round compares two numbers taken under the same machine weather. A missed target is printed
and recorded, never turned into an exit status: this is a tool, not a test.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank-interpolated percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


@dataclass
class Stat:
    """A figure over rounds: median and spread (interquartile range, min, max)."""

    median: float
    p25: float
    p75: float
    min: float
    max: float
    rounds: list[float]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        values = [float(v) for v in values]
        if not values:
            return cls(0.0, 0.0, 0.0, 0.0, 0.0, [])
        return cls(
            median=statistics.median(values),
            p25=percentile(values, 25),
            p75=percentile(values, 75),
            min=min(values),
            max=max(values),
            rounds=values,
        )

    def spread(self) -> str:
        return f"±{(self.p75 - self.p25) / 2:.3g}" if len(self.rounds) > 1 else ""


@dataclass
class Metric:
    """One line of the table: guestcard's figure, the floor's, their ratio, and the target it is held to.

    `ratio` is the median of per-round ratios (guestcard / floor), so noise between rounds cancels.
    `passed` is None when no target applies to the line.
    """

    name: str
    unit: str
    guestcard: Stat | None
    floor: Stat | None = None
    ratio: Stat | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Report:
    name: str
    mode: str
    title: str
    status: str = "ok"  # ok | skipped | error
    reason: str = ""
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        return metric

    def skip(self, reason: str) -> Report:
        self.status, self.reason = "skipped", reason
        return self

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Stat:
    return Stat.of([n / d for n, d in zip(numerators, denominators, strict=True) if d])


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if unit == "µs":
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def print_report(report: Report) -> None:
    header = f"[bold]{report.title}[/bold] ({report.name}, {report.mode})"
    if report.status != "ok":
        console.print(f"{header}: [yellow]{report.status}: {report.reason}[/yellow]")
        return
    table = Table(title=header, title_justify="left")
    for column in ("figure", "guestcard", "floor", "ratio", "target", ""):
        table.add_column(column, justify="left" if column in ("figure", "target") else "right")
    for metric in report.metrics:
        gc, fl, ra = metric.guestcard, metric.floor, metric.ratio
        mark = {True: "[green]pass[/green]", False: "[red]miss[/red]", None: ""}[metric.passed]
        table.add_row(
            f"{metric.name} ({metric.unit})" if metric.unit else metric.name,
            f"{fmt(gc.median, metric.unit)} {gc.spread()}" if gc else "-",
            f"{fmt(fl.median, metric.unit)} {fl.spread()}" if fl else "-",
            f"{ra.median:.2f}× [{ra.min:.2f}-{ra.max:.2f}]" if ra else "-",
            metric.target,
            mark,
        )
    console.print(table)
    for metric in report.metrics:
        if metric.note:
            console.print(f"  {metric.name}: {metric.note}")
    if report.reason:
        console.print(f"  [yellow]{report.reason}[/yellow]")
