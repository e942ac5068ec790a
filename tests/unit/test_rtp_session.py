"""``RtpSession`` over loopback UDP, and the SIP serializer on top of it."""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import InputAudioRawFrame, InputDTMFFrame, OutputAudioRawFrame

from telephony.audio import pcm16_to_ulaw
from telephony.frames import CallStartedFrame
from telephony.rtp.dtmf import DtmfSender
from telephony.rtp.packet import RtpPacket, RtpSender
from telephony.rtp.session import RtpSession
from telephony.sip.sdp import PCMA, PCMU, Direction, MediaSession
from telephony.sip.serializer import SipSerializer
from tests.sip_peer import FakeSession, Udp

pytestmark = pytest.mark.unit


def media(port: int, *, codec=PCMU, direction=Direction.SENDRECV, address="127.0.0.1"):
    return MediaSession(codec, 101, address, port, direction, 20)


@pytest.fixture
async def pair():
    rtp = RtpSession("127.0.0.1", fill_after_s=5.0)
    await rtp.open()
    peer = await Udp.open()
    rtp.configure(media(peer.port))
    yield rtp, peer
    await rtp.close()
    peer.close()


def tone(samples: int = 160) -> bytes:
    return b"".join((1000 if i % 16 < 8 else -1000).to_bytes(2, "little", signed=True)
                    for i in range(samples))


async def test_a_port_from_the_configured_range_is_bound():
    rtp = RtpSession("127.0.0.1", ports=(40100, 40111))
    await rtp.open()
    try:
        assert 40100 <= rtp.port <= 40111 and rtp.port % 2 == 0
    finally:
        await rtp.close()


async def test_audio_packets_are_decoded_in_order_and_counted(pair):
    rtp, peer = pair
    sender = RtpSender(0, sequence_number=100)
    packets = [sender.audio(pcm16_to_ulaw(tone())) for _ in range(3)]
    for packet in (packets[0], packets[2], packets[1]):
        peer.send(bytes(packet), ("127.0.0.1", rtp.port))
    received = [await asyncio.wait_for(rtp.receive(), 1) for _ in range(3)]
    assert all(isinstance(chunk, bytes) and len(chunk) == 320 for chunk in received)
    assert rtp.stats.packets_in == 3 and rtp.stats.garbage == 0


async def test_rtp_from_an_unexpected_address_is_ignored_and_counted():
    rtp = RtpSession("127.0.0.1", fill_after_s=5.0)
    await rtp.open()
    stranger = await Udp.open()
    try:
        rtp.configure(media(4000, address="127.0.0.2"))  # the SDP names another host
        stranger.send(bytes(RtpSender(0).audio(bytes(160))), ("127.0.0.1", rtp.port))
        await asyncio.sleep(0.05)
        assert rtp.stats.unexpected_source == 1 and rtp.stats.packets_in == 0
    finally:
        await rtp.close()
        stranger.close()


async def test_garbage_and_unnegotiated_payload_types_are_ignored_and_counted(pair):
    rtp, peer = pair
    peer.send(b"\x00\x01\x02", ("127.0.0.1", rtp.port))  # not RTP
    peer.send(bytes(RtpPacket(18, 1, 0, 7, b"\x00" * 10)), ("127.0.0.1", rtp.port))  # G.729
    peer.send(bytes(RtpPacket(101, 2, 0, 7, b"\x01")), ("127.0.0.1", rtp.port))  # short event
    await asyncio.sleep(0.05)
    assert rtp.stats.garbage == 3 and rtp.stats.packets_in == 0


async def test_dtmf_events_become_one_digit_per_press(pair):
    rtp, peer = pair
    for packet in DtmfSender(RtpSender(0), 101).packets("5", duration_ms=100):
        peer.send(bytes(packet), ("127.0.0.1", rtp.port))
    assert await asyncio.wait_for(rtp.receive(), 1) == "dtmf:5"
    await asyncio.sleep(0.05)
    assert rtp.stats.dtmf == 1


async def test_outgoing_audio_is_20ms_packets_with_a_marker_at_the_start(pair):
    rtp, peer = pair
    await rtp.send(tone(160 * 2 + 80))  # two packets and a half
    await rtp.send(tone(80))  # the rest of the third
    got = [RtpPacket.parse((await peer.receive())[0]) for _ in range(3)]
    assert [p.marker for p in got] == [True, False, False]
    assert all(len(p.payload) == 160 and p.payload_type == 0 for p in got)
    assert got[1].timestamp - got[0].timestamp == 160


async def test_symmetric_rtp_answers_where_the_audio_comes_from(pair):
    rtp, peer = pair
    other_port = await Udp.open()
    try:
        rtp.configure(media(9, direction=Direction.SENDRECV))  # SDP says port 9 (discard)
        other_port.send(bytes(RtpSender(0).audio(bytes(160))), ("127.0.0.1", rtp.port))
        await asyncio.wait_for(rtp.receive(), 1)
        await rtp.send(tone())
        data, _ = await other_port.receive()
        assert RtpPacket.parse(data).payload_type == 0
    finally:
        other_port.close()


async def test_on_hold_nothing_is_sent(pair):
    rtp, peer = pair
    rtp.configure(media(peer.port, direction=Direction.RECVONLY))
    await rtp.send(tone(160 * 4))
    await asyncio.sleep(0.05)
    assert rtp.held and rtp.stats.packets_out == 0 and not peer.drain()


async def test_pcma_is_encoded_as_a_law(pair):
    rtp, peer = pair
    rtp.configure(media(peer.port, codec=PCMA))
    await rtp.send(tone())
    assert RtpPacket.parse((await peer.receive())[0]).payload_type == 8


async def test_silence_fills_in_when_no_rtp_comes():
    rtp = RtpSession("127.0.0.1", fill_after_s=0.05)
    await rtp.open()
    try:
        rtp.configure(media(4000))
        chunk = await asyncio.wait_for(rtp.receive(), 1)
        assert chunk == bytes(2 * 400) and rtp.stats.filled == 1
    finally:
        await rtp.close()
    assert await rtp.receive() is None


async def test_the_serializer_starts_the_call_and_turns_rtp_into_frames():
    hooks = FakeSession("sip")
    serializer = SipSerializer(hooks=hooks, call_id="c1", caller="5550100")
    started = await serializer.deserialize("start")
    assert isinstance(started, CallStartedFrame) and started.channel == "sip"
    assert hooks.call_id == "c1" and hooks.caller == "5550100"
    frames = [await serializer.deserialize(tone(160)) for _ in range(5)]
    audio = [f for f in frames if f is not None]
    assert audio and all(isinstance(f, InputAudioRawFrame) and f.sample_rate == 16_000
                         for f in audio)
    digit = await serializer.deserialize("dtmf:#")
    assert isinstance(digit, InputDTMFFrame) and digit.button.value == "#"
    assert await serializer.deserialize("dtmf:A") is None
    assert hooks.events == [("dtmf_ignored", {"digit": "A"})]
    out = await serializer.serialize(OutputAudioRawFrame(audio=tone(320), sample_rate=16_000,
                                                         num_channels=1))
    assert isinstance(out, bytes) and 0 < len(out) <= 320
