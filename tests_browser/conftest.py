"""Browser tests (`make test-browser`, not `make test`): the tests/ harness plus a live API server and
Debian's chromium driven by playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from shared.config import Settings
from tests.conftest import engine, servers, sessionmaker, settings  # noqa: F401  (the same harness)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(settings: Settings) -> Iterator[str]:  # noqa: F811
    """The API on a real port, in its own thread and event loop."""
    from services.api.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # a deadline-bounded wait for the socket to listen
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM)")
    return CHROMIUM


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "browser: needs chromium")
