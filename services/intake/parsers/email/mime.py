"""One internal email shape for raw MIME and for the fields SendGrid, Mailgun and Postmark post.

ILS lead mail is often HTML-only (Zillow), so HTML is flattened to lines (block elements end a line,
inline ones do not, source newlines are spaces as a browser renders them) and every link is kept, because
the renter's address may exist only in a `mailto:` button. Forwarded copies are unwrapped here: the inner
From/Reply-To/Subject replace the outer ones, so templates see the ILS message the landlord forwarded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from bs4 import BeautifulSoup, NavigableString
from bs4.element import Comment

from shared.formdata import decode_charset

BLOCK_TAGS = [
    *("p", "div", "br", "tr", "td", "th", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tbody"),
    *("thead", "section", "blockquote", "center", "hr", "title", "ul", "ol", "dd", "dt", "header"),
    *("footer", "article"),
]
_FORWARD_MARKERS = re.compile(
    r"^-{2,}\s*Forwarded message\s*-{2,}$|^Begin forwarded message:?$|^-{2,}\s*Original Message\s*-{2,}$",
    re.IGNORECASE,
)
_FORWARD_HEADER = re.compile(r"^(From|Date|Sent|Subject|To|Cc|Reply-To)\s*:\s*(.*)$", re.IGNORECASE)


@dataclass(slots=True)
class InboundEmail:
    """The parts of an email the templates read; headers are lower-cased, values decoded."""

    headers: dict[str, str] = field(default_factory=dict)
    subject: str = ""
    from_name: str | None = None
    from_addr: str | None = None
    reply_to_name: str | None = None
    reply_to_addr: str | None = None
    to_addrs: list[str] = field(default_factory=list)
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    text: str = ""  # text/plain part, or flattened HTML when there is none
    html: str | None = None  # raw HTML for templates that read classes / data attributes
    html_text: str | None = None  # flattened HTML
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, anchor text)
    content_type: str = "text/plain"
    forwarded: bool = False
    envelope_to: str | None = None

    @property
    def body_lines(self) -> list[str]:
        """Lines a template reads: flattened HTML (ILS layouts are HTML-first), else the plain text."""
        return lines_of(self.html_text or self.text)

    @property
    def from_domain(self) -> str:
        return (self.from_addr or "").rpartition("@")[2].lower()


def lines_of(text: str | None) -> list[str]:
    result = []
    for line in (text or "").splitlines():
        clean = re.sub(r"[ \t\u00a0\u200b\u200c\u200d\ufeff]+", " ", line).strip()
        if clean:
            result.append(clean)
    return result


def flatten_html(html: str) -> tuple[str, list[tuple[str, str]]]:
    """Readable text plus the page's links; script/style/head never reach the text."""
    soup = BeautifulSoup(html, "html.parser")
    for node in soup(["script", "style", "head", "noscript"]):
        node.decompose()
    links = []
    for anchor in soup.find_all("a"):
        href = anchor.get("href")
        if isinstance(href, str) and href.strip():
            links.append((href.strip(), anchor.get_text(" ", strip=True)))
    # a newline in the HTML source is only whitespace: text that wraps between "…is interested in" and a
    # link is one line once rendered (only <pre>/<textarea> keep their line breaks)
    for text_node in soup.find_all(string=True):
        if not isinstance(text_node, NavigableString) or isinstance(text_node, Comment):
            continue
        if text_node.find_parent(["pre", "textarea"]) is None and re.search(r"[\r\n\t]", text_node):
            text_node.replace_with(re.sub(r"\s+", " ", str(text_node)))
    for tag in soup.find_all(BLOCK_TAGS):
        tag.insert_after("\n")
        if tag.name == "br":
            tag.replace_with("\n")
    text = soup.get_text("")
    return "\n".join(lines_of(text)), links


def _addr(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    name, addr = parseaddr(value.replace("\\[", "[").replace("\\]", "]"))
    return (name.strip() or None), (addr.strip().lower() or None)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _msgid(value: str | None) -> str | None:
    if not value:
        return None
    found = re.findall(r"<([^<>\s]+)>", value)
    return (found[-1] if found else value.strip().split()[-1]) or None


def build(
    headers: list[tuple[str, str]],
    *,
    text: str | None,
    html: str | None,
    content_type: str = "text/plain",
    envelope_to: str | None = None,
) -> InboundEmail:
    """Assemble an InboundEmail from header pairs and bodies (first header occurrence wins)."""
    hdrs: dict[str, str] = {}
    for name, value in headers:
        hdrs.setdefault(name.strip().lower(), re.sub(r"\s*\r?\n\s+", " ", str(value)).strip())
    from_name, from_addr = _addr(hdrs.get("from"))
    reply_name, reply_addr = _addr(hdrs.get("reply-to"))
    html_text, links = flatten_html(html) if html else (None, [])
    to_addrs = [a.lower() for _, a in getaddresses([hdrs.get("to", ""), hdrs.get("cc", "")]) if "@" in a]
    mail = InboundEmail(
        headers=hdrs,
        subject=hdrs.get("subject", ""),
        from_name=from_name,
        from_addr=from_addr,
        reply_to_name=reply_name,
        reply_to_addr=reply_addr,
        to_addrs=to_addrs,
        date=_date(hdrs.get("date")),
        message_id=_msgid(hdrs.get("message-id")),
        in_reply_to=_msgid(hdrs.get("in-reply-to")),
        references=hdrs.get("references"),
        text=(text or "").replace("\r\n", "\n") or (html_text or ""),
        html=html,
        html_text=html_text,
        links=links,
        content_type=content_type.lower(),
        envelope_to=envelope_to,
    )
    return unwrap_forward(mail)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return content
    except (LookupError, ValueError, AssertionError):
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_charset(payload, part.get_content_charset())


def _header_text(message: Message, name: str, raw_value: str) -> str:
    """One header, decoded; the stdlib's structured parsers raise odd errors (AttributeError, IndexError…) on
    malformed address headers, so a header that will not parse keeps its unfolded raw text instead."""
    try:
        return str(message.policy.header_fetch_parse(name, raw_value))  # type: ignore[attr-defined]
    except Exception:
        return " ".join(str(raw_value).split())


def from_bytes(raw: bytes) -> InboundEmail:
    """Parse a raw RFC 822 message (RFC 2047 headers decoded by the default policy)."""
    message = message_from_bytes(raw, policy=policy.default)
    headers: list[tuple[str, str]] = []
    for name, raw_value in message.raw_items():
        headers.append((name, _header_text(message, name, raw_value)))
    texts: list[str] = []
    htmls: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            texts.append(_part_text(part))
        elif kind == "text/html":
            htmls.append(_part_text(part))
    return build(
        headers,
        text="\n".join(texts) or None,
        html="\n".join(htmls) or None,
        content_type=message.get_content_type(),
    )


def _unwrap_text(text: str | None) -> tuple[dict[str, str], str] | None:
    """Find a forward block; return its header fields and the forwarded body below them."""
    if not text:
        return None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not _FORWARD_MARKERS.match(line.strip().strip("*> ")):
            continue
        fields: dict[str, str] = {}
        cursor = index + 1
        while cursor < len(lines) and not lines[cursor].strip():
            cursor += 1
        while cursor < len(lines):
            match = _FORWARD_HEADER.match(lines[cursor].strip().strip("*> "))
            if not match:
                break
            fields.setdefault(match.group(1).lower(), match.group(2).strip())
            cursor += 1
        if "from" in fields:
            return fields, "\n".join(lines[cursor:])
    return None


def unwrap_forward(mail: InboundEmail) -> InboundEmail:
    """Replace the forwarder's headers with the forwarded message's (intake-formats.md §9)."""
    found = _unwrap_text(mail.text) or _unwrap_text(mail.html_text)
    if found is None:
        return mail
    fields, _ = found
    from_name, from_addr = _addr(fields.get("from"))
    if not from_addr:
        return mail
    reply_name, reply_addr = _addr(fields.get("reply-to"))
    text_part = _unwrap_text(mail.text)
    html_part = _unwrap_text(mail.html_text)
    return replace(
        mail,
        from_name=from_name,
        from_addr=from_addr,
        reply_to_name=reply_name,
        reply_to_addr=reply_addr,
        subject=fields.get("subject", mail.subject),
        text=text_part[1] if text_part else mail.text,
        html_text=html_part[1] if html_part else mail.html_text,
        date=_date(fields.get("date")) or mail.date,
        forwarded=True,
        in_reply_to=None,
        references=None,
    )


_QUOTE_START = re.compile(
    r"^(On\b.*\bwrote:?|-{2,}\s*Original Message\s*-{2,}|_{10,}|From:\s.*|Sent from my \w+.*)$", re.IGNORECASE
)


def strip_quoted(text: str | None) -> str | None:
    """The new part of a reply: stop at `On ... wrote:` (also when wrapped over two lines) or `>` quotes."""
    if not text:
        return None
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):
            break
        joined = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else stripped
        if _QUOTE_START.match(stripped) or (stripped.startswith("On ") and joined.endswith("wrote:")):
            break
        kept.append(line.rstrip())
    result = "\n".join(kept).strip()
    return result or None
