import uuid

import pytest

from telephony.asterisk.audiosocket import (
    Audio,
    AudioSocketError,
    AudioSocketParser,
    Dtmf,
    Error,
    Hangup,
    Uuid,
    parse_packet,
    parse_packets,
)
from tests.fixtures.load import load_bytes

pytestmark = pytest.mark.unit

DOC_UUID = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")  # the docs' example call


def test_the_documented_hangup_is_three_zero_bytes():
    assert parse_packet(load_bytes("asterisk/hangup.bin")) == Hangup()
    assert bytes(Hangup()) == b"\x00\x00\x00"


def test_a_uuid_packet_carries_the_call_id_in_binary():
    packet = parse_packet(load_bytes("asterisk/uuid.bin"))
    assert packet == Uuid(DOC_UUID)
    assert str(packet) == "40325ec2-5efd-4bd3-805f-53576e581d13"
    assert Uuid.from_string("40325EC2-5EFD-4BD3-805F-53576E581D13") == packet


def test_a_dtmf_packet_is_one_ascii_digit():
    assert parse_packet(load_bytes("asterisk/dtmf.bin")) == Dtmf("7")


def test_audio_is_8khz_slin_by_default_and_20ms_is_320_bytes():
    packet = parse_packet(load_bytes("asterisk/audio.bin"))
    assert isinstance(packet, Audio)
    assert (packet.rate, len(packet.pcm), packet.kind) == (8000, 320, 0x10)


def test_higher_rate_audio_kinds_map_to_their_rates():
    packet = parse_packet(b"\x12\x00\x04" + b"\x01\x00\x02\x00")
    assert packet == Audio(b"\x01\x00\x02\x00", 16_000)
    assert bytes(Audio(b"\x00\x00", 48_000))[:1] == b"\x16"


def test_asterisks_error_code_for_a_caller_hang_up_is_understood():
    packet = parse_packet(load_bytes("asterisk/error.bin"))
    assert packet == Error(b"\x01")
    assert packet.caller_hung_up and packet.describe() == "the caller hung up"
    assert Error(b"\x06").describe() == "a frame could not be forwarded, Asterisk ran out of memory"
    assert Error().describe() == "error (no code)" and not Error().caller_hung_up


@pytest.mark.parametrize("name", ["hangup", "uuid", "dtmf", "audio", "error", "call"])
def test_every_fixture_round_trips_byte_for_byte(name):
    data = load_bytes(f"asterisk/{name}.bin")
    packets, rest = parse_packets(data)
    assert rest == b""
    assert b"".join(bytes(p) for p in packets) == data


def test_a_call_fed_one_byte_at_a_time_gives_the_same_packets():
    data = load_bytes("asterisk/call.bin")
    whole, _ = parse_packets(data)
    parser = AudioSocketParser()
    pieces = [p for i in range(len(data)) for p in parser.feed(data[i:i + 1])]
    assert pieces == whole
    assert [type(p).__name__ for p in whole] == ["Uuid", "Audio", "Audio", "Audio", "Dtmf",
                                                 "Audio", "Hangup"]
    assert parser.pending == 0


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_split_anywhere_keeps_the_incomplete_packet_for_later(cut):
    data = load_bytes("asterisk/call.bin")
    parser = AudioSocketParser()
    first = parser.feed(data[:cut])
    assert parser.pending == cut - sum(len(bytes(p)) for p in first)
    assert first + parser.feed(data[cut:]) == parse_packets(data)[0]


def test_an_unknown_kind_is_refused_as_soon_as_its_header_arrives():
    with pytest.raises(AudioSocketError, match="unknown packet kind 0x42"):
        AudioSocketParser().feed(b"\x42\x00\x05")


def test_the_packets_before_a_bad_one_are_kept_and_the_error_comes_next():
    parser = AudioSocketParser()
    assert parser.feed(load_bytes("asterisk/uuid.bin") + b"\x42\x00\x00") == [Uuid(DOC_UUID)]
    assert "unknown packet kind 0x42" in str(parser.error)
    with pytest.raises(AudioSocketError, match="already broken"):
        parser.feed(b"")


def test_an_oversized_length_is_refused_before_the_payload_is_awaited():
    parser = AudioSocketParser(max_payload=1024)
    with pytest.raises(AudioSocketError, match="announces 2000 bytes"):
        parser.feed(b"\x10\x07\xd0")
    with pytest.raises(AudioSocketError, match="already broken"):
        parser.feed(b"\x00\x00\x00")


@pytest.mark.parametrize("data, problem", [
    (b"\x01\x00\x04abcd", "UUID packet carries 16 bytes, got 4"),
    (b"\x03\x00\x02" + b"12", "DTMF packet carries 1 byte, got 2"),
    (b"\x03\x00\x01" + b"x", "'x' is not a DTMF digit"),
    (b"\x10\x00\x03" + b"abc", "even number of bytes"),
    (b"\x00\x00\x01" + b"!", "hang-up packet carries no payload"),
])
def test_malformed_payloads_raise_audiosocket_error(data, problem):
    with pytest.raises(AudioSocketError, match=problem):
        parse_packets(data)


def test_parse_packet_wants_exactly_one_packet():
    with pytest.raises(AudioSocketError, match="exactly one packet"):
        parse_packet(bytes(Hangup()) * 2)
    with pytest.raises(AudioSocketError, match="exactly one packet"):
        parse_packet(b"\x10\x00")


def test_packets_refuse_what_they_cannot_encode():
    with pytest.raises(AudioSocketError, match="no audio kind for 11025 Hz"):
        Audio(b"", 11_025)
    with pytest.raises(AudioSocketError, match="not a UUID"):
        Uuid.from_string("call-1")
    with pytest.raises(AudioSocketError, match="16-bit length"):
        bytes(Audio(bytes(70_000)))
