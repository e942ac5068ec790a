"""telephony.rtp.jitter: reordering, duplicates, late packets, losses and wrap-around."""

from __future__ import annotations

import pytest

from telephony.rtp.jitter import JitterBuffer, Lost
from telephony.rtp.packet import RtpPacket

pytestmark = pytest.mark.unit


def pkt(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(0, seq % 2**16, seq * 160 % 2**32, ssrc, b"x")


def seqs(items: list[RtpPacket | Lost]) -> list[int | str]:
    return [f"lost {i.sequence_number}+{i.count}" if isinstance(i, Lost) else i.sequence_number
            for i in items]


def push_all(buffer: JitterBuffer, order: list[int], now: float | None = None) -> list[int | str]:
    out: list[int | str] = []
    for seq in order:
        out += seqs(buffer.push(pkt(seq), now))
    return out


def test_packets_in_order_leave_at_once() -> None:
    buffer = JitterBuffer()
    assert [seqs(buffer.push(pkt(s))) for s in (10, 11, 12)] == [[10], [11], [12]]


def test_a_swapped_pair_is_put_back_in_order() -> None:
    buffer = JitterBuffer()
    assert push_all(buffer, [1, 3, 2, 4]) == [1, 2, 3, 4]
    assert buffer.stats.reordered == 1 and buffer.stats.lost == 0


def test_a_missing_packet_is_given_up_after_depth_packets() -> None:
    buffer = JitterBuffer(depth=3)
    assert push_all(buffer, [1, 3, 4]) == [1]
    assert push_all(buffer, [5]) == ["lost 2+1", 3, 4, 5]
    assert push_all(buffer, [2]) == [] and buffer.stats.late == 1


def test_duplicates_are_dropped_and_counted() -> None:
    buffer = JitterBuffer()
    assert push_all(buffer, [1, 1, 3, 3, 2, 2]) == [1, 2, 3]
    assert buffer.stats.duplicates == 3


def test_sequence_numbers_wrap_around() -> None:
    buffer = JitterBuffer()
    assert push_all(buffer, [65534, 0, 65535, 1]) == [65534, 65535, 0, 1]


def test_a_gap_is_given_up_when_held_packets_waited_too_long() -> None:
    buffer = JitterBuffer(depth=5, max_wait=0.06)
    assert push_all(buffer, [1, 3], now=0.0) == [1]
    assert seqs(buffer.poll(0.05)) == []
    assert seqs(buffer.poll(0.06)) == ["lost 2+1", 3]


def test_a_big_jump_or_a_new_ssrc_restarts_the_stream() -> None:
    buffer = JitterBuffer()
    assert push_all(buffer, [1, 3]) == [1]
    assert push_all(buffer, [30000]) == ["lost 2+1", 3, 30000]
    assert seqs(buffer.push(pkt(5, ssrc=2))) == [5]
    assert buffer.stats.resets == 2


def test_flush_releases_everything_held() -> None:
    buffer = JitterBuffer(depth=10)
    push_all(buffer, [1, 4, 6])
    assert seqs(buffer.flush()) == ["lost 2+2", 4, "lost 5+1", 6]
    assert len(buffer) == 0 and buffer.stats.lost == 3


def test_the_buffer_never_holds_more_than_depth_packets() -> None:
    buffer = JitterBuffer(depth=3)
    push_all(buffer, [1] + list(range(3, 200, 2)))
    assert len(buffer) < 3
    assert buffer.stats.released + len(buffer) == buffer.stats.received
