"""Providers over their real wire protocols: Twilio Messaging (REST, httpx), SMTP (aiosmtplib), `record`.

Each answers `send` (accepted → the provider's id; refused → ProviderError) and `lookup` (did a message we
may have sent already reach the provider?), which is what lets a resend be safe (docs/messaging.md).
"""

from __future__ import annotations

import asyncio
import email.utils
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

TWILIO_API_VERSION = "2010-04-01"
TWILIO_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


class ProviderError(Exception):
    """`permanent`: don't retry (a 4xx). `definite`: the provider surely did not accept it (safe to resend)."""

    def __init__(self, message: str, *, permanent: bool, definite: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.definite = definite
        self.code = code


@dataclass
class Outgoing:
    """What a provider needs, copied out of the row so no database session is open during the call."""

    id: str
    channel: str
    to: str
    body: str
    subject: str | None
    headers: dict[str, str]
    sending_at: datetime
    status_callback: str | None
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)


@dataclass
class Accepted:
    provider_message_id: str
    status: str = "sent"


class Unknowable(Exception):
    """The provider cannot tell whether it has the message (SMTP)."""


class RecordProvider:
    """Sends nothing and marks the message sent: the default for `make run` and for tests of the rules."""

    name = "record"

    async def send(self, message: Outgoing, base_url: str | None = None) -> Accepted:
        return Accepted(f"record-{message.id}")

    async def lookup(self, message: Outgoing, base_url: str | None = None) -> Accepted | None:
        return None  # nothing was sent, so sending "again" sends nothing twice either


class TwilioProvider:
    """POST /2010-04-01/Accounts/{sid}/Messages.json (form-encoded, basic auth), StatusCallback per message.

    One HTTP client per event loop, kept: a new httpx client builds its TLS context (the CA bundle) each time,
    tens of milliseconds of CPU per message, and a kept one reuses its connections to Twilio."""

    name = "twilio"

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = self._clients[loop] = httpx.AsyncClient(timeout=TWILIO_TIMEOUT)
        return client

    def _messages_url(self, message: Outgoing, base_url: str | None) -> str:
        base = (base_url or "https://api.twilio.com").rstrip("/")
        return f"{base}/{TWILIO_API_VERSION}/Accounts/{message.config['account_sid']}/Messages.json"

    def _auth(self, message: Outgoing) -> tuple[str, str]:
        return message.config["account_sid"], message.secrets.get("auth_token", "")

    async def send(self, message: Outgoing, base_url: str | None = None) -> Accepted:
        form = {"To": message.to, "Body": message.body}
        if message.config.get("messaging_service_sid"):
            form["MessagingServiceSid"] = message.config["messaging_service_sid"]
        if message.config.get("from_number"):
            form["From"] = message.config["from_number"]
        if message.status_callback:
            form["StatusCallback"] = message.status_callback
        try:
            response = await self._http().post(
                self._messages_url(message, base_url), data=form, auth=self._auth(message)
            )
        except httpx.ConnectError as error:
            raise ProviderError("connect failed", permanent=False, definite=True) from error
        except httpx.HTTPError as error:  # a timeout after the request left: it may have been accepted
            raise ProviderError(type(error).__name__, permanent=False, definite=False) from error
        if response.status_code in (200, 201):
            data = response.json()
            return Accepted(str(data["sid"]), status=str(data.get("status") or "queued"))
        detail, code = _twilio_error(response)
        if response.status_code == 429:
            raise ProviderError(detail, permanent=False, definite=True, code=code)
        if 400 <= response.status_code < 500:
            raise ProviderError(detail, permanent=True, definite=True, code=code)
        raise ProviderError(detail, permanent=False, definite=False, code=code)

    async def lookup(self, message: Outgoing, base_url: str | None = None) -> Accepted | None:
        """List the account's messages to this number and find ours: same body, created after we started
        sending (Twilio's Message resource does not echo the StatusCallback, so body + time identify it)."""
        params = {"To": message.to, "PageSize": "50"}
        if message.config.get("from_number") and not message.config.get("messaging_service_sid"):
            params["From"] = message.config["from_number"]
        try:
            response = await self._http().get(
                self._messages_url(message, base_url), params=params, auth=self._auth(message)
            )
        except httpx.HTTPError as error:
            raise ProviderError(f"lookup {type(error).__name__}", permanent=False, definite=False) from error
        if response.status_code != 200:
            raise ProviderError(f"lookup answered {response.status_code}", permanent=False, definite=False)
        since = message.sending_at - timedelta(minutes=5)
        for item in response.json().get("messages", []):
            created = _twilio_time(item.get("date_created"))
            if item.get("body") == message.body and (created is None or created >= since):
                return Accepted(str(item["sid"]), status=str(item.get("status") or "queued"))
        return None


def _twilio_error(response: httpx.Response) -> tuple[str, str | None]:
    try:
        data = response.json()
    except ValueError:
        return f"twilio answered {response.status_code}", None
    code = data.get("code")
    return str(data.get("message") or f"twilio answered {response.status_code}"), str(code) if code else None


def _twilio_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None


class SmtpProvider:
    """SMTP submission with aiosmtplib; Message-ID carries our message id (threading, and a reply's lead)."""

    name = "smtp"

    async def send(self, message: Outgoing, base_url: str | None = None) -> Accepted:
        mail = build_email(message)
        config = message.config
        try:
            await aiosmtplib.send(
                mail,
                hostname=config.get("host", "127.0.0.1"),
                port=int(config.get("port", 587)),
                username=config.get("username") or None,
                password=(message.secrets.get("password") or None) if config.get("username") else None,
                start_tls=bool(config.get("starttls", False)),
                use_tls=bool(config.get("tls", False)),
                timeout=30,
            )
        except aiosmtplib.SMTPResponseException as error:
            permanent = 500 <= error.code < 600
            raise ProviderError(error.message, permanent=permanent, definite=True, code=str(error.code)) from error
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as error:
            raise ProviderError(type(error).__name__, permanent=False, definite=True) from error
        except aiosmtplib.SMTPException as error:
            raise ProviderError(type(error).__name__, permanent=False, definite=False) from error
        return Accepted(str(mail["Message-ID"]))

    async def lookup(self, message: Outgoing, base_url: str | None = None) -> Accepted | None:
        raise Unknowable("an SMTP server cannot be asked whether it took a message")


def message_id_header(message_id: str, from_address: str) -> str:
    domain = from_address.rpartition("@")[2] or "guestcard.local"
    return f"<{message_id}@{domain}>"


def build_email(message: Outgoing) -> EmailMessage:
    from_address = message.config.get("from_email") or "leasing@guestcard.local"
    mail = EmailMessage()
    from_name = message.config.get("from_name")
    mail["From"] = email.utils.formataddr((from_name, from_address)) if from_name else from_address
    mail["To"] = message.to
    mail["Subject"] = message.subject or ""
    mail["Date"] = email.utils.format_datetime(message.sending_at)
    mail["Message-ID"] = message_id_header(message.id, from_address)
    for name, value in message.headers.items():
        mail[name] = value
    mail.set_content(message.body)
    return mail


PROVIDERS: dict[str, Any] = {"record": RecordProvider(), "twilio": TwilioProvider(), "smtp": SmtpProvider()}
