"""POST /twilio/voice: TwiML, stream URL scheme, signature check (no models needed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from telephony.twilio.routes import twilio_router

pytestmark = pytest.mark.unit

TOKEN = "test-auth-token-0123456789abcdef"
FORM = {"CallSid": "CA123", "From": "+15550100", "To": "+15557777", "AccountSid": "AC1"}


class NoCalls:
    def new_session(self, channel):  # pragma: no cover - no stream in these tests
        raise AssertionError("no stream expected")


def client(auth_token: str | None = None, public_url: str | None = None) -> TestClient:
    app = FastAPI()
    app.include_router(twilio_router(NoCalls(), auth_token=auth_token, public_url=public_url,
                                     max_message_bytes=65536))
    return TestClient(app)


def stream_of(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None, twiml
    return stream


def test_the_webhook_connects_the_call_to_the_media_stream_with_the_caller():
    response = client().post("/twilio/voice", data=FORM, headers={"host": "iva.example.com"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    stream = stream_of(response.text)
    assert stream.get("url") == "ws://iva.example.com/twilio/stream"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"From": "+15550100"}


def test_the_stream_is_wss_when_the_proxy_says_https():
    response = client().post("/twilio/voice", data=FORM, headers={
        "host": "iva.example.com", "X-Forwarded-Proto": "https"})
    assert stream_of(response.text).get("url") == "wss://iva.example.com/twilio/stream"


def test_a_valid_signature_is_accepted():
    url = "https://iva.example.com/twilio/voice"
    signature = RequestValidator(TOKEN).compute_signature(url, FORM)
    response = client(TOKEN).post("/twilio/voice", data=FORM, headers={
        "host": "iva.example.com", "X-Forwarded-Proto": "https", "X-Twilio-Signature": signature})
    assert response.status_code == 200


def test_a_bad_or_missing_signature_gets_403():
    c = client(TOKEN)
    bad = c.post("/twilio/voice", data=FORM, headers={"X-Twilio-Signature": "bm9wZQ=="})
    missing = c.post("/twilio/voice", data=FORM)
    assert bad.status_code == 403 and missing.status_code == 403


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy():
    public = "https://calls.example.com"
    signature = RequestValidator(TOKEN).compute_signature(public + "/twilio/voice", FORM)
    response = client(TOKEN, public).post("/twilio/voice", data=FORM, headers={
        "host": "127.0.0.1:8080", "X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert stream_of(response.text).get("url") == "wss://calls.example.com/twilio/stream"
