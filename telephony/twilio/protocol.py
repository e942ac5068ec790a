"""Twilio Media Streams messages, sans I/O: JSON text ⇄ frozen dataclasses.

Server side (our bridge): ``parse_inbound`` reads what Twilio sends (``connected``, ``start``,
``media``, ``dtmf``, ``mark``, ``stop``); ``media_message``, ``mark_message`` and
``clear_message`` build what we send back. Client side (the caller simulator and the tests,
which play Twilio's part): ``connected_message`` … ``stop_message`` build Twilio's messages and
``parse_outbound`` reads ours.

Twilio's quirks kept here: numbers inside ``media`` (``chunk``, ``timestamp``) and every
``sequenceNumber`` travel as strings of digits; ``streamSid`` sits at the top level (and, in
``start``, inside ``start`` as well); DTMF comes with track ``inbound_track`` while media comes
with ``inbound``. Fields we do not use (``sequenceNumber``, future additions) are ignored.

Errors::

    ValueError
     └── TwilioProtocolError   anything malformed; the message says what and where
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

DTMF_DIGITS = frozenset("0123456789*#ABCD")
MULAW = "audio/x-mulaw"
MULAW_RATE = 8000
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32


class TwilioProtocolError(ValueError):
    """A message that is not valid Twilio Media Streams JSON."""


# ------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(default_factory=dict)
    media_format: MediaFormat = MediaFormat(MULAW, MULAW_RATE, 1)


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes  # μ-law, base64-decoded


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    track: str
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    """Twilio has played everything we sent before the ``mark`` of this name (or cleared it)."""

    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str
    call_sid: str


InboundEvent = Connected | Start | Media | Dtmf | Mark | Stop


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    stream_sid: str
    payload: bytes  # μ-law, base64-decoded


@dataclass(frozen=True, slots=True)
class OutboundMark:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class OutboundClear:
    stream_sid: str


OutboundEvent = OutboundMedia | OutboundMark | OutboundClear


# ------------------------------------------------------------------------------ reading
class _Reader:
    """Typed access to one message's fields, raising errors that name the event and field."""

    def __init__(self, text: str | bytes) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TwilioProtocolError(f"invalid JSON: {exc.msg} at position {exc.pos}") from exc
        except UnicodeDecodeError as exc:
            raise TwilioProtocolError(f"invalid JSON: not UTF-8 text ({exc.reason})") from exc
        if not isinstance(message, dict):
            raise TwilioProtocolError(f"expected a JSON object, got a JSON {_kind(message)}")
        event = message.get("event")
        if event is None:
            raise TwilioProtocolError("message has no 'event'")
        if not isinstance(event, str):
            raise TwilioProtocolError(f"'event' must be a string, got a JSON {_kind(event)}")
        self.message = message
        self.event = event

    def fail(self, problem: str) -> TwilioProtocolError:
        return TwilioProtocolError(f"'{self.event}' message: {problem}")

    def get_obj(self, path: str) -> dict[str, Any]:
        value = self._get(path)
        if not isinstance(value, dict):
            raise self.fail(f"'{path}' must be an object, got a JSON {_kind(value)}")
        return value

    def get_str(self, path: str, *, allow_empty: bool = False) -> str:
        value = self._get(path)
        if not isinstance(value, str):
            raise self.fail(f"'{path}' must be a string, got a JSON {_kind(value)}")
        if not value and not allow_empty:
            raise self.fail(f"'{path}' is empty")
        return value

    def get_int(self, path: str) -> int:
        value = self._get(path)
        # Twilio sends these as strings of digits; accept JSON integers too.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        raise self.fail(f"'{path}' must be a whole number, got {value!r:.40}")

    def get_bytes(self, path: str) -> bytes:
        value = self.get_str(path, allow_empty=True)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.fail(f"'{path}' is not valid base64 ({exc})") from exc

    def _get(self, path: str) -> Any:
        value: Any = self.message
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                raise self.fail(f"missing '{path}'")
            value = value[key]
        return value


def _kind(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _start(r: _Reader) -> Start:
    r.get_obj("start")
    stream_sid = r.get_str("start.streamSid")
    if "streamSid" in r.message and r.get_str("streamSid") != stream_sid:
        raise r.fail(f"'streamSid' {r.message['streamSid']!r} differs from "
                     f"'start.streamSid' {stream_sid!r}")
    tracks = r.message["start"].get("tracks")
    if not isinstance(tracks, list) or not tracks or not all(isinstance(t, str) for t in tracks):
        raise r.fail("'start.tracks' must be a non-empty array of strings")
    media_format = MediaFormat(r.get_str("start.mediaFormat.encoding"),
                               r.get_int("start.mediaFormat.sampleRate"),
                               r.get_int("start.mediaFormat.channels"))
    if media_format != MediaFormat(MULAW, MULAW_RATE, 1):
        raise r.fail(f"unsupported media format {media_format.encoding} at "
                     f"{media_format.sample_rate} Hz with {media_format.channels} channel(s); "
                     f"only {MULAW} at {MULAW_RATE} Hz mono is accepted")
    parameters = r.message["start"].get("customParameters", {})
    if not isinstance(parameters, dict):
        raise r.fail(f"'start.customParameters' must be an object, got a JSON {_kind(parameters)}")
    for name, value in parameters.items():
        if not isinstance(value, str):
            raise r.fail(f"custom parameter {name!r} must be a string, got a JSON {_kind(value)}")
    return Start(stream_sid=stream_sid, call_sid=r.get_str("start.callSid"),
                 account_sid=r.get_str("start.accountSid"), tracks=tuple(tracks),
                 custom_parameters=dict(parameters), media_format=media_format)


def parse_inbound(text: str | bytes) -> InboundEvent:
    """One message from Twilio, as an event. Raises ``TwilioProtocolError``."""
    r = _Reader(text)
    if r.event == "connected":
        return Connected(r.get_str("protocol"), r.get_str("version"))
    if r.event == "start":
        return _start(r)
    if r.event == "media":
        return Media(r.get_str("streamSid"), r.get_str("media.track"), r.get_int("media.chunk"),
                     r.get_int("media.timestamp"), r.get_bytes("media.payload"))
    if r.event == "dtmf":
        digit = r.get_str("dtmf.digit")
        if digit not in DTMF_DIGITS:
            raise r.fail(f"{digit!r:.20} is not a DTMF digit (0-9, *, #, A-D)")
        return Dtmf(r.get_str("streamSid"), r.get_str("dtmf.track"), digit)
    if r.event == "mark":
        return Mark(r.get_str("streamSid"), r.get_str("mark.name"))
    if r.event == "stop":
        return Stop(r.get_str("streamSid"), r.get_str("stop.callSid"))
    raise TwilioProtocolError(f"unknown event {r.event!r:.60}")


def parse_outbound(text: str | bytes) -> OutboundEvent:
    """One message a server sends to Twilio (read by the caller simulator)."""
    r = _Reader(text)
    if r.event == "media":
        return OutboundMedia(r.get_str("streamSid"), r.get_bytes("media.payload"))
    if r.event == "mark":
        return OutboundMark(r.get_str("streamSid"), r.get_str("mark.name"))
    if r.event == "clear":
        return OutboundClear(r.get_str("streamSid"))
    raise TwilioProtocolError(f"unknown outbound event {r.event!r:.60}")


# ------------------------------------------------------------------------------ building
def _dump(message: dict[str, Any], sequence_number: int | None = None) -> str:
    if sequence_number is not None:
        message = {"event": message["event"], "sequenceNumber": str(sequence_number), **message}
    return json.dumps(message, separators=(",", ":"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def media_message(stream_sid: str, ulaw: bytes) -> str:
    """Audio for Twilio to play (8 kHz μ-law)."""
    return _dump({"event": "media", "streamSid": stream_sid, "media": {"payload": _b64(ulaw)}})


def mark_message(stream_sid: str, name: str) -> str:
    """Ask Twilio to echo ``name`` once the audio sent before it has played."""
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Ask Twilio to drop the audio it has buffered (and echo the pending marks)."""
    return _dump({"event": "clear", "streamSid": stream_sid})


def connected_message() -> str:
    return _dump({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start_message(stream_sid: str, call_sid: str, *, account_sid: str = DEFAULT_ACCOUNT_SID,
                  custom_parameters: dict[str, str] | None = None,
                  sequence_number: int | None = 1,
                  tracks: tuple[str, ...] = ("inbound",)) -> str:
    return _dump({
        "event": "start", "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid, "accountSid": account_sid, "callSid": call_sid,
            "tracks": list(tracks), "customParameters": dict(custom_parameters or {}),
            "mediaFormat": {"encoding": MULAW, "sampleRate": MULAW_RATE, "channels": 1},
        },
    }, sequence_number)


def inbound_media_message(stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes, *,
                          sequence_number: int | None = None, track: str = "inbound") -> str:
    return _dump({"event": "media", "streamSid": stream_sid, "media": {
        "track": track, "chunk": str(chunk), "timestamp": str(timestamp_ms),
        "payload": _b64(ulaw)}}, sequence_number)


def dtmf_message(stream_sid: str, digit: str, *, sequence_number: int | None = None) -> str:
    if digit not in DTMF_DIGITS:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    return _dump({"event": "dtmf", "streamSid": stream_sid,
                  "dtmf": {"track": "inbound_track", "digit": digit}}, sequence_number)


def inbound_mark_message(stream_sid: str, name: str, *,
                         sequence_number: int | None = None) -> str:
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}},
                 sequence_number)


def stop_message(stream_sid: str, call_sid: str, *, account_sid: str = DEFAULT_ACCOUNT_SID,
                 sequence_number: int | None = None) -> str:
    return _dump({"event": "stop", "streamSid": stream_sid,
                  "stop": {"accountSid": account_sid, "callSid": call_sid}}, sequence_number)
