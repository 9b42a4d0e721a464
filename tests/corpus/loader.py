"""The intake corpus: sample deliveries of every sender with the outcome they must produce.

Layout: `tests/corpus/<kind>/<case>.<ext>` holds the exact body bytes; `<case>.expected.json` holds
`meta` (kind, content_type, headers, query, received_at) to rebuild the delivery, plus the expected
`outcome`, `reason`, `parser` and a `signal` subset; optionally `property` (the hint an ignored delivery
keeps), `property_name` (the configured property the delivery resolves to, end to end) and `lead` (a subset
of `GET /v1/leads/{id}` after the API applied it). The same cases can be pushed through the HTTP API
(`case.raw` has everything a request needs), so nothing here depends on the parser package.

`properties.json` is the organization the corpus runs against: its properties (names, listing ids,
tracking numbers) are created before the end-to-end run, and the parser tests get the same context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.intake.parsers.base import ParseContext, RawInbound
from shared.enums import InboundKind

CORPUS_DIR = Path(__file__).resolve().parent
EXPECTED_SUFFIX = ".expected.json"
PROPERTIES_FILE = CORPUS_DIR / "properties.json"


def corpus_properties() -> list[dict[str, Any]]:
    """The properties of the corpus organization, as `POST /v1/properties` bodies."""
    return list(json.loads(PROPERTIES_FILE.read_text(encoding="utf-8")))


def corpus_parse_context() -> ParseContext:
    """What the worker's org config gives the parsers for the corpus organization."""
    properties = corpus_properties()
    phones = frozenset(phone for prop in properties for phone in prop.get("phone_numbers", []))
    aliases = frozenset(prop["inbound_alias"] for prop in properties if prop.get("inbound_alias"))
    blocked = frozenset({("phone", phone) for phone in phones} | {("email", alias) for alias in aliases})
    return ParseContext(own_phones=phones, own_emails=aliases, blocked=blocked)


@dataclass(frozen=True)
class CorpusCase:
    name: str  # "<kind dir>/<case>"
    kind: InboundKind
    raw: RawInbound
    expected: dict[str, Any]  # outcome / reason / parser / signal subset (meta removed)
    payload_path: Path

    def __str__(self) -> str:
        return self.name


def kind_for_dir(name: str, meta: dict[str, Any]) -> InboundKind:
    """Directory names are enum member names (twilio_voice); meta["kind"] may give the wire value."""
    if meta.get("kind"):
        return InboundKind(meta["kind"])
    if name in InboundKind.__members__:
        return InboundKind[name]
    return InboundKind(name.replace("_", "/") if name.startswith("twilio") else name)


def _payload_for(expected_path: Path) -> Path:
    stem = expected_path.name[: -len(EXPECTED_SUFFIX)]
    matches = [p for p in expected_path.parent.glob(f"{stem}.*") if not p.name.endswith(EXPECTED_SUFFIX)]
    if len(matches) != 1:
        raise FileNotFoundError(f"expected exactly one payload for {expected_path}, found {len(matches)}")
    return matches[0]


def load_case(expected_path: Path) -> CorpusCase:
    document = json.loads(expected_path.read_text(encoding="utf-8"))
    meta = document.pop("meta", {})
    payload = _payload_for(expected_path)
    kind = kind_for_dir(expected_path.parent.name, meta)
    raw = RawInbound(
        kind=kind,
        body=payload.read_bytes(),
        content_type=meta.get("content_type", "application/octet-stream"),
        received_at=datetime.fromisoformat(meta["received_at"]),
        headers={k.lower(): str(v) for k, v in (meta.get("headers") or {}).items()},
        query={k: str(v) for k, v in (meta.get("query") or {}).items()},
    )
    name = f"{expected_path.parent.name}/{payload.stem}"
    return CorpusCase(name=name, kind=kind, raw=raw, expected=document, payload_path=payload)


def load_corpus(root: Path | None = None) -> list[CorpusCase]:
    """Every case under the corpus folder, sorted by name."""
    base = root or CORPUS_DIR
    return sorted((load_case(p) for p in base.glob(f"*/*{EXPECTED_SUFFIX}")), key=lambda c: c.name)


def _same_scalar(expected: Any, actual: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            return float(expected) == float(actual)
        except (TypeError, ValueError):
            return False
    return bool(expected == actual)


def subset_match(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Mismatches of `expected` against `actual`: dict keys are a subset, lists and scalars must be equal.

    `None` in expected means the field must be null (or absent) in actual.
    """
    where = path or "<root>"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {type(actual).__name__}"]
        problems: list[str] = []
        for key, value in expected.items():
            child = f"{path}.{key}" if path else key
            if key not in actual:
                if value is not None:
                    problems.append(f"{child}: missing (expected {value!r})")
                continue
            problems.extend(subset_match(value, actual[key], child))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        problems = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            problems.extend(subset_match(want, got, f"{where}[{index}]"))
        return problems
    if not _same_scalar(expected, actual):
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []
