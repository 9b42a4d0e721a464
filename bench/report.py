"""Markdown table of the latest results (for README's Benchmarks section): `python -m bench.report`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.env import ROOT
from bench.scenarios import NAMES


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("ms", "MiB"):
        return f"{value:.1f} {unit}"
    if unit == "µs":
        return f"{value:,.0f} µs"
    return f"{value:,.0f} {unit}"


def render(out: Path) -> str:
    lines = ["| scenario | figure | guestcard | floor | ratio | target | |", "|---|---|---|---|---|---|---|"]
    machine = None
    for name in NAMES:
        path = out / f"{name}.json"
        if not path.exists():
            continue
        report = json.loads(path.read_text())
        machine = machine or report["machine"]
        if report["status"] != "ok":
            lines.append(f"| {name} | {report['status']}: {report['reason']} | | | | | |")
            continue
        for metric in report["metrics"]:
            gc, fl, ra = metric["guestcard"], metric["floor"], metric["ratio"]
            mark = {True: "pass", False: "**miss**", None: ""}[metric["passed"]]
            ratio = f"{ra['median']:.2f}×" if ra else "-"
            lines.append(
                f"| {name} | {metric['name']} | {fmt(gc and gc['median'], metric['unit'])} | "
                f"{fmt(fl and fl['median'], metric['unit'])} | {ratio} | "
                f"{metric['target']} | {mark} |"
            )
    if machine:
        lines.insert(
            0,
            f"Machine: {machine['nproc']} cores, {machine['cpu']}, {machine['memory_gb']} GB; PostgreSQL "
            f"{machine['postgresql']} (shared_buffers {machine.get('shared_buffers', '?')}), Redis {machine['redis']} "
            f"({'embedded' if machine['embedded_servers'] else 'external'}); commit {machine['commit']}.\n",
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    print(render(parser.parse_args().out))


if __name__ == "__main__":
    main()
