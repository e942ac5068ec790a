"""telephony.rtp.packet: RTP packets byte for byte, and the numbering of our outgoing stream."""

from __future__ import annotations

import random

import pytest

from telephony.rtp.packet import RtpError, RtpExtension, RtpPacket, RtpSender, is_rtcp

pytestmark = pytest.mark.unit

# A PCMU packet as a phone sends it: V=2, M=1, PT=0, seq 0x1234, ts 0x000055F0, SSRC 0xDEADBEEF.
PLAIN = bytes.fromhex("80801234000055f0deadbeef") + b"\xff" * 160


def test_a_plain_packet_is_parsed() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert packet == RtpPacket(0, 0x1234, 0x55F0, 0xDEADBEEF, b"\xff" * 160, marker=True)


def test_csrc_extension_and_padding_are_parsed_and_written_back_exactly() -> None:
    data = (bytes([0x80 | 0x20 | 0x10 | 2, 8]) + bytes.fromhex("0001 00000002 00000003")
            + bytes.fromhex("00000011 00000022")  # two CSRCs
            + bytes.fromhex("bede 0001 10ff0000")  # a one-byte-header extension, one word
            + b"\xd5" * 4 + b"\x00\x00\x03")  # payload, then 3 bytes of padding
    packet = RtpPacket.parse(data)
    assert packet.csrc == (0x11, 0x22)
    assert packet.extension == RtpExtension(0xBEDE, bytes.fromhex("10ff0000"))
    assert packet.payload == b"\xd5" * 4 and packet.padding == b"\x00\x00\x03"
    assert packet.payload_type == 8 and not packet.marker
    assert bytes(packet) == data


@pytest.mark.parametrize("data", [PLAIN, PLAIN[:12], bytes.fromhex("90000001000000000000000a"
                                                                   "12340000")])
def test_parse_then_bytes_is_the_identity(data: bytes) -> None:
    assert bytes(RtpPacket.parse(data)) == data


@pytest.mark.parametrize("data, problem", [
    (b"", "shorter"), (PLAIN[:11], "shorter"), (b"\x40" + PLAIN[1:], "version"),
    (b"\x83" + PLAIN[1:20], "CSRC"), (b"\x90" + PLAIN[1:12] + b"\x00\x01", "extension"),
    (b"\x90" + PLAIN[1:12] + b"\x00\x01\x00\x05abcd", "extension"),
    (b"\xa0" + PLAIN[1:12] + b"\x00", "padding"), (b"\xa0" + PLAIN[1:12] + b"ab\x09", "padding"),
])
def test_garbage_raises_rtp_error(data: bytes, problem: str) -> None:
    with pytest.raises(RtpError, match=problem):
        RtpPacket.parse(data)


def test_out_of_range_fields_cannot_be_built() -> None:
    with pytest.raises(RtpError):
        RtpPacket(128, 0, 0, 0)
    with pytest.raises(RtpError):
        RtpPacket(0, 2**16, 0, 0)
    with pytest.raises(RtpError):
        RtpPacket(0, 0, 0, 0, padding=b"\x00\x05")


def test_rtcp_is_told_apart_from_rtp() -> None:
    assert is_rtcp(bytes.fromhex("80c80006")) and not is_rtcp(PLAIN)


def test_sender_numbers_packets_and_counts_samples() -> None:
    sender = RtpSender(0, ssrc=7, sequence_number=65534, timestamp=2**32 - 160)
    packets = [sender.audio(b"\xff" * 160) for _ in range(3)]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0]
    assert [p.timestamp for p in packets] == [2**32 - 160, 0, 160]
    assert [p.marker for p in packets] == [True, False, False]
    assert {p.ssrc for p in packets} == {7} and sender.packets_sent == 3
    assert sender.octets_sent == 480


def test_marker_is_set_on_the_first_packet_after_silence() -> None:
    sender = RtpSender(8, ssrc=1, sequence_number=0, timestamp=0)
    sender.audio(b"a")
    sender.silence(800)
    packet = sender.audio(b"b")
    assert packet.marker and packet.timestamp == 960 and packet.sequence_number == 1
    assert not sender.audio(b"c").marker


def test_sender_starts_at_random_values_repeatably_with_a_seeded_rng() -> None:
    one = RtpSender(0, rng=random.Random(5)).audio(b"")
    two = RtpSender(0, rng=random.Random(5)).audio(b"")
    assert one == two and RtpPacket.parse(bytes(one)) == one
