"""telephony.rtp.dtmf: RFC 4733 events, one digit per key press, and sending digits."""

from __future__ import annotations

import random

import pytest

from telephony.rtp.dtmf import DtmfReceiver, DtmfSender, TelephoneEvent, event_for
from telephony.rtp.packet import RtpError, RtpPacket, RtpSender

pytestmark = pytest.mark.unit


def test_event_payload_is_parsed_and_written() -> None:
    data = bytes.fromhex("0b8a0320")  # event 11 (#), end, volume 10, duration 800
    event = TelephoneEvent.parse(data)
    assert event == TelephoneEvent(11, end=True, volume=10, duration=800)
    assert event.digit == "#" and bytes(event) == data


def test_the_reserved_bit_is_ignored_and_flash_is_no_digit() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("10400000")) == TelephoneEvent(16, False, 0, 0)
    assert TelephoneEvent(16).digit is None


@pytest.mark.parametrize("data", [b"", b"\x01\x02\x03"])
def test_short_payloads_raise_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        TelephoneEvent.parse(data)


def sequence(digit: str, *, sender: RtpSender | None = None, duration_ms: int = 100
             ) -> list[RtpPacket]:
    sender = sender or RtpSender(0, ssrc=9, sequence_number=100, timestamp=8000)
    return DtmfSender(sender, 101).packets(digit, duration_ms=duration_ms)


def test_sender_builds_updates_then_three_end_packets_at_one_timestamp() -> None:
    sender = RtpSender(0, ssrc=9, sequence_number=100, timestamp=8000)
    packets = sequence("5", sender=sender, duration_ms=100)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {5} and {p.timestamp for p in packets} == {8000}
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [p.sequence_number for p in packets] == list(range(100, 107))
    assert {p.payload_type for p in packets} == {101}
    assert sender.timestamp == 8800  # the audio resumes after the event
    assert sender.audio(b"").sequence_number == 107


def test_a_short_digit_is_only_end_packets_the_first_marked() -> None:
    packets = sequence("1", duration_ms=20)
    assert [TelephoneEvent.parse(p.payload).end for p in packets] == [True] * 3
    assert [p.marker for p in packets] == [True, False, False]


def test_bad_digits_and_durations_are_refused() -> None:
    with pytest.raises(ValueError):
        event_for("x")
    with pytest.raises(ValueError):
        sequence("1", duration_ms=10_000)


def test_receiver_reports_each_press_exactly_once() -> None:
    receiver = DtmfReceiver()
    sender = RtpSender(0, ssrc=9, sequence_number=0, timestamp=0)
    got = []
    for digit in "1#1":
        for packet in sequence(digit, sender=sender):
            got.append(receiver.receive(packet))
        sender.silence(400)
    assert [d for d in got if d] == ["1", "#", "1"] and receiver.digits == 3


def test_receiver_survives_loss_duplicates_and_reordering() -> None:
    rng = random.Random(4733)
    sender = RtpSender(0, ssrc=9, sequence_number=0, timestamp=0)
    for digit in "0123456789*#ABCD":
        packets = sequence(digit, sender=sender)
        sender.silence()
        received = [p for p in packets if rng.random() > 0.3] or packets[-1:]
        received += rng.sample(received, k=min(2, len(received)))
        rng.shuffle(received)
        receiver = DtmfReceiver()
        assert [d for p in received if (d := receiver.receive(p))] == [digit]


def test_a_late_packet_of_an_earlier_press_is_not_a_new_press() -> None:
    receiver = DtmfReceiver()
    sender = RtpSender(0, ssrc=9, sequence_number=0, timestamp=0)
    first, second = sequence("4", sender=sender), sequence("4", sender=sender)
    assert receiver.receive(first[0]) == "4"
    assert receiver.receive(second[0]) == "4"
    assert receiver.receive(first[-1]) is None


def test_the_next_segment_of_a_long_press_is_the_same_press() -> None:
    receiver = DtmfReceiver()
    start = RtpPacket(101, 1, 1000, 9, bytes(TelephoneEvent(7, duration=0xFFFF)), marker=True)
    nxt = RtpPacket(101, 2, 1000 + 0xFFFF, 9, bytes(TelephoneEvent(7, duration=160)))
    end = RtpPacket(101, 3, 1000 + 0xFFFF, 9, bytes(TelephoneEvent(7, end=True, duration=800)))
    assert [receiver.receive(p) for p in (start, nxt, end)] == ["7", None, None]


def test_non_digit_events_are_counted_but_not_reported() -> None:
    receiver = DtmfReceiver()
    flash = RtpPacket(101, 1, 0, 9, bytes(TelephoneEvent(16)), marker=True)
    assert receiver.receive(flash) is None and receiver.ignored == 1
