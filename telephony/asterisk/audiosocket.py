"""AudioSocket packets, sans I/O: bytes ⇄ frozen dataclasses.

AudioSocket (Asterisk's ``AudioSocket()`` application and ``AudioSocket/`` channel) frames a
TCP stream into packets of a 3-byte header (kind, then the payload length as a big-endian
16-bit number) and the payload::

    0x00  hang-up            no payload; closing the socket means the same
    0x01  UUID               16 bytes, the call's UUID (binary), the first packet of a call
    0x03  DTMF               1 ASCII byte, the digit
    0x10  audio              signed linear 16-bit little-endian mono PCM at 8 kHz
    0x11..0x18  audio        the same at 12, 16, 24, 32, 44.1, 48, 96 and 192 kHz (newer
                             Asterisk releases; 20 ms at 8 kHz is 320 bytes)
    0xff  error              optional payload; Asterisk's own codes are one byte of bit
                             flags: 0x01 the caller hung up, 0x02 a frame could not be
                             forwarded, 0x04 memory allocation failed

``parse_packets(buffer)`` splits a buffer into packets and the incomplete rest;
``AudioSocketParser.feed(data)`` does the same incrementally for a stream, so a caller may
hand it TCP reads of any size. Every packet class has ``parse`` and ``__bytes__``.

Errors::

    ValueError
     └── AudioSocketError   an unknown kind, a payload longer than allowed, a UUID that is not
                            16 bytes, a DTMF packet that is not one digit, odd-length audio
"""

from __future__ import annotations

import struct
import uuid as uuid_module
from dataclasses import dataclass
from typing import ClassVar

HEADER = struct.Struct(">BH")
HEADER_BYTES = HEADER.size
MAX_PAYLOAD = 0xFFFF  # what the 16-bit length can say
DEFAULT_MAX_PAYLOAD = 16 * 1024  # 40 ms at 192 kHz; anything longer is not a sane packet

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF

# Audio kinds and their sample rates (KIND_AUDIO is 8 kHz slin, what every release speaks).
AUDIO_RATES: dict[int, int] = {
    0x10: 8000, 0x11: 12_000, 0x12: 16_000, 0x13: 24_000, 0x14: 32_000,
    0x15: 44_100, 0x16: 48_000, 0x17: 96_000, 0x18: 192_000,
}
AUDIO_KINDS: dict[int, int] = {rate: kind for kind, rate in AUDIO_RATES.items()}

DTMF_DIGITS = frozenset("0123456789*#ABCD")

# Asterisk's error codes (bit flags in a one-byte payload).
ERROR_CALLER_HUNG_UP = 0x01
ERROR_FRAME_FORWARDING = 0x02
ERROR_MEMORY = 0x04
_ERROR_NAMES = {ERROR_CALLER_HUNG_UP: "the caller hung up",
                ERROR_FRAME_FORWARDING: "a frame could not be forwarded",
                ERROR_MEMORY: "Asterisk ran out of memory"}


class AudioSocketError(ValueError):
    """Bytes that are not a valid AudioSocket packet."""


# ------------------------------------------------------------------------------ packets
def _frame(kind: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise AudioSocketError(f"a payload of {len(payload)} bytes does not fit the 16-bit length")
    return HEADER.pack(kind, len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Hangup:
    """Terminate the call (either side may send it)."""

    kind: ClassVar[int] = KIND_HANGUP

    @classmethod
    def from_payload(cls, payload: bytes) -> Hangup:
        if payload:
            raise AudioSocketError(f"a hang-up packet carries no payload, got {len(payload)} bytes")
        return cls()

    def __bytes__(self) -> bytes:
        return _frame(self.kind, b"")


@dataclass(frozen=True, slots=True)
class Uuid:
    """The call's identifier, sent by Asterisk first."""

    kind: ClassVar[int] = KIND_UUID
    value: uuid_module.UUID

    @classmethod
    def from_payload(cls, payload: bytes) -> Uuid:
        if len(payload) != 16:
            raise AudioSocketError(f"a UUID packet carries 16 bytes, got {len(payload)}")
        return cls(uuid_module.UUID(bytes=payload))

    @classmethod
    def from_string(cls, text: str) -> Uuid:
        try:
            return cls(uuid_module.UUID(text))
        except ValueError as exc:
            raise AudioSocketError(f"{text!r:.60} is not a UUID") from exc

    def __str__(self) -> str:
        return str(self.value)

    def __bytes__(self) -> bytes:
        return _frame(self.kind, self.value.bytes)


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A keypad digit the caller pressed."""

    kind: ClassVar[int] = KIND_DTMF
    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise AudioSocketError(f"{self.digit!r:.20} is not a DTMF digit (0-9, *, #, A-D)")

    @classmethod
    def from_payload(cls, payload: bytes) -> Dtmf:
        if len(payload) != 1:
            raise AudioSocketError(f"a DTMF packet carries 1 byte, got {len(payload)}")
        return cls(chr(payload[0]))

    def __bytes__(self) -> bytes:
        return _frame(self.kind, self.digit.encode("ascii"))


@dataclass(frozen=True, slots=True)
class Audio:
    """Signed linear 16-bit little-endian mono PCM at ``rate`` Hz (8000 unless said)."""

    pcm: bytes
    rate: int = 8000

    def __post_init__(self) -> None:
        if self.rate not in AUDIO_KINDS:
            raise AudioSocketError(f"AudioSocket has no audio kind for {self.rate} Hz")
        if len(self.pcm) % 2:
            raise AudioSocketError("16-bit audio needs an even number of bytes, "
                                   f"got {len(self.pcm)}")

    @property
    def kind(self) -> int:
        return AUDIO_KINDS[self.rate]

    @classmethod
    def from_payload(cls, payload: bytes, *, kind: int = KIND_AUDIO) -> Audio:
        return cls(payload, AUDIO_RATES[kind])

    def __bytes__(self) -> bytes:
        return _frame(self.kind, self.pcm)


@dataclass(frozen=True, slots=True)
class Error:
    """Something failed on the sending side; ``code`` is the payload (often one byte)."""

    kind: ClassVar[int] = KIND_ERROR
    code: bytes = b""

    @classmethod
    def from_payload(cls, payload: bytes) -> Error:
        return cls(payload)

    def describe(self) -> str:
        """Asterisk's bit flags in words, or the raw code."""
        if len(self.code) != 1:
            return f"error {self.code.hex() or '(no code)'}"
        flags = [name for bit, name in _ERROR_NAMES.items() if self.code[0] & bit]
        unknown = self.code[0] & ~sum(_ERROR_NAMES)
        if unknown:
            flags.append(f"unknown flags 0x{unknown:02x}")
        return ", ".join(flags) or "error 0x00"

    @property
    def caller_hung_up(self) -> bool:
        return len(self.code) == 1 and bool(self.code[0] & ERROR_CALLER_HUNG_UP)

    def __bytes__(self) -> bytes:
        return _frame(self.kind, self.code)


Packet = Hangup | Uuid | Dtmf | Audio | Error


# ------------------------------------------------------------------------------ parsing
def _check_header(kind: int, length: int, max_payload: int) -> None:
    if kind not in (KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_ERROR) and kind not in AUDIO_RATES:
        raise AudioSocketError(f"unknown packet kind 0x{kind:02x}")
    if length > max_payload:
        raise AudioSocketError(f"packet kind 0x{kind:02x} announces {length} bytes, "
                               f"more than the {max_payload}-byte limit")


def _packet(kind: int, payload: bytes) -> Packet:
    if kind == KIND_HANGUP:
        return Hangup.from_payload(payload)
    if kind == KIND_UUID:
        return Uuid.from_payload(payload)
    if kind == KIND_DTMF:
        return Dtmf.from_payload(payload)
    if kind == KIND_ERROR:
        return Error.from_payload(payload)
    return Audio.from_payload(payload, kind=kind)


def parse_packet(data: bytes, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Packet:
    """Exactly one packet: ``data`` must hold its header and payload and nothing more."""
    packets, rest = parse_packets(data, max_payload=max_payload)
    if len(packets) != 1 or rest:
        got = f"{len(packets)} packet(s) and {len(rest)} stray byte(s)"
        raise AudioSocketError(f"expected exactly one packet in {len(data)} bytes, got {got}")
    return packets[0]


def parse_packets(buffer: bytes, *,
                  max_payload: int = DEFAULT_MAX_PAYLOAD) -> tuple[list[Packet], bytes]:
    """The complete packets at the start of ``buffer``, and the bytes of an incomplete one.

    A header is checked as soon as its three bytes are there, so a bad kind or an oversized
    length fails before the payload is waited for.
    """
    packets, rest, error = _split(buffer, max_payload)
    if error is not None:
        raise error
    return packets, rest


def _split(buffer: bytes, max_payload: int) -> tuple[list[Packet], bytes, AudioSocketError | None]:
    """``parse_packets``, but an error comes back with the good packets that preceded it."""
    packets: list[Packet] = []
    view = memoryview(buffer)
    offset = 0
    try:
        while len(view) - offset >= HEADER_BYTES:
            kind, length = HEADER.unpack_from(view, offset)
            _check_header(kind, length, max_payload)
            end = offset + HEADER_BYTES + length
            if end > len(view):
                break
            packets.append(_packet(kind, bytes(view[offset + HEADER_BYTES:end])))
            offset = end
    except AudioSocketError as exc:
        return packets, bytes(view[offset:]), exc
    return packets, bytes(view[offset:]), None


class AudioSocketParser:
    """Incremental parsing of one connection's byte stream.

    The packets before a bad one are still returned; the error is kept in ``error`` and raised
    by the next ``feed``. After an error the stream cannot be resynchronised (there is no
    marker to find the next header by), so the connection should end.
    """

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if not 0 < max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be 1..{MAX_PAYLOAD}, got {max_payload}")
        self.max_payload = max_payload
        self.error: AudioSocketError | None = None
        self._buffer = b""

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a packet still arriving."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        """The packets ``data`` completes (possibly none). Raises ``AudioSocketError`` when
        ``data`` breaks the stream before any packet, or when it already was broken."""
        if self.error is not None:
            raise AudioSocketError(f"the stream is already broken: {self.error}")
        packets, self._buffer, self.error = _split(self._buffer + data, self.max_payload)
        if self.error is not None and not packets:
            raise self.error
        return packets
