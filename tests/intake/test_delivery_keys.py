"""Delivery keys: the same delivery twice gives the same key, different deliveries different keys."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlencode

import pytest

from shared.delivery_keys import delivery_key
from shared.enums import InboundKind
from tests.corpus.loader import load_corpus

FORM = "application/x-www-form-urlencoded"


def sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_raw_email_uses_message_id() -> None:
    body = b"From: a@example.com\r\nMessage-ID: <abc@mx.example>\r\nSubject: hi\r\n\r\nbody"
    assert delivery_key(InboundKind.email, body, "message/rfc822", {}) == "email:abc@mx.example"


def test_raw_email_falls_back_to_zillow_nid_then_hash() -> None:
    body = b"From: a@example.com\r\nx-nid: 1234-uuid\r\n\r\nbody"
    assert delivery_key(InboundKind.email, body, "message/rfc822", {}) == "email:x-nid:1234-uuid"
    bare = b"From: a@example.com\r\n\r\nbody"
    assert delivery_key(InboundKind.email, bare, "message/rfc822", {}) == "email:" + sha(bare)


def test_sendgrid_parsed_and_raw_modes() -> None:
    by_name = {case.name: case for case in load_corpus()}
    parsed = by_name["sendgrid/parsed_fields_zillow"].raw
    raw_mode = by_name["sendgrid/raw_mode_reply"].raw
    assert delivery_key(parsed.kind, parsed.body, parsed.content_type, {}) == (
        "sendgrid:7f1c2a9e-1b7d-4c1e-9a51-2f0c6b1e0a01@email.amazonses.com"
    )
    assert delivery_key(raw_mode.kind, raw_mode.body, raw_mode.content_type, {}) == "sendgrid:CAgen0002@mail.gmail.com"


def test_mailgun_field_headers_and_body_mime() -> None:
    body = urlencode({"Message-Id": "<mg-1@example.com>", "from": "x@example.com"}).encode()
    assert delivery_key(InboundKind.mailgun, body, FORM, {}) == "mailgun:mg-1@example.com"
    listed = urlencode({"message-headers": json.dumps([["Message-Id", "<mg-2@example.com>"]])}).encode()
    assert delivery_key(InboundKind.mailgun, listed, FORM, {}) == "mailgun:mg-2@example.com"
    mime = urlencode({"body-mime": "Message-ID: <mg-3@example.com>\r\n\r\nhi"}).encode()
    assert delivery_key(InboundKind.mailgun, mime, FORM, {}) == "mailgun:mg-3@example.com"


def test_postmark_prefers_header_message_id() -> None:
    with_header = json.dumps({"MessageID": "pm-1", "Headers": [{"Name": "Message-ID", "Value": "<orig@x.com>"}]})
    assert delivery_key(InboundKind.postmark, with_header.encode(), "application/json", {}) == "postmark:orig@x.com"
    without = json.dumps({"MessageID": "pm-1", "Headers": []})
    assert delivery_key(InboundKind.postmark, without.encode(), "application/json", {}) == "postmark:pm-1"


def test_twilio_voice_key_includes_status() -> None:
    missed = urlencode({"CallSid": "CA1", "DialCallStatus": "no-answer", "CallStatus": "in-progress"}).encode()
    ringing = urlencode({"CallSid": "CA1", "CallStatus": "ringing"}).encode()
    assert delivery_key(InboundKind.twilio_voice, missed, FORM, {}) == "twilio/voice:CA1:no-answer"
    assert delivery_key(InboundKind.twilio_voice, ringing, FORM, {}) == "twilio/voice:CA1:ringing"


def test_twilio_idempotency_token_header_wins() -> None:
    body = urlencode({"MessageSid": "SM1"}).encode()
    assert delivery_key(InboundKind.twilio_sms, body, FORM, {}) == "twilio/sms:SM1"
    headers = {"I-Twilio-Idempotency-Token": "tok-9"}
    assert delivery_key(InboundKind.twilio_sms, body, FORM, headers) == "twilio/sms:twilio-token:tok-9"


def test_callrail_id_plus_event() -> None:
    body = json.dumps({"id": "CAL1", "resource_id": "CAL1", "answered": False}).encode()
    post = delivery_key(InboundKind.callrail, body, "application/json", {}, {"event": "post_call"})
    modified = delivery_key(InboundKind.callrail, body, "application/json", {}, {"event": "call_modified"})
    assert post == "callrail:CAL1:post_call"
    assert modified != post
    form = json.dumps({"id": "FRM1", "form_data": {}}).encode()
    assert delivery_key(InboundKind.callrail, form, "application/json", {}) == "callrail:FRM1:form"


def test_mits_third_party_and_event_id() -> None:
    case = next(c for c in load_corpus() if c.name == "mits/form_xml_field_apartments_com")
    assert delivery_key(case.kind, case.raw.body, case.raw.content_type, {}) == "mits:APTS-778812:EV-55012"


def test_webflow_ringcentral_web_form() -> None:
    webflow = json.dumps({"payload": {"id": "wf-1"}}).encode()
    assert delivery_key(InboundKind.webflow, webflow, "application/json", {}) == "webflow:wf-1"
    rc = json.dumps({"uuid": "u-1", "body": {}}).encode()
    assert delivery_key(InboundKind.ringcentral, rc, "application/json", {}) == "ringcentral:u-1"
    form = json.dumps({"submission_id": "s-1"}).encode()
    assert delivery_key(InboundKind.web_form, form, "application/json", {}) == "web-form:s-1"
    assert delivery_key(InboundKind.web_form, form, "application/json", {"Idempotency-Key": "k-1"}) == "web-form:k-1"


def test_zillow_callback_is_body_hash() -> None:
    body = urlencode({"listingId": "L1", "email": "a@example.com"}).encode()
    assert delivery_key(InboundKind.zillow, body, FORM, {}) == "zillow:" + sha(body)


def test_kinds_never_collide() -> None:
    body = urlencode({"MessageSid": "X1", "CallSid": "X1"}).encode()
    keys = {delivery_key(kind, body, FORM, {}) for kind in InboundKind}
    assert len(keys) == len(InboundKind)


@pytest.mark.parametrize("kind", list(InboundKind))
@pytest.mark.parametrize("body", [b"", b"\xff\xfe\x00", b"{", b"[1,2]", b"<x", b"a=%zz"])
def test_bad_bodies_fall_back_to_hash(kind: InboundKind, body: bytes) -> None:
    for content_type in ("application/json", FORM, "multipart/form-data; boundary=zz", ""):
        key = delivery_key(kind, body, content_type, {})
        assert key == f"{kind.value}:{sha(body)}"


def test_every_corpus_case_has_a_stable_key() -> None:
    for case in load_corpus():
        first = delivery_key(case.kind, case.raw.body, case.raw.content_type, case.raw.headers, case.raw.query)
        again = delivery_key(case.kind, case.raw.body, case.raw.content_type, case.raw.headers, case.raw.query)
        assert first == again and first.startswith(case.kind.value + ":")
