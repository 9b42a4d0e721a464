"""The outside world at the wire: Twilio's Messages REST API served locally, and an SMTP sink (aiosmtpd).

FakeTwilio speaks Twilio's real shapes: form-encoded POST to /2010-04-01/Accounts/{sid}/Messages.json with
basic auth, 201 with the Message JSON, JSON errors `{code, message, more_info, status}`, and the list
endpoint `GET …/Messages.json?To=…&From=…` returning `{"messages": [...], "next_page_uri": …}`.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-auth-token-for-tests"
FROM_NUMBER = "+15125550100"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeTwilio:
    url: str = ""
    messages: list[dict[str, Any]] = field(default_factory=list)
    posts: int = 0
    lists: int = 0
    # status codes to answer the next POSTs with instead of accepting (e.g. [500])
    fail_next: list[int] = field(default_factory=list)

    def accepted(self, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if to is None or m["to"] == to]

    def _authorized(self, request: Request, sid: str) -> bool:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        return sid == ACCOUNT_SID and request.headers.get("authorization") == expected

    async def messages_endpoint(self, request: Request) -> JSONResponse:
        sid = request.path_params["sid"]
        if not self._authorized(request, sid):
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, status_code=401)
        if request.method == "GET":
            self.lists += 1
            to, sender = request.query_params.get("To"), request.query_params.get("From")
            found = [m for m in self.messages if (not to or m["to"] == to) and (not sender or m["from"] == sender)]
            return JSONResponse(
                {
                    "messages": list(reversed(found)),
                    "page": 0,
                    "page_size": 50,
                    "first_page_uri": request.url.path,
                    "next_page_uri": None,
                    "previous_page_uri": None,
                    "uri": request.url.path,
                }
            )
        self.posts += 1
        form = await request.form()
        if self.fail_next:
            code = self.fail_next.pop(0)
            return JSONResponse(
                {"code": 20500, "message": "Internal Server Error", "more_info": "", "status": code}, status_code=code
            )
        to = str(form.get("To", ""))
        if not to.startswith("+1"):
            return JSONResponse(
                {
                    "code": 21211,
                    "message": f"The 'To' number {to} is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211",
                    "status": 400,
                },
                status_code=400,
            )
        now = format_datetime(datetime.now(UTC))
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "account_sid": ACCOUNT_SID,
            "to": to,
            "from": str(form.get("From", "")),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": str(form.get("Body", "")),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/x.json",
            "status_callback": str(form.get("StatusCallback", "")),  # kept for the test, not in Twilio's JSON
        }
        self.messages.append(message)
        public = {k: v for k, v in message.items() if k != "status_callback"}
        return JSONResponse(public, status_code=201)


async def start_fake_twilio() -> tuple[FakeTwilio, uvicorn.Server, asyncio.Task[None]]:
    fake = FakeTwilio()
    app = Starlette(
        routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages_endpoint, methods=["GET", "POST"])]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])  # listening once this returns
    task = asyncio.create_task(_serve_until_exit(server, sock))
    fake.url = f"http://127.0.0.1:{port}"
    return fake, server, task


async def _serve_until_exit(server: uvicorn.Server, sock: socket.socket) -> None:
    await server.main_loop()
    await server.shutdown(sockets=[sock])


class SmtpSink:
    """Collects every message an SMTP client submits (aiosmtpd handler)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m, (_, rcpts) in zip(self.messages, self.envelopes, strict=True) if address in rcpts]


def start_smtp_sink() -> tuple[SmtpSink, Controller]:
    sink = SmtpSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    return sink, controller
