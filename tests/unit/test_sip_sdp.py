"""telephony.sip.sdp: SDP parsing and building, and G.711 offer/answer with hold."""

from __future__ import annotations

import pytest

from telephony.sip.errors import SdpError
from telephony.sip.message import parse_message
from telephony.sip.sdp import (
    PCMA,
    PCMU,
    Answer,
    Codec,
    Connection,
    Direction,
    SessionDescription,
    accept_answer,
    answer_offer,
    make_offer,
)
from tests.fixtures.sip import load

pytestmark = pytest.mark.unit



def answer(offer: SessionDescription, *, address: str = "192.0.2.10",
           session_version: int = 1) -> Answer:
    return answer_offer(offer, address=address, port=30000, session_id=77,
                        session_version=session_version)


def body(name: str) -> bytes:
    return parse_message(load(name)).body


def sdp_with(media_lines: str, *, connection: str = "c=IN IP4 198.51.100.7") -> bytes:
    head = f"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\n{connection}\r\nt=0 0\r\n"
    return (head + media_lines.replace("\n", "\r\n") + "\r\n").encode()


# ------------------------------------------------------------------------------ parsing
def test_baresip_offer_is_parsed() -> None:
    sdp = SessionDescription.parse(body("invite_baresip.sip"))
    assert sdp.origin.session_id == 1466023521 and sdp.connection == Connection("198.51.100.7")
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.protocol) == ("audio", 10322, "RTP/AVP")
    assert audio.formats == ["96", "9", "0", "8", "101"]
    assert [c.name for c in audio.codecs()] == ["opus", "G722", "PCMU", "PCMA", "telephone-event"]
    assert audio.codecs()[0] == Codec(96, "opus", 48000, 2)
    assert audio.fmtp(101) == "0-15" and audio.ptime == 20 and audio.bandwidths == ["AS:98"]
    assert sdp.direction(audio) is Direction.SENDRECV


def test_static_payload_types_need_no_rtpmap() -> None:
    sdp = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 8 0 18"))
    assert sdp.media[0].codecs() == [PCMA, PCMU, Codec(18, "G729")]


def test_sdp_round_trips() -> None:
    for name in ("invite_baresip.sip", "invite_sipp.sip", "ok_agent.sip"):
        sdp = SessionDescription.parse(body(name))
        assert SessionDescription.parse(bytes(sdp)) == sdp
    assert bytes(SessionDescription.parse(body("invite_baresip.sip"))) == body("invite_baresip.sip")


@pytest.mark.parametrize("text", [
    b"", b"v=1\r\n", b"v=0\r\no=- 1\r\n", b"v=0\r\ns=-\r\n", b"v=0\r\no=- 1 1 IN IP4 h\r\nbad\r\n",
    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n", b"v=0\r\no=- x 1 IN IP4 h\r\n",
    b"\xff\xfe", b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 99999 RTP/AVP 0\r\n",
])
def test_unreadable_sdp_raises_sdp_error_with_400(text: bytes) -> None:
    with pytest.raises(SdpError) as caught:
        SessionDescription.parse(text)
    assert caught.value.status == 400


# ------------------------------------------------------------------------------ answering
def test_answer_prefers_pcmu_keeps_the_offerers_event_type_and_uses_our_address() -> None:
    offer = SessionDescription.parse(body("invite_baresip.sip"))
    answered = answer(offer)
    session = answered.session
    assert session.codec == PCMU and session.telephone_event == 101
    assert (session.remote_address, session.remote_port) == ("198.51.100.7", 10322)
    assert session.direction is Direction.SENDRECV and not session.held and session.ptime == 20
    text = bytes(answered.sdp).decode()
    assert "o=- 77 1 IN IP4 192.0.2.10\r\n" in text and "c=IN IP4 192.0.2.10\r\n" in text
    assert "m=audio 30000 RTP/AVP 0 101\r\n" in text
    assert "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n" in text
    assert "a=ptime:20\r\na=sendrecv\r\n" in text


def test_we_ask_for_20_ms_packets_and_send_what_the_offer_asks_for() -> None:
    offer = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 0\na=ptime:30"))
    answered = answer(offer)
    assert answered.sdp.media[0].ptime == 20
    assert answered.session.ptime == 30 and answered.session.samples_per_packet == 240
    odd = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 0\na=ptime:7"))
    assert answer(odd).session.ptime == 20


def test_answer_takes_pcma_when_that_is_all_there_is() -> None:
    offer = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 8 96\n"
                                              "a=rtpmap:96 telephone-event/8000"))
    session = answer(offer).session
    assert session.codec == PCMA and session.telephone_event == 96


def test_answer_without_telephone_event_offered_has_none() -> None:
    offer = SessionDescription.parse(body("invite_sipp.sip"))
    answered = answer(offer)
    assert answered.session.telephone_event is None
    assert answered.sdp.media[0].formats == ["0"]


def test_answer_refuses_other_streams_with_port_zero() -> None:
    offer = SessionDescription.parse(sdp_with(
        "m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
        "m=audio 4000 RTP/SAVP 0\n"
        "m=audio 4002 RTP/AVP 0\n"
        "m=audio 4004 RTP/AVP 8"))
    answered = answer(offer)
    assert [m.port for m in answered.sdp.media] == [0, 0, 30000, 0]
    assert answered.session.remote_port == 4002


def test_no_common_codec_raises_sdp_error_with_488() -> None:
    offer = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 96 9\n"
                                              "a=rtpmap:96 opus/48000/2"))
    with pytest.raises(SdpError, match="opus") as caught:
        answer(offer)
    assert caught.value.status == 488


def test_media_level_connection_wins_over_session_level() -> None:
    offer = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 0\nc=IN IP4 203.0.113.8"))
    assert answer(offer).session.remote_address == "203.0.113.8"


def test_ipv6_answer_says_ip6() -> None:
    offer = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 0",
                                              connection="c=IN IP6 2001:db8::7"))
    answered = answer(offer, address="2001:db8::10")
    assert "c=IN IP6 2001:db8::10" in str(answered.sdp)
    assert answered.session.remote_address == "2001:db8::7"


# ------------------------------------------------------------------------------ hold
def test_sendonly_reinvite_is_hold_and_is_answered_recvonly() -> None:
    offer = SessionDescription.parse(body("reinvite_hold.sip"))
    answered = answer(offer, session_version=2)
    assert answered.session.held and answered.session.direction is Direction.RECVONLY
    assert "a=recvonly" in str(answered.sdp)


@pytest.mark.parametrize("attribute, ours", [
    ("a=sendrecv", Direction.SENDRECV), ("a=sendonly", Direction.RECVONLY),
    ("a=recvonly", Direction.SENDONLY), ("a=inactive", Direction.INACTIVE),
])
def test_each_offered_direction_gets_its_mirror(attribute: str, ours: Direction) -> None:
    offer = SessionDescription.parse(sdp_with(f"m=audio 4000 RTP/AVP 0\n{attribute}"))
    assert answer(offer).session.direction is ours


def test_session_level_direction_applies_when_the_stream_has_none() -> None:
    text = sdp_with("m=audio 4000 RTP/AVP 0").replace(b"t=0 0\r\n", b"t=0 0\r\na=inactive\r\n")
    assert answer(SessionDescription.parse(text)).session.direction is (
        Direction.INACTIVE)


def test_old_style_hold_with_zero_address_is_detected() -> None:
    offer = SessionDescription.parse(sdp_with("m=audio 4000 RTP/AVP 0",
                                              connection="c=IN IP4 0.0.0.0"))
    session = answer(offer).session
    assert session.held and session.direction is Direction.RECVONLY


def test_unhold_reinvite_is_sendrecv_again() -> None:
    offer = SessionDescription.parse(body("reinvite_hold.sip").replace(b"sendonly", b"sendrecv"))
    assert not answer(offer).session.held


def test_direction_reversal() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE


# ------------------------------------------------------------------------------ calling out
def test_offer_then_agents_answer_give_the_agreed_session() -> None:
    offer = make_offer(address="192.0.2.10", port=30002, session_id=5, session_version=1)
    assert "m=audio 30002 RTP/AVP 0 8 101" in str(offer)
    session = accept_answer(offer, SessionDescription.parse(body("ok_agent.sip")))
    assert session.codec == PCMA and session.telephone_event == 101
    assert (session.remote_address, session.remote_port) == ("192.0.2.30", 40000)
    assert session.direction is Direction.SENDRECV


def test_an_answer_with_a_codec_we_did_not_offer_is_refused() -> None:
    offer = make_offer(address="192.0.2.10", port=30002, session_id=5, session_version=1,
                       codecs=(PCMU,))
    with pytest.raises(SdpError):
        accept_answer(offer, SessionDescription.parse(body("ok_agent.sip")))


def test_our_offer_answered_by_ourselves_agrees() -> None:
    offer = make_offer(address="192.0.2.10", port=30002, session_id=5, session_version=1)
    answered = answer(SessionDescription.parse(bytes(offer)))
    assert accept_answer(offer, SessionDescription.parse(bytes(answered.sdp))).codec == PCMU
