"""Browser-call signalling, pure: the offer a page may send, the ICE server setting, and the
data-channel messages (captions, call state, hang-up)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from telephony.webrtc.captions import call_message, caption_message, is_hangup
from telephony.webrtc.signalling import (
    MAX_OFFER_BYTES,
    IceServer,
    IceServerError,
    OfferError,
    OfferTooLarge,
    parse_ice_servers,
    parse_offer,
)
from voice.settings import Settings

pytestmark = pytest.mark.unit

SDP = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
       "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n"
       "a=fingerprint:sha-256 AB:CD\r\na=rtpmap:111 opus/48000/2\r\n")


def body(**fields: object) -> bytes:
    return json.dumps({"sdp": SDP, "type": "offer", **fields}).encode()


# --- offers ------------------------------------------------------------------------------

def test_an_audio_offer_is_accepted():
    offer = parse_offer(body())
    assert offer.sdp == SDP and offer.type == "offer" and offer.pc_id is None


def test_an_offer_may_name_the_connection_it_renegotiates():
    pc_id = "SmallWebRTCConnection#0-3f2a9c0d1e2f4a5b8c7d6e5f4a3b2c1d"
    assert parse_offer(body(pc_id=pc_id)).pc_id == pc_id


def test_a_body_that_is_not_json_is_a_clear_400():
    with pytest.raises(OfferError, match="must be JSON") as error:
        parse_offer(b"v=0\r\n")
    assert error.value.status == 400


@pytest.mark.parametrize("data, reason", [
    (b"[1, 2]", "JSON object"),
    (json.dumps({"sdp": SDP, "type": "answer"}).encode(), "must be \"offer\""),
    (json.dumps({"type": "offer"}).encode(), "session description"),
    (json.dumps({"sdp": "hello", "type": "offer"}).encode(), "session description"),
    (json.dumps({"sdp": SDP.replace("m=audio", "m=video"), "type": "offer"}).encode(),
     "no audio"),
    (json.dumps({"sdp": SDP.replace("a=fingerprint", "a=finger"), "type": "offer"}).encode(),
     "fingerprint"),
    (body(pc_id="../../etc"), "pc_id"),
    (body(pc_id=12), "pc_id"),
])
def test_a_malformed_offer_says_what_is_wrong(data, reason):
    with pytest.raises(OfferError, match=reason):
        parse_offer(data)


def test_a_body_over_the_size_limit_is_refused_with_413():
    with pytest.raises(OfferTooLarge) as error:
        parse_offer(body(pad="x" * MAX_OFFER_BYTES))
    assert error.value.status == 413


# --- ICE servers -------------------------------------------------------------------------

def test_no_ice_servers_by_default():
    assert parse_ice_servers("") == [] and parse_ice_servers(None) == []
    assert Settings().webrtc_ice_servers == ""


def test_a_comma_separated_list_of_stun_urls():
    assert parse_ice_servers("stun:stun.example.com:3478, stun:stun2.example.com") == [
        IceServer(urls=("stun:stun.example.com:3478",)),
        IceServer(urls=("stun:stun2.example.com",)),
    ]


def test_json_turn_servers_with_credentials_as_the_browser_takes_them():
    servers = parse_ice_servers(json.dumps([
        {"urls": ["turn:turn.example.com:3478?transport=udp",
                  "turns:turn.example.com:5349"], "username": "u", "credential": "p"},
        "stun:stun.example.com",
    ]))
    assert servers[0].to_browser() == {
        "urls": ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
        "username": "u", "credential": "p"}
    assert servers[1].to_browser() == {"urls": ["stun:stun.example.com"]}
    assert parse_ice_servers('{"urls": "stun:stun.example.com"}') == [
        IceServer(urls=("stun:stun.example.com",))]


@pytest.mark.parametrize("value, reason", [
    ("http://stun.example.com", "starts with stun:"),
    ("turn:turn.example.com:3478", "username and a credential"),
    ('[{"urls": "turn:t.example.com", "username": "u"}]', "username and a credential"),
    ('[{"urls": []}]', "needs \"urls\""),
    ('[{"urls": "stun:s.example.com", "password": "p"}]', "unknown ICE server field"),
    ('[{"urls": "stun:s.example.com"', "not valid JSON"),
    ("[42]", "a URL or an object"),
])
def test_a_bad_ice_server_setting_says_what_is_wrong(value, reason):
    with pytest.raises(IceServerError, match=reason):
        parse_ice_servers(value)


def test_the_service_refuses_to_start_with_a_bad_ice_server_setting():
    with pytest.raises(ValidationError, match="stun:"):
        Settings(webrtc_ice_servers="stun.example.com")
    assert Settings(webrtc_ice_servers="stun:stun.example.com").webrtc_max_calls == 8


# --- data-channel messages ---------------------------------------------------------------

def test_each_turn_becomes_a_caption_with_an_id_stable_per_turn():
    turn = {"speaker": "caller", "text": "  How long do I\nhave? ", "start_ms": 7872,
            "end_ms": 9824, "intent": "returns_refunds"}
    assert caption_message(turn) == {"type": "caption", "id": "caller-7872",
                                     "speaker": "caller", "text": "How long do I have?",
                                     "final": True}
    spoken = caption_message({"speaker": "assistant", "text": "You can return",
                              "start_ms": 10436}, final=False)
    heard = caption_message({"speaker": "assistant", "text": "You can", "start_ms": 10436})
    assert spoken["id"] == heard["id"] and (spoken["final"], heard["final"]) == (False, True)
    assert caption_message({"speaker": "agent", "text": "Hi", "start_ms": 0})["id"] == "agent-0"


def test_captions_are_bounded_and_only_for_the_three_speakers():
    assert len(caption_message({"speaker": "agent", "text": "a " * 5000})["text"]) == 2000
    with pytest.raises(ValueError, match="speaker"):
        caption_message({"speaker": "system", "text": "x"})


def test_call_state_messages():
    assert call_message("connected", "WR1") == {"type": "call", "state": "connected",
                                                "call_id": "WR1"}
    with pytest.raises(ValueError):
        call_message("ringing", "WR1")


@pytest.mark.parametrize("message, hangup", [
    ({"type": "hangup"}, True),
    ('{"type": "hangup"}', True),
    ({"type": "caption"}, False),
    ("ping", False),
    ("[1]", False),
    ('{"type": "hangup", "pad": "' + "x" * 5000 + '"}', False),
    (None, False),
])
def test_the_page_hangs_up_with_one_message(message, hangup):
    assert is_hangup(message) is hangup
