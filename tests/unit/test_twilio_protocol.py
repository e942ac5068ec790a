import base64
import json

import pytest

from telephony.twilio import protocol as tw
from tests.fixtures.load import load

pytestmark = pytest.mark.unit


def test_connected_is_parsed():
    event = tw.parse_inbound(load("twilio/connected.json"))
    assert event == tw.Connected(protocol="Call", version="1.0.0")


def test_start_carries_the_call_sid_the_stream_and_the_caller():
    event = tw.parse_inbound(load("twilio/start.json"))
    assert isinstance(event, tw.Start)
    assert event.call_sid == "CA1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e"
    assert event.stream_sid == "MZ8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
    assert event.custom_parameters == {"From": "+15550100"}
    assert event.media_format == tw.MediaFormat("audio/x-mulaw", 8000, 1)
    assert event.tracks == ("inbound",)


def test_media_payload_is_decoded_and_numbers_are_ints():
    event = tw.parse_inbound(load("twilio/media.json"))
    assert isinstance(event, tw.Media)
    assert event.payload == b"\xff" * 80 + b"\x7f" * 80
    assert (event.chunk, event.timestamp_ms, event.track) == (1, 5, "inbound")


def test_dtmf_mark_and_stop_are_parsed():
    assert tw.parse_inbound(load("twilio/dtmf.json")).digit == "1"
    assert tw.parse_inbound(load("twilio/mark.json")).name == "r2.1"
    stop = tw.parse_inbound(load("twilio/stop.json"))
    assert isinstance(stop, tw.Stop) and stop.call_sid.startswith("CA1b2c")


def test_client_side_builders_produce_messages_that_parse_back():
    ulaw = bytes(range(160))
    cases = [
        (tw.connected_message(), tw.Connected("Call", "1.0.0")),
        (tw.inbound_media_message("MZ1", 7, 140, ulaw), tw.Media("MZ1", "inbound", 7, 140, ulaw)),
        (tw.dtmf_message("MZ1", "#"), tw.Dtmf("MZ1", "inbound_track", "#")),
        (tw.inbound_mark_message("MZ1", "r1.1"), tw.Mark("MZ1", "r1.1")),
        (tw.stop_message("MZ1", "CA1"), tw.Stop("MZ1", "CA1")),
    ]
    for message, expected in cases:
        assert tw.parse_inbound(message) == expected
    start = tw.parse_inbound(tw.start_message("MZ1", "CA1", custom_parameters={"From": "+1"}))
    assert (start.call_sid, start.stream_sid, start.custom_parameters) == ("CA1", "MZ1", {"From": "+1"})


def test_outbound_messages_round_trip():
    ulaw = b"\x00\x7f\xff" * 10
    assert tw.parse_outbound(tw.media_message("MZ1", ulaw)) == tw.OutboundMedia("MZ1", ulaw)
    assert tw.parse_outbound(tw.mark_message("MZ1", "r3.2")) == tw.OutboundMark("MZ1", "r3.2")
    assert tw.parse_outbound(tw.clear_message("MZ1")) == tw.OutboundClear("MZ1")
    assert json.loads(tw.clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


def media_with(payload: str) -> str:
    return json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}})


def start_with_format(encoding: str, rate: int, channels: int = 1) -> str:
    message = json.loads(load("twilio/start.json"))
    message["start"]["mediaFormat"] = {"encoding": encoding, "sampleRate": rate, "channels": channels}
    return json.dumps(message)


@pytest.mark.parametrize("text, words", [
    ('{"event": "start", ', "invalid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"no": "event"}', "no 'event'"),
    ('{"event": "teleport"}', "unknown event"),
    ('{"event": "media"}', "'media'"),
    (media_with("***not base64***"), "base64"),
    ('{"event": "start", "start": {"streamSid": "MZ1"}}', "callSid"),
    (start_with_format("audio/l16", 16000), "unsupported media format"),
    (start_with_format("audio/x-mulaw", 8000, 2), "unsupported media format"),
    ('{"event": "dtmf", "dtmf": {"digit": "x"}}', "not a DTMF digit"),
    ('{"event": "dtmf", "dtmf": {"digit": "12"}}', "not a DTMF digit"),
    ('{"event": "mark", "mark": {}}', "'name'"),
    ('{"event": "media", "media": {"payload": "", "chunk": "x"}}', "'media'"),
    (b"\xff\xfe", "invalid JSON"),
])
def test_malformed_messages_raise_one_precise_error(text, words):
    with pytest.raises(tw.TwilioProtocolError, match=words):
        tw.parse_inbound(text)


def test_the_error_is_a_value_error_so_callers_can_catch_broadly():
    assert issubclass(tw.TwilioProtocolError, ValueError)


def test_media_payload_is_base64_in_both_directions():
    ulaw = bytes([0x12, 0x34])
    message = json.loads(tw.media_message("MZ1", ulaw))
    assert base64.b64decode(message["media"]["payload"]) == ulaw
