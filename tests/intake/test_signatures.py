"""Webhook signature checks against documented vectors and their tampered twins."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from services.api.intake.signatures import (
    callrail_valid,
    mailgun_valid,
    ringcentral_valid,
    twilio_signature,
    twilio_valid,
    webflow_valid,
)

URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def test_twilio_doc_vector() -> None:
    # Twilio's documented example signs URL + these params; `0/KCTR...` is that vector
    # (intake-formats.md §8 labels it as the no-params case, which does not reproduce).
    assert twilio_signature(URL, PARAMS, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_valid(URL, PARAMS, "12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not twilio_valid(URL, {}, "12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    # The other vector quoted in the brief does not match this URL/params/token under Twilio's scheme.
    assert not twilio_valid(URL, PARAMS, "12345", "GvWf1cFY/Q7PnoempGyD5oXAezc=")


def test_twilio_rejects_tampering() -> None:
    good = twilio_signature(URL, PARAMS, "12345")
    assert not twilio_valid(URL, {**PARAMS, "Digits": "9999"}, "12345", good)
    assert not twilio_valid(URL, PARAMS, "54321", good)
    assert not twilio_valid(URL.replace("foo=1", "foo=2"), PARAMS, "12345", good)
    assert not twilio_valid(URL, PARAMS, "12345", None)
    assert not twilio_valid(URL, PARAMS, "", good)


def test_twilio_list_params_and_repeated_keys() -> None:
    as_lists = {k: [v] for k, v in PARAMS.items()}
    assert twilio_valid(URL, as_lists, "12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    repeated = {"MediaUrl": ["https://b", "https://a"], "To": ["+1"]}
    expected = base64.b64encode(
        hmac.new(b"tok", (URL + "MediaUrlhttps://aMediaUrlhttps://bTo+1").encode(), hashlib.sha1).digest()
    ).decode()
    assert twilio_valid(URL, repeated, "tok", expected)


def test_twilio_default_port_variants() -> None:
    signed_with_port = twilio_signature("https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, "12345")
    assert twilio_valid(URL, PARAMS, "12345", signed_with_port)


def test_twilio_body_sha256_variant() -> None:
    body = b'{"CallSid":"CA1"}'
    url = f"https://example.com/hook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = twilio_signature(url, None, "tok")
    assert twilio_valid(url, {}, "tok", signature, body=body)
    assert not twilio_valid(url, {}, "tok", signature, body=b'{"CallSid":"CA2"}')
    assert not twilio_valid(url, {}, "tok", signature)


def test_mailgun() -> None:
    key, timestamp, token = "key-secret", "1758380280", "tok-abc"
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    assert mailgun_valid(key, timestamp, token, signature, now=1758380300)
    assert mailgun_valid(key, timestamp, token, signature, now=datetime.fromtimestamp(1758380300, UTC))
    assert not mailgun_valid(key, timestamp, token, signature, now=1758380280 + 301)
    assert not mailgun_valid(key, timestamp, token + "x", signature, now=1758380300)
    assert not mailgun_valid(key, "not-a-number", token, signature, now=1758380300)
    assert not mailgun_valid(key, timestamp, token, None, now=1758380300)


def test_callrail() -> None:
    body = b'{"id":"CAL1","answered":false}'
    header = base64.b64encode(hmac.new(b"company-key", body, hashlib.sha1).digest()).decode()
    assert callrail_valid("company-key", body, header)
    assert not callrail_valid("company-key", body + b" ", header)
    assert not callrail_valid("other-key", body, header)
    assert not callrail_valid("company-key", body, "")


def test_webflow() -> None:
    body = b'{"triggerType":"form_submission"}'
    timestamp = "1758377555000"
    header = hmac.new(b"wf-secret", f"{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    now = 1758377555 + 60
    assert webflow_valid("wf-secret", timestamp, body, header, now)
    assert not webflow_valid("wf-secret", timestamp, body, header, 1758377555 + 301)
    assert not webflow_valid("wf-secret", timestamp, body + b"x", header, now)
    assert not webflow_valid("wf-secret", "1758377556000", body, header, now)


def test_ringcentral() -> None:
    assert ringcentral_valid("rc-secret", "rc-secret")
    assert not ringcentral_valid("rc-secret", "rc-secreT")
    assert not ringcentral_valid("rc-secret", None)
    assert not ringcentral_valid(None, "")
    assert not ringcentral_valid("", "")
