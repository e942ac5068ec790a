"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for one G.711 telephone audio stream.

``SessionDescription.parse(body)`` / ``bytes(sdp)`` read and write SDP. ``answer_offer`` answers
an INVITE's offer: the first usable audio stream gets PCMU (or PCMA) and telephone-event at the
offerer's payload type numbers, our address and port, ``ptime`` 20 and the direction that fits
the offer; every other stream is refused with port 0. ``make_offer`` / ``accept_answer`` do the
same from the calling side (a transfer leg that calls an agent). Both return a ``MediaSession``:
what the RTP layer needs to know.

Hold: a re-INVITE offering ``sendonly`` or ``inactive``, or the old style ``c=0.0.0.0``
(RFC 3264 §8.4), gives a session whose ``direction`` does not send: ``session.held`` is True.

Errors: ``SdpError`` (from ``telephony.sip.errors``); status 400 for SDP we cannot read, 488 when
no stream can be accepted (no codec in common): answer the INVITE with ``error.status``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from telephony.sip.errors import SdpError


class Direction(StrEnum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        return {(True, True): cls.SENDRECV, (True, False): cls.SENDONLY,
                (False, True): cls.RECVONLY, (False, False): cls.INACTIVE}[(sends, receives)]

    def reversed(self) -> Direction:
        """The same stream seen from the other end: sendonly ⇄ recvonly."""
        return Direction.of(sends=self.receives, receives=self.sends)


def _bad(problem: str) -> SdpError:
    return SdpError(f"bad SDP: {problem}", status=400)


def _digits(text: str, most: int = 20) -> bool:
    """ASCII digits only, and few enough for ``int()`` (which refuses over 4300 digits)."""
    return text.isascii() and text.isdigit() and len(text) <= most


def _number(text: str, what: str, limit: int = 2**64) -> int:
    if not (_digits(text) and int(text) < limit):
        raise _bad(f"{what} {text!r:.30} is not a number")
    return int(text)


@dataclass(frozen=True, slots=True)
class Origin:
    username: str
    session_id: int
    session_version: int
    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    @classmethod
    def parse(cls, text: str) -> Origin:
        parts = text.split()
        if len(parts) != 6:
            raise _bad(f"o= needs 6 fields, got {text!r:.80}")
        return cls(parts[0], _number(parts[1], "session id"),
                   _number(parts[2], "session version"), parts[5], parts[4], parts[3])

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.network_type} {self.address_type} {self.address}")


@dataclass(frozen=True, slots=True)
class Connection:
    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    @classmethod
    def parse(cls, text: str) -> Connection:
        parts = text.split()
        if len(parts) != 3:
            raise _bad(f"c= needs 3 fields, got {text!r:.80}")
        return cls(parts[2], parts[1], parts[0])

    @classmethod
    def of(cls, address: str) -> Connection:
        return cls(address, "IP6" if ":" in address else "IP4")

    def __str__(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"

    @property
    def unspecified(self) -> bool:
        """``0.0.0.0``: the RFC 2543 way of putting a call on hold."""
        return self.address.split("/")[0] in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    name: str
    clock_rate: int = 8000
    channels: int = 1

    @property
    def rtpmap(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{suffix}"


PCMU = Codec(0, "PCMU")
PCMA = Codec(8, "PCMA")
TELEPHONE_EVENT = "telephone-event"
DEFAULT_TELEPHONE_EVENT_PT = 101
DEFAULT_EVENTS = "0-15"  # the DTMF digits 0-9 * # A-D
_STATIC = {0: PCMU, 3: Codec(3, "GSM"), 4: Codec(4, "G723"), 8: PCMA, 9: Codec(9, "G722"),
           18: Codec(18, "G729")}
_RTP_PROTOCOLS = ("RTP/AVP", "RTP/AVPF")
_USUAL_PTIMES = frozenset({10, 20, 30, 40, 50, 60})  # what a G.711 sender can be asked for

Attribute = tuple[str, str | None]


def _attribute(text: str) -> Attribute:
    name, colon, value = text.partition(":")
    return (name, value if colon else None)


def _format_attribute(attribute: Attribute) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"


@dataclass(slots=True)
class Media:
    """One ``m=`` section."""

    kind: str
    port: int
    protocol: str
    formats: list[str]
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    port_count: int | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)  # i=, k= lines, kept as sent

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value`` ("" for a flag), or None."""
        for key, value in self.attributes:
            if key == name:
                return value or ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    def codecs(self) -> list[Codec]:
        """The formats as codecs, in the offerer's order of preference; unknown ones left out."""
        mapped: dict[int, Codec] = {}
        for value in self.attribute_values("rtpmap"):
            number, _, encoding = value.partition(" ")
            name, _, rest = encoding.strip().partition("/")
            rate, _, channels = rest.partition("/")
            if _digits(number, 3) and _digits(rate, 9) and (not channels or _digits(channels, 3)):
                mapped[int(number)] = Codec(int(number), name, int(rate), int(channels or 1))
        codecs = []
        for fmt in self.formats:
            pt = int(fmt) if _digits(fmt, 3) and int(fmt) < 128 else None
            codec = (mapped.get(pt) or _STATIC.get(pt)) if pt is not None else None
            if codec is not None:
                codecs.append(codec)
        return codecs

    def fmtp(self, payload_type: int) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            if pt == str(payload_type):
                return params.strip()
        return None

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime") or ""
        return int(value) if _digits(value, 3) and 0 < int(value) < 1000 else None


_SESSION_ORDER = "vosiuepcbtrzka"
_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(slots=True)
class SessionDescription:
    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    timing: list[str] = field(default_factory=lambda: ["0 0"])
    extra: list[tuple[str, str]] = field(default_factory=list)  # i u e p b r z k, kept as sent

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        try:
            text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else str(data)
        except UnicodeDecodeError:
            raise _bad("not UTF-8") from None
        lines = [line.rstrip("\r") for line in text.split("\n")]
        lines = [line for line in lines if line.strip()]
        if not lines or lines[0].strip() != "v=0":
            raise _bad("it does not start with v=0")
        origin: Origin | None = None
        session: dict[str, list[str]] = {}
        extra: list[tuple[str, str]] = []
        attributes: list[Attribute] = []
        media: list[Media] = []
        for line in lines[1:]:
            kind, equals, value = line.partition("=")
            if not equals or len(kind) != 1 or not kind.isalpha():
                raise _bad(f"line {line!r:.60} is not type=value")
            if kind == "m":
                media.append(_media(value))
            elif media:
                _media_line(media[-1], kind, value)
            elif kind == "o":
                origin = Origin.parse(value)
            elif kind == "a":
                attributes.append(_attribute(value))
            elif kind in "sct":
                session.setdefault(kind, []).append(value)
            else:
                extra.append((kind, value))
        if origin is None:
            raise _bad("no o= line")
        connection = Connection.parse(session["c"][0]) if "c" in session else None
        return cls(origin, (session.get("s") or ["-"])[0] or "-", connection, attributes, media,
                   session.get("t") or ["0 0"], sorted(extra, key=_session_rank))

    def __str__(self) -> str:
        extra = sorted(self.extra, key=_session_rank)
        lines = ["v=0", f"o={self.origin}", f"s={self.name or '-'}"]
        lines += [f"{k}={v}" for k, v in extra if k in "iuep"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"b={v}" for k, v in extra if k == "b"]
        lines += [f"t={value}" for value in self.timing]
        lines += [f"{k}={v}" for k, v in extra if k not in "iuepb"]  # r z k, then unknown types
        lines += [_format_attribute(attribute) for attribute in self.attributes]
        for m in self.media:
            port = str(m.port) if m.port_count is None else f"{m.port}/{m.port_count}"
            lines.append(f"m={m.kind} {port} {' '.join([m.protocol, *m.formats])}")
            lines += [f"i={v}" for k, v in m.extra if k == "i"]
            if m.connection is not None:
                lines.append(f"c={m.connection}")
            lines += [f"b={value}" for value in m.bandwidths]
            lines += [f"{k}={v}" for k, v in m.extra if k != "i"]
            lines += [_format_attribute(attribute) for attribute in m.attributes]
        return "\r\n".join(lines) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode()

    def direction(self, media: Media) -> Direction:
        """The stream's direction attribute (media level, else session level, else sendrecv),
        with ``c=0.0.0.0`` read as "do not send to me" (RFC 3264 §8.4)."""
        values = [Direction(name) for name, _ in media.attributes + self.attributes
                  if name in _DIRECTIONS]
        direction = values[0] if values else Direction.SENDRECV
        connection = media.connection or self.connection
        if connection is not None and connection.unspecified:
            direction = Direction.of(sends=direction.sends, receives=False)
        return direction


def _session_rank(line: tuple[str, str]) -> int:
    return _SESSION_ORDER.index(line[0]) if line[0] in _SESSION_ORDER else len(_SESSION_ORDER)


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 4:
        raise _bad(f"m= needs a media, port, protocol and formats: {value!r:.80}")
    port_text, slash, count = parts[1].partition("/")
    return Media(parts[0], _number(port_text, "port", 65536), parts[2], parts[3:],
                 port_count=_number(count, "port count", 65536) if slash else None)


def _media_line(media: Media, kind: str, value: str) -> None:
    if kind == "c":
        media.connection = Connection.parse(value)
    elif kind == "b":
        media.bandwidths.append(value)
    elif kind == "a":
        media.attributes.append(_attribute(value))
    else:
        media.extra.append((kind, value))


# ------------------------------------------------------------------------------ offer/answer
@dataclass(frozen=True, slots=True)
class MediaSession:
    """What was agreed for the audio stream: enough to run RTP."""

    codec: Codec  # PCMU or PCMA, with the payload type both ends use
    telephone_event: int | None  # the RFC 4733 payload type, if agreed
    remote_address: str  # where to send RTP
    remote_port: int
    direction: Direction  # from our side: do we send, do we receive
    ptime: int  # milliseconds of audio per packet to send: the peer's a=ptime, else ours

    @property
    def samples_per_packet(self) -> int:
        return self.codec.clock_rate * self.ptime // 1000

    @property
    def held(self) -> bool:
        """The other end does not want our audio now (hold): send nothing."""
        return not self.direction.sends


@dataclass(frozen=True, slots=True)
class Answer:
    sdp: SessionDescription
    session: MediaSession


def _pick(media: Media, preferred: Sequence[str]) -> tuple[Codec, Codec | None] | None:
    codecs = media.codecs()
    audio = {c.name.upper(): c for c in reversed(codecs) if c.clock_rate == 8000
             and c.channels == 1}
    chosen = next((audio[name] for name in preferred if name in audio), None)
    if chosen is None:
        return None
    events = next((c for c in codecs if c.name.lower() == TELEPHONE_EVENT
                   and c.clock_rate == chosen.clock_rate), None)
    return chosen, events


def _audio_lines(codec: Codec, events: Codec | None, fmtp: str | None, ptime: int,
                 direction: Direction) -> list[Attribute]:
    attributes: list[Attribute] = [("rtpmap", codec.rtpmap)]
    if events is not None:
        attributes += [("rtpmap", events.rtpmap),
                       ("fmtp", f"{events.payload_type} {fmtp or DEFAULT_EVENTS}")]
    return attributes + [("ptime", str(ptime)), (direction.value, None)]


def answer_offer(offer: SessionDescription, *, address: str, port: int, session_id: int,
                 session_version: int, ptime: int = 20,
                 codecs: Sequence[str] = ("PCMU", "PCMA"),
                 direction: Direction = Direction.SENDRECV,
                 username: str = "-") -> Answer:
    """Answer ``offer`` with one G.711 audio stream at ``address``:``port``.

    ``codecs`` is our preference; ``direction`` what we would like (sendrecv), narrowed by
    what the offer allows; ``ptime`` what we ask to receive (we send what the offer asks). Raises ``SdpError`` (488) when no audio stream can be accepted.
    Keep ``session_id`` for the whole call and increase ``session_version`` with each answer.
    """
    session: MediaSession | None = None
    answered: list[Media] = []
    for media in offer.media:
        picked = None
        if (session is None and media.kind == "audio" and media.port
                and media.protocol.upper() in _RTP_PROTOCOLS):
            picked = _pick(media, codecs)
        if picked is None:
            answered.append(Media(media.kind, 0, media.protocol, media.formats[:1]))
            continue
        codec, events = picked
        remote = offer.direction(media)
        ours = Direction.of(sends=direction.sends and remote.receives,
                            receives=direction.receives and remote.sends)
        fmtp = media.fmtp(events.payload_type) if events else None
        formats = [str(codec.payload_type)] + ([str(events.payload_type)] if events else [])
        answered.append(Media("audio", port, media.protocol, formats,
                              attributes=_audio_lines(codec, events, fmtp, ptime, ours)))
        connection = media.connection or offer.connection
        if connection is None:
            raise _bad("no c= line for the audio stream")
        send_ptime = media.ptime if media.ptime in _USUAL_PTIMES else ptime
        session = MediaSession(codec, events.payload_type if events else None,
                               connection.address.split("/")[0], media.port, ours, send_ptime)
    if session is None:
        names = sorted({c.name for m in offer.media for c in m.codecs()})
        raise SdpError(f"no audio stream with {' or '.join(codecs)} in the offer "
                       f"(offered: {', '.join(names) or 'nothing usable'})", status=488)
    connection = Connection.of(address)
    sdp = SessionDescription(
        Origin(username, session_id, session_version, address, connection.address_type),
        "-", connection, [], answered)
    return Answer(sdp, session)


def make_offer(*, address: str, port: int, session_id: int, session_version: int,
               codecs: Sequence[Codec] = (PCMU, PCMA),
               telephone_event: int | None = DEFAULT_TELEPHONE_EVENT_PT, ptime: int = 20,
               direction: Direction = Direction.SENDRECV, username: str = "-") -> SessionDescription:
    """An offer of one audio stream with ``codecs`` (in order of preference) and DTMF events."""
    attributes: list[Attribute] = [("rtpmap", codec.rtpmap) for codec in codecs]
    formats = [str(codec.payload_type) for codec in codecs]
    if telephone_event is not None:
        events = Codec(telephone_event, TELEPHONE_EVENT)
        formats.append(str(telephone_event))
        attributes += [("rtpmap", events.rtpmap), ("fmtp", f"{telephone_event} {DEFAULT_EVENTS}")]
    attributes += [("ptime", str(ptime)), (direction.value, None)]
    connection = Connection.of(address)
    return SessionDescription(
        Origin(username, session_id, session_version, address, connection.address_type),
        "-", connection, [], [Media("audio", port, "RTP/AVP", formats, attributes=attributes)])


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaSession:
    """The session agreed by ``answer`` to our ``offer``. Raises ``SdpError`` when the answer
    accepts no stream or picks a codec we did not offer."""
    for ours, media in zip(offer.media, answer.media, strict=False):
        if media.kind != "audio" or not media.port:
            continue
        offered = {c.payload_type: c for c in ours.codecs()}
        chosen = next((c for c in media.codecs()
                       if c.name.upper() in ("PCMU", "PCMA") and c.payload_type in offered), None)
        if chosen is None:
            raise SdpError("the answer picks no codec we offered", status=488)
        events = next((c.payload_type for c in media.codecs()
                       if c.name.lower() == TELEPHONE_EVENT), None)
        connection = media.connection or answer.connection
        if connection is None:
            raise _bad("no c= line for the audio stream")
        ptime = media.ptime if media.ptime in _USUAL_PTIMES else ours.ptime or 20
        direction = offer.direction(ours)
        remote = answer.direction(media)
        agreed = Direction.of(sends=direction.sends and remote.receives,
                              receives=direction.receives and remote.sends)
        return MediaSession(chosen, events, connection.address.split("/")[0], media.port,
                            agreed, ptime)
    raise SdpError("the answer accepts no audio stream", status=488)
