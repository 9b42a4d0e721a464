"""A lean HTTP/1.1 keep-alive client for the load generator.

The load generator shares the machine's two cores with the stack it measures, so its own CPU is taken
from guestcard. Measured on this machine against a trivial ASGI app, 32 connections: httpx spends
2.6 ms of CPU per request and tops out near 380 requests/s, under the burst target (500 requests/s) by
itself; this client spends 0.05 ms and reaches ~20,000 requests/s. Real senders post from other machines,
so the cheaper the load, the closer the bench is to a real deployment. It speaks just what the bench needs:
one request at a time per connection, Content-Length bodies out, any framing back (httptools parses it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Reading:
    """httptools' callbacks for one response."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.done = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()  # read before the parser resets for the next message

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Stale(ConnectionError):
    """Nothing came back: the connection was closed under us (a request is retried once, on a new one)."""


class Client:
    """At most `connections` requests in flight, each on an idle kept-alive connection or a new one."""

    def __init__(self, base_url: str, connections: int = 32, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.gate = asyncio.Semaphore(connections)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        while self.idle:
            _, writer = self.idle.pop()
            writer.close()

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        async with self.gate:
            if self.idle:
                try:  # a kept-alive connection the server has since closed fails before any byte comes back
                    return await asyncio.wait_for(
                        self._exchange(self.idle.pop(), method, path, body, headers or {}), self.timeout
                    )
                except _Stale:
                    pass
            fresh = await asyncio.open_connection(self.host, self.port)
            return await asyncio.wait_for(self._exchange(fresh, method, path, body, headers or {}), self.timeout)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", path, body, headers)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, b"", headers)

    async def _exchange(
        self,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
    ) -> Response:
        reader, writer = connection
        received = False
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        lines.append(f"content-length: {len(body)}")
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        reading = _Reading()
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            while not reading.done:
                data = await reader.read(65536)
                if not data:
                    raise ConnectionError("the server closed the connection mid-response")
                received = True
                reading.parser.feed_data(data)
        except (ConnectionError, OSError) as error:
            writer.close()
            if not received:
                raise _Stale from error
            raise
        except BaseException:
            writer.close()
            raise
        if reading.keep_alive:
            self.idle.append((reader, writer))
        else:
            writer.close()
        return Response(reading.parser.get_status_code(), reading.headers, b"".join(reading.chunks))
