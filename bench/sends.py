"""Worker CPU per outbound message: the outbox's send path alone, in a real worker process.

    .venv/bin/python -m bench.sends --db guestcard_bench_intake [--groups 300] [--rounds 3]

Reuses a database the intake scenario left (its leads, contacts, users and sent messages): each group clones
one lead's outbound messages (a renter reply and the staff notification emails of that lead) as new `queued`
rows, in one transaction per group, and enqueues their send jobs after commit the way the API does
(`outbox.enqueue_send` + `shared.queue.send_jobs`), 16 groups in flight (or paced: `--rate N` groups/s).
One `guestcard worker` process
(the `record` provider) sends them. Reported per round: the worker's CPU ms per message (its CPU over the
window minus its idle rate before the load), and commit → `sent` latency p50 / p99 / max.
Run it from each checkout (A/B): it only uses what both sides have.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
IN_FLIGHT = 16

COLUMNS = (
    "org_id, lead_id, contact_id, user_id, channel, direction, kind, template, rule, to_address, subject, body, "
    "headers, warning, created_by_id"
)


def start(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **options)


def cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def groups_of(conn: asyncpg.Connection, count: int) -> list[list[uuid.UUID]]:
    rows = await conn.fetch(
        "SELECT lead_id, array_agg(id ORDER BY user_id NULLS FIRST, id) AS ids FROM outbound_messages "
        "WHERE lead_id IS NOT NULL AND idempotency_key NOT LIKE 'bench-sends:%' GROUP BY lead_id "
        "HAVING count(*) FILTER (WHERE user_id IS NULL) = 1 LIMIT $1",
        count,
    )
    return [list(row["ids"]) for row in rows]


async def one_round(args: argparse.Namespace, dsn: str, app_url: str, redis_url: str, label: str) -> dict[str, Any]:
    from sqlalchemy import text

    from services.api.messaging.outbox import enqueue_send
    from shared.db import make_engine, make_sessionmaker
    from shared.queue import create_queue, send_jobs, take_pending_jobs

    queue_name = f"guestcard:bench-sends:{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": app_url,
        "REDIS_URL": redis_url,
        "GUESTCARD_QUEUE": queue_name,
        "GUESTCARD_API_URL": "http://127.0.0.1:9",
        "GUESTCARD_SERVICE_TOKEN": "bench-sends-token-0123456789abcdef",
        "GUESTCARD_LOG_LEVEL": "WARNING",
    }
    worker = start([sys.executable, "-m", "services.cli", "worker"], env=env, cwd=ROOT, start_new_session=True)
    conn = await asyncpg.connect(dsn)
    # the intake scenario's floor leaves `received` inbound rows the worker's sweep would chew on meanwhile
    await conn.execute("UPDATE inbound_messages SET status = 'ignored' WHERE status = 'received'")
    engine = make_engine(app_url, pool_size=IN_FLIGHT)
    sessionmaker = make_sessionmaker(engine)
    queue = await create_queue(redis_url)
    try:
        process = psutil.Process(worker.pid)
        await asyncio.sleep(5)  # imports, startup crons (the sweep may send what an earlier run left queued)
        idle_rate = float("inf")
        for _ in range(15):  # until the worker is idle: its rate then is subtracted from the window
            idle_from, idle_at = cpu(process), time.monotonic()
            await asyncio.sleep(2)
            idle_rate = (cpu(process) - idle_from) / (time.monotonic() - idle_at)
            if idle_rate < 0.05:
                break
        groups = await groups_of(conn, args.groups)
        tag = uuid.uuid4().hex[:8]
        committed: dict[uuid.UUID, float] = {}
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def send_group(index: int, ids: list[uuid.UUID]) -> None:
            if args.rate:  # paced: commit → sent latency without a backlog of our own making
                await asyncio.sleep(max(0.0, started + index / args.rate - time.monotonic()))
            async with gate:
                new_ids = [uuid.uuid4() for _ in ids]
                async with sessionmaker() as session:
                    async with session.begin():
                        for new_id, old_id in zip(new_ids, ids, strict=True):
                            await session.execute(
                                text(
                                    f"INSERT INTO outbound_messages (id, idempotency_key, status, attempts, queued_at, "
                                    f"created_at, updated_at, {COLUMNS}) SELECT :new, :key, 'queued', 0, now(), now(), "
                                    f"now(), {COLUMNS} FROM outbound_messages WHERE id = :old"
                                ),
                                {"new": new_id, "key": f"bench-sends:{tag}:{new_id}", "old": old_id},
                            )
                            enqueue_send(session, new_id)
                    await send_jobs(queue, take_pending_jobs(session), queue_name)
                at = time.time()
                for new_id in new_ids:
                    committed[new_id] = at

        spy = None
        if args.profile:
            spy = start(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker.pid), "--format", "raw",
                 "--rate", "200", "--output", f"{args.profile}-{label}.txt", "--nonblocking", "--gil"],
            )  # fmt: skip
        started, cpu_from = time.monotonic(), cpu(process)
        await asyncio.gather(*(send_group(i, ids) for i, ids in enumerate(groups)))
        total = sum(len(ids) for ids in groups)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = await conn.fetchval(
                "SELECT count(*) FROM outbound_messages WHERE idempotency_key LIKE $1 "
                "AND status IN ('queued', 'sending')",
                f"bench-sends:{tag}:%",
            )
            if left == 0:
                break
            await asyncio.sleep(0.05)
        wall = time.monotonic() - started
        used = cpu(process) - cpu_from - idle_rate * wall
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
        rows = await conn.fetch(
            "SELECT id, status, extract(epoch FROM sent_at) AS sent FROM outbound_messages "
            "WHERE idempotency_key LIKE $1",
            f"bench-sends:{tag}:%",
        )
        latencies = sorted(float(row["sent"]) - committed[row["id"]] for row in rows if row["sent"] is not None)
        statuses: dict[str, int] = {}
        for row in rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        result = {
            "label": label,
            "messages": total,
            "groups": len(groups),
            "worker_cpu_ms_per_message": round(used * 1000 / total, 3),
            "idle_cpu_ms_per_s": round(idle_rate * 1000, 2),
            "wall_s": round(wall, 2),
            "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
            "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else None,
            "latency_max_ms": round(1000 * latencies[-1], 1) if latencies else None,
            "statuses": statuses,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        return result
    finally:
        await conn.close()
        await engine.dispose()
        await queue.aclose()
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sends", description=__doc__)
    parser.add_argument("--db", default="guestcard_bench_intake")
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=float, help="groups (transactions) per second; default: as fast as they go")
    parser.add_argument("--profile", help="py-spy the worker during the load: PREFIX-<round>.txt, collapsed stacks")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    app_url = base.rsplit("/", 1)[0] + "/" + args.db
    dsn = app_url.replace("postgresql+asyncpg://", "postgresql://")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3")
    results = []
    for index in range(args.rounds):
        result = await one_round(args, dsn, app_url, redis_url, f"r{index}")
        print(result, flush=True)
        results.append(result)
    values = [r["worker_cpu_ms_per_message"] for r in results]
    print(f"worker CPU ms/message: median {statistics.median(values):.3f} over {values}")


if __name__ == "__main__":
    asyncio.run(main())
