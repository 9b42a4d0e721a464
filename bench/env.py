"""Where the benchmark runs: servers, databases, the guestcard processes, what the machine is.

DATABASE_URL / REDIS_URL are used when set; otherwise embedded servers under `.data/bench`. The read
dataset lives in its own database (`guestcard_bench`); write scenarios get a fresh database per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data" / "bench"
# GUESTCARD_BENCH_DB keeps two checkouts sharing one server from rebuilding each other's dataset
BENCH_DB = os.environ.get("GUESTCARD_BENCH_DB", "guestcard_bench")
SERVICE_TOKEN = "bench-service-token"  # a throwaway secret of a local benchmark


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@dataclass
class Servers:
    """The PostgreSQL server (any database on it) and Redis the run uses."""

    server_url: str
    redis_url: str
    _embedded: Any = None

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()

    def url(self, database: str) -> str:
        return with_database(self.server_url, database)


def start_servers() -> Servers:
    from shared.embedded import ensure_servers

    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    started = ensure_servers(DATA_DIR, database_url, redis_url, database=BENCH_DB)
    assert started.database_url and started.redis_url
    if database_url is None and asyncio.run(_size_shared_buffers(started.database_url)):
        started.stop()  # shared_buffers applies from the next start
        started = ensure_servers(DATA_DIR, database_url, redis_url, database=BENCH_DB)
        assert started.database_url and started.redis_url
    return Servers(server_url=started.database_url, redis_url=started.redis_url, _embedded=started)


def shared_buffers_mb() -> int:
    """The embedded bench server's shared_buffers: a quarter of the memory (PostgreSQL's usual advice), at most
    2 GiB, at least the default 128 MiB. At 1 M leads the tables and indexes a read touches are ~1.2 GB: with
    the default 128 MiB, a raw statement run right after the same input over HTTP found its pages in shared
    buffers where the HTTP request had read them from the OS cache (docs/benchmarks.md, session 16). A server
    given by DATABASE_URL is measured as it is configured. GUESTCARD_BENCH_SHARED_BUFFERS_MB sets another size."""
    import psutil

    if os.environ.get("GUESTCARD_BENCH_SHARED_BUFFERS_MB"):
        return int(os.environ["GUESTCARD_BENCH_SHARED_BUFFERS_MB"])
    return max(128, min(2048, psutil.virtual_memory().total // 4 // 2**20))


async def _size_shared_buffers(url: str) -> bool:
    """Set the embedded server's shared_buffers (ALTER SYSTEM); True when a restart must apply it."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        wanted = f"{shared_buffers_mb()}MB"
        current = await connection.fetchval("SELECT pg_size_bytes(current_setting('shared_buffers')) / 1048576")
        if f"{current}MB" == wanted:
            return False
        await connection.execute(f"ALTER SYSTEM SET shared_buffers = '{wanted}'")
        return True
    finally:
        await connection.close()


async def create_database(servers: Servers, name: str, recreate: bool = False) -> str:
    """Create `name` on the server if missing (dropped first with `recreate`); return its URL, migrated."""
    if not name.replace("_", "").isalnum():
        raise ValueError(name)
    connection = await asyncpg.connect(asyncpg_dsn(servers.url("postgres")))
    try:
        if recreate:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = servers.url(name)
    from shared.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
    return url


async def drop_database(servers: Servers, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(servers.url("postgres")))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def _host_info() -> dict[str, Any]:
    import psutil

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "embedded_servers": "DATABASE_URL" not in os.environ,
        "commit": commit,
    }


async def machine_info(servers: Servers) -> dict[str, Any]:
    connection = await asyncpg.connect(asyncpg_dsn(servers.url("postgres")))
    try:
        pg = await connection.fetchval("SHOW server_version")
        shared_buffers = await connection.fetchval("SHOW shared_buffers")
    finally:
        await connection.close()
    import redis.asyncio as aioredis

    client = aioredis.from_url(servers.redis_url)
    try:
        redis_version = (await client.info("server")).get("redis_version")
    finally:
        await client.aclose()
    return {**_host_info(), "postgresql": pg, "shared_buffers": shared_buffers, "redis": redis_version}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_paths() -> set[str]:
    """The routes guestcard's app declares on this checkout (read from its OpenAPI document)."""
    from services.api.app import create_app

    return set(create_app().openapi().get("paths", {}))


def find_path(paths: set[str], *fragments: str) -> str | None:
    """The first declared path containing every fragment (route parameter names may differ)."""
    for path in sorted(paths):
        if all(fragment in path for fragment in fragments):
            return path
    return None


def _profile_dir_from_env() -> Path | None:
    value = os.environ.get("GUESTCARD_BENCH_PROFILE_DIR")
    return Path(value) if value else None


BACKGROUND_NICE = 10  # `guestcard run --background-nice`'s default


@dataclass
class Guestcard:
    """`guestcard run`'s layout: the public API process; the applier (a second API process taking the worker's
    hand-offs) and the arq worker, both at lower CPU priority."""

    database_url: str
    redis_url: str
    log_dir: Path = DATA_DIR / "logs"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # set (or GUESTCARD_BENCH_PROFILE_DIR): py-spy records each process as collapsed stacks
    profile_dir: Path | None = field(default_factory=lambda: _profile_dir_from_env())
    profilers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "GUESTCARD_SERVICE_TOKEN": SERVICE_TOKEN,
            "GUESTCARD_API_URL": self.base_url,
            "GUESTCARD_PUBLIC_URL": self.base_url,
            "GUESTCARD_QUEUE": f"guestcard:bench:{uuid.uuid4().hex[:8]}",
            "GUESTCARD_DATA_DIR": str(DATA_DIR / "app"),
            # load generators offer far more than one key's production budget; the limiter's own cost (one
            # Redis script per request) is still paid at these limits
            "GUESTCARD_RATE_LIMIT_API_PER_SECOND": "1000000",
            "GUESTCARD_RATE_LIMIT_INTAKE_PER_SECOND": "1000000",
            **self.extra_env,
        }

    def start(self, worker: bool = True) -> None:
        self.port = self.port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        command = [sys.executable, "-m", "services.cli"]
        api = [*command, "api", "--host", "127.0.0.1", "--port", str(self.port)]
        workers = os.environ.get("GUESTCARD_BENCH_API_WORKERS")  # A/B of one API process against several
        parts = {"api": [*api, "--workers", workers] if workers else api}
        background: dict[str, str] = {}
        if worker and os.environ.get("GUESTCARD_BENCH_APPLIER", "1") != "0":  # as `guestcard run` (0: A/B)
            applier_port = free_port()
            parts["applier"] = [*command, "api", "--host", "127.0.0.1", "--port", str(applier_port)]
            background = {"GUESTCARD_API_URL": f"http://127.0.0.1:{applier_port}"}
        if worker:
            parts["worker"] = [*command, "worker"]
        for name, argv in parts.items():
            log = (self.log_dir / f"{name}.log").open("ab")
            nice = BACKGROUND_NICE if background and name in ("applier", "worker") else 0
            self.processes[name] = subprocess.Popen(
                ["nice", "-n", str(nice), *argv] if nice else argv,
                env={**env, **background} if name == "worker" else env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()
        if self.profile_dir is not None:
            self.start_profilers(self.profile_dir)

    def start_profilers(self, out: Path) -> None:
        """py-spy (a dev dependency) samples API and worker until stop(); raw output = collapsed stacks."""
        out.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).parent / "py-spy"
        for name, process in self.processes.items():
            self.profilers.append(
                subprocess.Popen(
                    [str(spy), "record", "--pid", str(process.pid), "--format", "raw", "--rate", "200",
                     "--output", str(out / f"{name}.txt"), "--nonblocking", "--gil"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"guestcard {name} exited with {process.returncode}; see {self.log_dir}")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{self.base_url}/readyz", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            time.sleep(0.1)
        raise RuntimeError(f"guestcard API not ready within {timeout:.0f} s: {last}")

    def component_pids(self) -> dict[int, str]:
        return {process.pid: name for name, process in self.processes.items()}

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self) -> None:
        for profiler in self.profilers:  # SIGINT makes py-spy write its file
            profiler.send_signal(signal.SIGINT)
        for profiler in self.profilers:
            try:
                profiler.wait(30)
            except subprocess.TimeoutExpired:
                profiler.kill()
        self.profilers.clear()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()


@contextlib.contextmanager
def running(guestcard: Guestcard, worker: bool = True) -> Iterator[Guestcard]:
    try:
        guestcard.start(worker=worker)
        yield guestcard
    finally:
        guestcard.stop()
