"""`make bench` (quick) / `make bench BENCH=full`: every scenario, each beside its floor, in one run."""

from __future__ import annotations

import argparse
import asyncio
import time
import traceback
from pathlib import Path

from bench import scenarios
from bench.env import ROOT, machine_info, start_servers
from bench.harness import Report, console, print_report
from bench.scenarios.base import Context


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--only", action="append", choices=scenarios.NAMES, help="run only NAME (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--rounds", type=int, help="override the mode's number of rounds")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the read dataset even if it matches")
    return parser.parse_args()


async def run(args: argparse.Namespace) -> list[Report]:
    servers = await asyncio.to_thread(start_servers)
    try:
        machine = await machine_info(servers)
        console.print(
            f"bench {args.mode} on {machine['nproc']} × {machine['cpu']}, PostgreSQL {machine['postgresql']} "
            f"(shared_buffers {machine['shared_buffers']}), "
            f"Redis {machine['redis']} ({'embedded' if machine['embedded_servers'] else 'DATABASE_URL'})"
        )
        context = Context(mode=args.mode, servers=servers, rounds=args.rounds, regenerate=args.regenerate)
        reports = []
        for name in args.only or scenarios.NAMES:
            module = scenarios.load(name)
            report = Report(name=name, mode=args.mode, title=module.TITLE, machine=machine)
            started = time.perf_counter()
            try:
                await module.run(context, report)
            except Exception as error:  # a broken scenario is reported; the others still run
                report.status, report.reason = "error", f"{type(error).__name__}: {error}"
                report.details["traceback"] = traceback.format_exc()
                console.print(report.details["traceback"])
            report.seconds = round(time.perf_counter() - started, 1)
            report.write(args.out)
            print_report(report)
            reports.append(report)
        return reports
    finally:
        await asyncio.to_thread(servers.stop)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    reports = asyncio.run(run(args))
    misses = sum(1 for report in reports for metric in report.metrics if metric.passed is False)
    skipped = [report.name for report in reports if report.status != "ok"]
    console.print(
        f"\nbench {args.mode}: {len(reports)} scenarios in {time.perf_counter() - started:.0f} s, "
        f"{misses} target(s) missed{', not run: ' + ', '.join(skipped) if skipped else ''}; "
        f"results in {args.out}"
    )


if __name__ == "__main__":
    main()
