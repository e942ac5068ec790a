"""telephony.twilio.protocol: Twilio Media Streams JSON, both directions, with wire fixtures."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from telephony.twilio import protocol as tw
from tests.fixtures.load import load

pytestmark = pytest.mark.unit

STREAM = "MZ8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
CALL = "CA1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e"


def fixture(name: str) -> dict[str, Any]:
    return json.loads(load(f"twilio/{name}.json"))


# ------------------------------------------------------------------------------ fixtures parse
def test_connected_is_parsed() -> None:
    assert tw.parse_inbound(load("twilio/connected.json")) == tw.Connected("Call", "1.0.0")


def test_start_carries_the_call_the_stream_the_format_and_the_caller() -> None:
    assert tw.parse_inbound(load("twilio/start.json")) == tw.Start(
        stream_sid=STREAM, call_sid=CALL, account_sid="AC5f1c29fa7b8e4d3c9a0b2e6d7f8a9b0c",
        tracks=("inbound",), custom_parameters={"From": "+15550100"},
        media_format=tw.MediaFormat("audio/x-mulaw", 8000, 1))


def test_media_payload_is_base64_decoded_and_string_numbers_become_ints() -> None:
    assert tw.parse_inbound(load("twilio/media.json")) == tw.Media(
        STREAM, "inbound", chunk=1, timestamp_ms=5, payload=b"\xff" * 80 + b"\x7f" * 80)


def test_dtmf_mark_and_stop_are_parsed() -> None:
    assert tw.parse_inbound(load("twilio/dtmf.json")) == tw.Dtmf(STREAM, "inbound_track", "1")
    assert tw.parse_inbound(load("twilio/mark.json")) == tw.Mark(STREAM, "r2.1")
    assert tw.parse_inbound(load("twilio/stop.json")) == tw.Stop(STREAM, CALL)


def test_bytes_are_accepted_as_well_as_text() -> None:
    assert tw.parse_inbound(load("twilio/mark.json").encode()) == tw.Mark(STREAM, "r2.1")


def test_json_integers_are_accepted_where_twilio_sends_digit_strings() -> None:
    message = fixture("media")
    message["media"].update(chunk=7, timestamp=140)
    event = tw.parse_inbound(json.dumps(message))
    assert isinstance(event, tw.Media) and (event.chunk, event.timestamp_ms) == (7, 140)


def test_unknown_extra_fields_are_ignored() -> None:
    message = fixture("mark")
    message["somethingNew"] = {"x": 1}
    assert tw.parse_inbound(json.dumps(message)) == tw.Mark(STREAM, "r2.1")


def test_start_without_custom_parameters_has_none() -> None:
    message = fixture("start")
    del message["start"]["customParameters"]
    event = tw.parse_inbound(json.dumps(message))
    assert isinstance(event, tw.Start) and event.custom_parameters == {}


# ------------------------------------------------------------------------------ round trips
def test_client_side_builders_produce_messages_that_parse_back() -> None:
    ulaw = bytes(range(160))
    cases = [
        (tw.connected_message(), tw.Connected("Call", "1.0.0")),
        (tw.inbound_media_message("MZ1", 7, 140, ulaw), tw.Media("MZ1", "inbound", 7, 140, ulaw)),
        (tw.dtmf_message("MZ1", "#"), tw.Dtmf("MZ1", "inbound_track", "#")),
        (tw.inbound_mark_message("MZ1", "r1.1"), tw.Mark("MZ1", "r1.1")),
        (tw.stop_message("MZ1", "CA1"), tw.Stop("MZ1", "CA1")),
        (tw.start_message("MZ1", "CA1", account_sid="AC9", custom_parameters={"From": "+1"}),
         tw.Start("MZ1", "CA1", "AC9", ("inbound",), {"From": "+1"})),
    ]
    for message, expected in cases:
        assert tw.parse_inbound(message) == expected


def test_client_side_builders_carry_sequence_numbers_as_twilio_does() -> None:
    message = json.loads(tw.inbound_media_message("MZ1", 2, 20, b"\xff", sequence_number=4))
    assert message["sequenceNumber"] == "4"
    assert json.loads(tw.start_message("MZ1", "CA1"))["sequenceNumber"] == "1"
    assert "sequenceNumber" not in json.loads(tw.connected_message())


def test_builders_produce_the_shapes_of_twilio_docs() -> None:
    assert set(fixture("start")) == set(json.loads(tw.start_message(STREAM, CALL)))
    assert set(fixture("start")["start"]) == set(json.loads(tw.start_message(STREAM, CALL))["start"])
    for name, built in [("media", tw.inbound_media_message(STREAM, 1, 5, b"\xff")),
                        ("dtmf", tw.dtmf_message(STREAM, "1")),
                        ("mark", tw.inbound_mark_message(STREAM, "r2.1")),
                        ("stop", tw.stop_message(STREAM, CALL))]:
        wire = fixture(name)
        ours = json.loads(built)
        assert set(ours) <= set(wire), name
        assert set(ours[name]) == set(wire[name]), name


def test_server_side_messages_round_trip_through_parse_outbound() -> None:
    ulaw = b"\x00\x7f\xff" * 10
    assert tw.parse_outbound(tw.media_message("MZ1", ulaw)) == tw.OutboundMedia("MZ1", ulaw)
    assert tw.parse_outbound(tw.mark_message("MZ1", "r3.2")) == tw.OutboundMark("MZ1", "r3.2")
    assert tw.parse_outbound(tw.clear_message("MZ1")) == tw.OutboundClear("MZ1")


def test_server_side_messages_have_twilio_shapes() -> None:
    assert json.loads(tw.clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
    assert json.loads(tw.mark_message("MZ1", "a")) == {
        "event": "mark", "streamSid": "MZ1", "mark": {"name": "a"}}
    media = json.loads(tw.media_message("MZ1", b"\x12\x34"))
    assert media == {"event": "media", "streamSid": "MZ1", "media": {"payload": "EjQ="}}
    assert base64.b64decode(media["media"]["payload"]) == b"\x12\x34"


def test_a_dtmf_builder_refuses_a_non_digit() -> None:
    with pytest.raises(ValueError, match="not a DTMF digit"):
        tw.dtmf_message("MZ1", "x")


# ------------------------------------------------------------------------------ errors
def edited(name: str, change: Any) -> str:
    message = fixture(name)
    change(message)
    return json.dumps(message)


def start_with_format(encoding: str, rate: int, channels: int) -> str:
    return edited("start", lambda m: m["start"].update(
        mediaFormat={"encoding": encoding, "sampleRate": rate, "channels": channels}))


@pytest.mark.parametrize("text, words", [
    ('{"event": "start", ', "invalid JSON"),
    (b'{"event": "\x80"}', "invalid JSON: not UTF-8"),
    (b"\xff\xfe", "invalid JSON"),
    ("[1, 2]", "expected a JSON object, got a JSON array"),
    ('"media"', "expected a JSON object, got a JSON string"),
    ('{"no": "event"}', "message has no 'event'"),
    ('{"event": 3}', "'event' must be a string"),
    ('{"event": "teleport"}', "unknown event 'teleport'"),
    ('{"event": "connected"}', "'connected' message: missing 'protocol'"),
    ('{"event": "media"}', "'media' message: missing 'streamSid'"),
    ('{"event": "media", "streamSid": "MZ1", "media": []}',
     "'media' must be an object|missing 'media.track'"),
    (edited("media", lambda m: m["media"].pop("payload")), "missing 'media.payload'"),
    (edited("media", lambda m: m["media"].pop("track")), "missing 'media.track'"),
    (edited("media", lambda m: m["media"].update(payload="***")), "'media.payload' is not valid base64"),
    (edited("media", lambda m: m["media"].update(payload=12)), "'media.payload' must be a string"),
    (edited("media", lambda m: m["media"].update(chunk="x")), "'media.chunk' must be a whole number"),
    (edited("media", lambda m: m["media"].update(timestamp=-5)), "'media.timestamp' must be a whole"),
    (edited("media", lambda m: m["media"].update(chunk=True)), "'media.chunk' must be a whole"),
    (edited("start", lambda m: m["start"].pop("callSid")), "'start' message: missing 'start.callSid'"),
    (edited("start", lambda m: m["start"].pop("mediaFormat")), "missing 'start.mediaFormat.encoding'"),
    (edited("start", lambda m: m["start"].update(tracks=[])), "'start.tracks' must be a non-empty"),
    (edited("start", lambda m: m.update(streamSid="MZother")), "differs from 'start.streamSid'"),
    (edited("start", lambda m: m["start"].update(customParameters={"n": 1})),
     "custom parameter 'n' must be a string"),
    (edited("start", lambda m: m["start"].update(customParameters=[])),
     "'start.customParameters' must be an object"),
    (start_with_format("audio/l16", 16000, 1), "unsupported media format audio/l16 at 16000 Hz"),
    (start_with_format("audio/x-mulaw", 16000, 1), "unsupported media format"),
    (start_with_format("audio/x-mulaw", 8000, 2), "with 2 channel"),
    (edited("dtmf", lambda m: m["dtmf"].update(digit="x")), "'x' is not a DTMF digit"),
    (edited("dtmf", lambda m: m["dtmf"].update(digit="12")), "'12' is not a DTMF digit"),
    (edited("dtmf", lambda m: m["dtmf"].update(digit="a")), "'a' is not a DTMF digit"),
    (edited("dtmf", lambda m: m["dtmf"].update(digit="")), "'dtmf.digit' is empty"),
    (edited("mark", lambda m: m["mark"].pop("name")), "'mark' message: missing 'mark.name'"),
    (edited("stop", lambda m: m.pop("stop")), "'stop' message: missing 'stop.callSid'"),
    (edited("stop", lambda m: m.update(streamSid=None)), "'streamSid' must be a string, got a JSON null"),
])
def test_every_malformed_message_raises_one_precise_error(text: str | bytes, words: str) -> None:
    with pytest.raises(tw.TwilioProtocolError, match=words):
        tw.parse_inbound(text)


@pytest.mark.parametrize("digit", sorted(tw.DTMF_DIGITS))
def test_every_keypad_digit_is_accepted(digit: str) -> None:
    event = tw.parse_inbound(tw.dtmf_message("MZ1", digit))
    assert isinstance(event, tw.Dtmf) and event.digit == digit


@pytest.mark.parametrize("text, words", [
    ('{"event": "media", "streamSid": "MZ1", "media": {"payload": "%%"}}', "not valid base64"),
    ('{"event": "mark", "streamSid": "MZ1", "mark": {}}', "missing 'mark.name'"),
    ('{"event": "clear"}', "missing 'streamSid'"),
    ('{"event": "start", "streamSid": "MZ1"}', "unknown outbound event 'start'"),
    ("nope", "invalid JSON"),
])
def test_malformed_outbound_messages_raise_the_same_error(text: str, words: str) -> None:
    with pytest.raises(tw.TwilioProtocolError, match=words):
        tw.parse_outbound(text)


def test_the_error_is_a_value_error_so_callers_can_catch_broadly() -> None:
    assert issubclass(tw.TwilioProtocolError, ValueError)
