"""telephony.twilio.twiml: the <Connect><Stream> answer, its URL, and request signatures."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from telephony.twilio.twiml import connect_stream_twiml, signature_is_valid, stream_url_for

pytestmark = pytest.mark.unit

TOKEN = "0123456789abcdef0123456789abcdef"
URL = "https://iva.example.com/twilio/voice"
FORM = {"CallSid": "CA123", "From": "+15550100", "To": "+15557777", "AccountSid": "AC1"}


def test_twiml_connects_a_stream_with_its_parameters() -> None:
    twiml = connect_stream_twiml("wss://iva.example.com/twilio/stream",
                                 parameters={"From": "+15550100", "Lang": "en"})
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Connect"]
    connect = root.find("Connect")
    assert connect is not None
    (stream,) = list(connect)
    assert stream.tag == "Stream"
    assert stream.get("url") == "wss://iva.example.com/twilio/stream"
    assert [(p.get("name"), p.get("value")) for p in stream] == [
        ("From", "+15550100"), ("Lang", "en")]


def test_twiml_without_parameters_has_an_empty_stream() -> None:
    root = ET.fromstring(connect_stream_twiml("ws://h/twilio/stream", parameters={}))
    stream = root.find("./Connect/Stream")
    assert stream is not None and list(stream) == []


def test_twiml_escapes_values() -> None:
    twiml = connect_stream_twiml("wss://h/twilio/stream?a=1&b=2",
                                 parameters={"From": '<"Anonymous">'})
    stream = ET.fromstring(twiml).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://h/twilio/stream?a=1&b=2"
    assert stream[0].get("value") == '<"Anonymous">'


@pytest.mark.parametrize("proto, expected", [
    ("https", "wss://iva.example.com/twilio/stream"),
    ("https,http", "wss://iva.example.com/twilio/stream"),
    ("HTTPS", "wss://iva.example.com/twilio/stream"),
    ("http", "ws://iva.example.com/twilio/stream"),
    (None, "ws://iva.example.com/twilio/stream"),
])
def test_the_stream_url_follows_the_request_scheme(proto: str | None, expected: str) -> None:
    assert stream_url_for("", forwarded_proto=proto, host="iva.example.com") == expected


@pytest.mark.parametrize("base, expected", [
    ("https://calls.example.com", "wss://calls.example.com/twilio/stream"),
    ("https://calls.example.com/iva/", "wss://calls.example.com/iva/twilio/stream"),
    ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/twilio/stream"),
    ("calls.example.com", "wss://calls.example.com/twilio/stream"),
])
def test_a_configured_public_url_wins_over_the_request(base: str, expected: str) -> None:
    assert stream_url_for(base, forwarded_proto="http", host="127.0.0.1:8080") == expected


def test_a_real_signature_is_valid() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, FORM)
    assert signature_is_valid(TOKEN, URL, FORM, signature)


@pytest.mark.parametrize("change", [
    {"url": URL + "?x=1"}, {"params": {**FORM, "From": "+15550199"}}, {"token": "f" * 32},
])
def test_a_signature_for_something_else_is_invalid(change: dict) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, FORM)
    assert not signature_is_valid(change.get("token", TOKEN), change.get("url", URL),
                                  change.get("params", FORM), signature)


@pytest.mark.parametrize("signature", [None, "", "bm9wZQ=="])
def test_a_missing_or_bogus_signature_is_invalid(signature: str | None) -> None:
    assert not signature_is_valid(TOKEN, URL, FORM, signature)
