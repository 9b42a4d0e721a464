"""Reading a delivery's form body without a parser: what the API (delivery keys, signature checks) and the
intake parsers both need. Standard library only, so building the API never loads the worker's parsers."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import Message


class MalformedBody(ValueError):
    """A body that does not decode as its content type says; parsers turn it into a failed row."""


def media_type(content_type: str) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_charset(payload: bytes, charset: str | None) -> str:
    """Bytes in the charset a sender declared; an unknown or malformed charset name reads as UTF-8."""
    try:
        return payload.decode(charset or "utf-8", errors="replace")
    except (LookupError, ValueError):  # ValueError: a charset name with a NUL in it
        return payload.decode("utf-8", errors="replace")


def decode_multipart(body: bytes, content_type: str) -> dict[str, str]:
    """multipart/form-data fields as text (file parts are skipped; their bytes are not lead data)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = message_from_bytes(head + body, policy=policy.compat32)
    fields: dict[str, str] = {}
    if not message.is_multipart():
        raise MalformedBody("malformed multipart")
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_param("filename", header="content-disposition"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        fields[str(name)] = decode_charset(payload, part.get_content_charset())
    return fields
