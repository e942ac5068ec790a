"""A small jitter buffer for incoming RTP: packets out in sequence order, gaps reported.

Packets that arrive in order leave at once (no added delay for speech recognition). When one
is missing, the packets after it are held until it turns up, or until ``depth`` packets are
waiting behind the gap (or, if the caller passes ``now``, the oldest has waited ``max_wait``
seconds): then the missing ones are given up as ``Lost`` and the held ones released. A packet
that comes after its place was given up is too late and dropped; a duplicate is dropped.

Sequence numbers wrap at 2**16; a jump of more than ``max_jump`` either way (a restarted or
replaced stream), or a new SSRC, flushes what is held and starts over from the new packet.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from telephony.rtp.packet import RtpPacket


@dataclass(frozen=True, slots=True)
class Lost:
    """``count`` packets from ``sequence_number`` on never came (conceal or fill with silence)."""

    sequence_number: int
    count: int


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    released: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    reordered: int = 0
    resets: int = 0


def _delta(a: int, b: int) -> int:
    """b - a on the 16-bit sequence circle, in -32768..32767."""
    return (b - a + 2**15) % 2**16 - 2**15


class JitterBuffer:
    def __init__(self, *, depth: int = 3, max_wait: float = 0.06, max_jump: int = 1000) -> None:
        if depth < 1:
            raise ValueError("depth must be at least one packet")
        self.depth = depth
        self.max_wait = max_wait
        self.max_jump = max_jump
        self.stats = JitterStats()
        self._held: dict[int, tuple[RtpPacket, float | None]] = {}  # by offset from _next
        self._next: int | None = None  # the sequence number due next
        self._ssrc: int | None = None
        self._released: deque[int] = deque(maxlen=64)  # to tell duplicates from late packets

    def __len__(self) -> int:
        return len(self._held)

    def push(self, packet: RtpPacket, now: float | None = None) -> list[RtpPacket | Lost]:
        """Take one packet; return what can leave now, in order."""
        self.stats.received += 1
        out: list[RtpPacket | Lost] = []
        if self._next is None or packet.ssrc != self._ssrc:
            out += self._restart(packet)
        offset = _delta(self._next or 0, packet.sequence_number)
        if abs(offset) > self.max_jump:
            out += self._restart(packet)
            offset = 0
        if offset < 0:
            if packet.sequence_number in self._released:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return out
        if offset in self._held:
            self.stats.duplicates += 1
            return out
        if offset < max(self._held, default=-1):
            self.stats.reordered += 1  # it overtook nobody: others overtook it
        self._held[offset] = (packet, now)
        return out + self._release(now)

    def poll(self, now: float) -> list[RtpPacket | Lost]:
        """Give up on a gap the held packets have waited ``max_wait`` for (call it on a tick)."""
        return self._release(now)

    def flush(self) -> list[RtpPacket | Lost]:
        """Everything held, in order, gaps reported (end of call, or before a restart)."""
        out: list[RtpPacket | Lost] = []
        while self._held:
            out += self._skip_gap()
            out += self._release(None)
        return out

    def _restart(self, packet: RtpPacket) -> list[RtpPacket | Lost]:
        out = self.flush()
        if self._next is not None:
            self.stats.resets += 1
        self._next, self._ssrc = packet.sequence_number, packet.ssrc
        self._released.clear()
        return out

    def _release(self, now: float | None) -> list[RtpPacket | Lost]:
        out: list[RtpPacket | Lost] = []
        while self._held:
            if 0 not in self._held:
                oldest = min((at for _, at in self._held.values() if at is not None),
                             default=None)
                waited = now is not None and oldest is not None and now - oldest >= self.max_wait
                if len(self._held) < self.depth and not waited:
                    break
                out += self._skip_gap()
            packet, _ = self._held.pop(0)
            self._shift(1)
            self.stats.released += 1
            self._released.append(packet.sequence_number)
            out.append(packet)
        return out

    def _skip_gap(self) -> list[Lost]:
        gap = min(self._held)
        if gap == 0:
            return []
        assert self._next is not None
        lost = Lost(self._next, gap)
        self.stats.lost += gap
        self._shift(gap)
        return [lost]

    def _shift(self, by: int) -> None:
        assert self._next is not None
        self._next = (self._next + by) % 2**16
        self._held = {offset - by: held for offset, held in self._held.items()}
