"""DTMF as RFC 4733 telephone events: the 4-byte payload, one digit per key press, and sending.

A key press travels as several packets with the same RTP timestamp (the start of the event):
updates whose duration grows, then an end packet repeated three times (§2.5.1.4). Any of them
may be lost, duplicated or late. ``DtmfReceiver`` reports the digit once, on the first packet it
sees of a press, and ignores the rest of that press, including the continuation segments of a
press longer than the 16-bit duration field allows (§2.5.1.3). ``DtmfSender`` builds the packet
sequence for a digit on the same stream (SSRC, sequence numbers, clock) as the audio.

Payload (§2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |     event     |E|R| volume    |          duration             |
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from telephony.rtp.packet import RtpError, RtpPacket, RtpSender

DIGITS = "0123456789*#ABCD"  # events 0-15 (§3.2); 16 is flash
MAX_DURATION = 0xFFFF


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool = False
    volume: int = 10  # power in -dBm0, 0-63
    duration: int = 0  # in timestamp units (samples at 8 kHz)

    def __post_init__(self) -> None:
        if not (0 <= self.event < 256 and 0 <= self.volume < 64
                and 0 <= self.duration <= MAX_DURATION):
            raise RtpError(f"telephone event out of range: {self}")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """The first event of ``payload`` (the reserved bit is ignored, as §2.3 asks)."""
        if len(payload) < 4:
            raise RtpError(f"a telephone event is 4 bytes, got {len(payload)}")
        event, flags, duration = struct.unpack_from("!BBH", payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | self.volume,
                           self.duration)

    @property
    def digit(self) -> str | None:
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def event_for(digit: str) -> int:
    if len(digit) != 1 or digit.upper() not in DIGITS:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    return DIGITS.index(digit.upper())


class DtmfReceiver:
    """Telephone-event packets in, one digit per key press out.

    Feed it the packets of the negotiated telephone-event payload type (in arrival order, no
    jitter buffer needed). ``receive`` returns the digit when a new press starts, else None.
    Events that are not digits (flash, tones) return None and are counted in ``ignored``.
    """

    def __init__(self, *, remembered: int = 16) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=remembered)  # (ssrc, timestamp)
        self._last: tuple[RtpPacket, TelephoneEvent] | None = None
        self.digits = 0
        self.ignored = 0

    def receive(self, packet: RtpPacket) -> str | None:
        """Raises ``RtpError`` for a payload that is not a telephone event."""
        event = TelephoneEvent.parse(packet.payload)
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen:
            self._remember(packet, event, key)
            return None
        continuing = self._continues_last(packet, event)
        self._seen.append(key)
        self._last = (packet, event)
        if continuing:
            return None
        if event.digit is None:
            self.ignored += 1
            return None
        self.digits += 1
        return event.digit

    def _remember(self, packet: RtpPacket, event: TelephoneEvent, key: tuple[int, int]) -> None:
        if self._last is not None and (self._last[0].ssrc, self._last[0].timestamp) == key:
            self._last = (packet, event)

    def _continues_last(self, packet: RtpPacket, event: TelephoneEvent) -> bool:
        """A new segment of a long press: same event, no marker, starting where the last
        segment (which never ended) reached (§2.5.1.3)."""
        if self._last is None or packet.marker:
            return False
        last_packet, last_event = self._last
        reached = (last_packet.timestamp + last_event.duration) % 2**32
        return (packet.ssrc == last_packet.ssrc and event.event == last_event.event
                and not last_event.end and packet.timestamp == reached)


class DtmfSender:
    """The packets that send one digit on an RTP stream shared with audio.

    ``packets(digit)`` returns them in sending order: updates every ``interval_ms`` with a
    growing duration (the first with the marker bit), then the end packet three times. Send
    one per interval and the three end packets together; send no audio meanwhile: the stream's
    clock has already moved past the event when ``packets`` returns.
    """

    def __init__(self, sender: RtpSender, payload_type: int, *, volume: int = 10,
                 interval_ms: int = 20, clock_rate: int = 8000) -> None:
        self.sender = sender
        self.payload_type = payload_type
        self.volume = volume
        self.interval = clock_rate * interval_ms // 1000
        self.clock_rate = clock_rate

    def packets(self, digit: str, *, duration_ms: int = 100) -> list[RtpPacket]:
        event = event_for(digit)
        total = self.clock_rate * duration_ms // 1000
        if not 0 < total <= MAX_DURATION:
            raise ValueError(f"a {duration_ms} ms digit does not fit one event (max ~8 s)")
        start = self.sender.timestamp
        durations = list(range(self.interval, total, self.interval))
        packets = [self._packet(TelephoneEvent(event, False, self.volume, d), start, i == 0)
                   for i, d in enumerate(durations)]
        packets += [self._packet(TelephoneEvent(event, True, self.volume, total), start,
                                 not durations and i == 0) for i in range(3)]
        self.sender.advance(total)
        return packets

    def _packet(self, event: TelephoneEvent, timestamp: int, marker: bool) -> RtpPacket:
        return self.sender.packet(bytes(event), payload_type=self.payload_type,
                                  timestamp=timestamp, marker=marker)
