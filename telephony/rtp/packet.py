"""RTP packets (RFC 3550 §5.1) as a dataclass, and the numbering of the packets we send.

``RtpPacket.parse(data)`` reads a packet with its CSRC list, header extension and padding, and
``bytes(packet)`` writes it back byte for byte. ``RtpSender`` keeps the state of our outgoing
stream: one SSRC, consecutive sequence numbers and a timestamp that counts samples (160 per
20 ms packet at 8 kHz), with the marker bit on the first packet of each talkspurt.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_SIZE = 12
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz


class RtpError(ValueError):
    """Bytes that are not an RTP packet (or a payload that is not what its type says)."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (§5.3.1): 16 bits defined by a profile, then 32-bit words."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: bytes = b""  # as sent, its last byte its length; empty when the P bit is clear

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type < 128:
            raise RtpError(f"payload type {self.payload_type} is not 0-127")
        if not 0 <= self.sequence_number < 2**16:
            raise RtpError(f"sequence number {self.sequence_number} is not 16 bits")
        if not (0 <= self.timestamp < 2**32 and 0 <= self.ssrc < 2**32):
            raise RtpError("timestamp and SSRC are 32 bits")
        if len(self.csrc) > 15 or not all(0 <= c < 2**32 for c in self.csrc):
            raise RtpError("at most 15 CSRCs of 32 bits")
        if self.extension is not None and (len(self.extension.data) % 4
                                           or len(self.extension.data) >= 4 * 2**16
                                           or not 0 <= self.extension.profile < 2**16):
            raise RtpError("extension data is whole 32-bit words, at most 65535 of them")
        if self.padding and (len(self.padding) > 255 or self.padding[-1] != len(self.padding)):
            raise RtpError("padding must end with its own length (1-255)")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        data = bytes(data)
        if len(data) < HEADER_SIZE:
            raise RtpError(f"{len(data)} bytes is shorter than an RTP header")
        first, second, sequence, timestamp, ssrc = struct.unpack_from("!BBHII", data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected 2")
        offset = HEADER_SIZE + 4 * (first & 0x0F)
        if len(data) < offset:
            raise RtpError("packet ends inside its CSRC list")
        csrc = struct.unpack_from(f"!{first & 0x0F}I", data, HEADER_SIZE)
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpError("packet ends inside its header extension")
            profile, words = struct.unpack_from("!HH", data, offset)
            end = offset + 4 + 4 * words
            if len(data) < end:
                raise RtpError("header extension is longer than the packet")
            extension = RtpExtension(profile, data[offset + 4:end])
            offset = end
        padding = b""
        if first & 0x20:
            count = data[-1]
            if count == 0 or len(data) - count < offset:
                raise RtpError(f"padding of {count} bytes does not fit the packet")
            padding = data[-count:]
        payload = data[offset:len(data) - len(padding)]
        return cls(second & 0x7F, sequence, timestamp, ssrc, payload, bool(second & 0x80),
                   csrc, extension, padding)

    def __bytes__(self) -> bytes:
        first = (RTP_VERSION << 6 | (0x20 if self.padding else 0)
                 | (0x10 if self.extension is not None else 0) | len(self.csrc))
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [struct.pack(f"!BBHII{len(self.csrc)}I", first, second, self.sequence_number,
                             self.timestamp, self.ssrc, *self.csrc)]
        if self.extension is not None:
            parts += [struct.pack("!HH", self.extension.profile, len(self.extension.data) // 4),
                      self.extension.data]
        return b"".join([*parts, self.payload, self.padding])


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761 §4): packet types 192-223 in byte two."""
    return len(data) >= 2 and 192 <= data[1] <= 223


class RtpSender:
    """The numbering of our outgoing stream; pure: it builds packets, the caller sends them.

    Initial sequence number and timestamp are random (§5.1); pass ``rng`` for repeatable
    tests. ``audio()`` numbers the next packet of sound; ``silence()`` lets the sample clock
    run while nothing is sent, and the next packet then carries the marker bit (§5.1, RFC 3551
    §4.1). ``packet()`` is the low-level form other payloads (DTMF events) use.
    """

    def __init__(self, payload_type: int, *, ssrc: int | None = None,
                 sequence_number: int | None = None, timestamp: int | None = None,
                 samples_per_packet: int = SAMPLES_PER_PACKET,
                 rng: random.Random | None = None) -> None:
        rng = rng or random.Random()
        self.payload_type = payload_type
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self.sequence_number = rng.getrandbits(16) if sequence_number is None else sequence_number
        self.timestamp = rng.getrandbits(32) if timestamp is None else timestamp
        self.samples_per_packet = samples_per_packet
        self.packets_sent = 0
        self.octets_sent = 0
        self._talkspurt = True

    def packet(self, payload: bytes, *, payload_type: int, timestamp: int,
               marker: bool = False) -> RtpPacket:
        """A packet with the next sequence number and the given type, timestamp and marker."""
        packet = RtpPacket(payload_type, self.sequence_number, timestamp % 2**32, self.ssrc,
                           payload, marker)
        self.sequence_number = (self.sequence_number + 1) % 2**16
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return packet

    def audio(self, payload: bytes, *, samples: int | None = None) -> RtpPacket:
        """The next audio packet; the sample clock then moves on by ``samples`` (160)."""
        packet = self.packet(payload, payload_type=self.payload_type, timestamp=self.timestamp,
                             marker=self._talkspurt)
        self._talkspurt = False
        self.advance(self.samples_per_packet if samples is None else samples)
        return packet

    def silence(self, samples: int | None = None) -> None:
        """Nothing sent for ``samples`` (one packet's worth): the next audio starts a talkspurt."""
        self.advance(self.samples_per_packet if samples is None else samples)
        self._talkspurt = True

    def advance(self, samples: int) -> None:
        self.timestamp = (self.timestamp + samples) % 2**32
