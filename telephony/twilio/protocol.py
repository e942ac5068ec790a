"""Twilio Media Streams messages, sans I/O: JSON text ⇄ frozen dataclasses.

Inbound (Twilio → us): ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``.
Outbound (us → Twilio): ``media``, ``mark``, ``clear``. The client-side builders and
``parse_outbound`` serve the caller simulator and the tests, which play Twilio's part.

Every malformed message raises ``TwilioProtocolError`` (a ``ValueError``) with a message that
says what was wrong; nothing else escapes ``parse_inbound``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

DTMF_DIGITS = frozenset("0123456789*#ABCD")
ACCEPTED_ENCODING = "audio/x-mulaw"
ACCEPTED_RATE = 8000


class TwilioProtocolError(ValueError):
    """A message that is not valid Twilio Media Streams."""


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str = ACCEPTED_ENCODING
    sample_rate: int = ACCEPTED_RATE
    channels: int = 1


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
    media_format: MediaFormat = MediaFormat()


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    track: str
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
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
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboundMark:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class OutboundClear:
    stream_sid: str


OutboundEvent = OutboundMedia | OutboundMark | OutboundClear


# ------------------------------------------------------------------------------ parsing
def _load(text: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TwilioProtocolError(f"invalid JSON: {exc.msg if hasattr(exc, 'msg') else exc}") from exc
    if not isinstance(message, dict):
        raise TwilioProtocolError(f"expected a JSON object, got {type(message).__name__}")
    return message


def _obj(message: dict[str, Any], key: str, event: str) -> dict[str, Any]:
    value = message.get(key)
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"'{event}' message needs an object '{key}'")
    return value


def _str(container: dict[str, Any], key: str, event: str, *, default: str | None = None) -> str:
    value = container.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise TwilioProtocolError(f"'{event}' message needs a string '{key}'")
    return value


def _int(container: dict[str, Any], key: str, event: str) -> int:
    value = container.get(key)
    if isinstance(value, bool):
        raise TwilioProtocolError(f"'{event}' message: '{key}' must be a number")
    try:
        return int(value)  # Twilio sends chunk and timestamp as strings of digits
    except (TypeError, ValueError) as exc:
        raise TwilioProtocolError(f"'{event}' message: '{key}' must be a number") from exc


def _b64(value: str, event: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TwilioProtocolError(f"'{event}' message: payload is not valid base64") from exc


def parse_inbound(text: str | bytes) -> InboundEvent:
    """One message from Twilio."""
    message = _load(text)
    event = message.get("event")
    if not isinstance(event, str):
        raise TwilioProtocolError("message has no 'event'")
    if event == "connected":
        return Connected(str(message.get("protocol", "")), str(message.get("version", "")))
    if event == "start":
        start = _obj(message, "start", event)
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict):
            raise TwilioProtocolError("'start' message: 'mediaFormat' must be an object")
        media_format = MediaFormat(
            encoding=str(fmt.get("encoding", ACCEPTED_ENCODING)),
            sample_rate=_int({"r": fmt.get("sampleRate", ACCEPTED_RATE)}, "r", event),
            channels=_int({"c": fmt.get("channels", 1)}, "c", event),
        )
        if (media_format.encoding, media_format.sample_rate, media_format.channels) != (
                ACCEPTED_ENCODING, ACCEPTED_RATE, 1):
            raise TwilioProtocolError(
                f"unsupported media format {media_format.encoding} {media_format.sample_rate} Hz "
                f"x{media_format.channels}; only {ACCEPTED_ENCODING} 8000 Hz mono")
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise TwilioProtocolError("'start' message: 'customParameters' must be an object")
        tracks = start.get("tracks") or ["inbound"]
        if not isinstance(tracks, list):
            raise TwilioProtocolError("'start' message: 'tracks' must be a list")
        return Start(
            stream_sid=_str(message, "streamSid", event) if "streamSid" in message
            else _str(start, "streamSid", event),
            call_sid=_str(start, "callSid", event),
            account_sid=_str(start, "accountSid", event, default=""),
            tracks=tuple(str(t) for t in tracks),
            custom_parameters={str(k): str(v) for k, v in params.items()},
            media_format=media_format,
        )
    if event == "media":
        media = _obj(message, "media", event)
        return Media(
            stream_sid=_str(message, "streamSid", event, default=""),
            track=_str(media, "track", event, default="inbound"),
            chunk=_int({"chunk": media.get("chunk", 0)}, "chunk", event),
            timestamp_ms=_int({"timestamp": media.get("timestamp", 0)}, "timestamp", event),
            payload=_b64(_str(media, "payload", event), event),
        )
    if event == "dtmf":
        dtmf = _obj(message, "dtmf", event)
        digit = _str(dtmf, "digit", event)
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise TwilioProtocolError(f"'dtmf' message: {digit!r} is not a DTMF digit")
        return Dtmf(_str(message, "streamSid", event, default=""),
                    _str(dtmf, "track", event, default="inbound_track"), digit)
    if event == "mark":
        mark = _obj(message, "mark", event)
        return Mark(_str(message, "streamSid", event, default=""), _str(mark, "name", event))
    if event == "stop":
        stop = message.get("stop") or {}
        if not isinstance(stop, dict):
            raise TwilioProtocolError("'stop' message: 'stop' must be an object")
        return Stop(_str(message, "streamSid", event, default=""),
                    _str(stop, "callSid", event, default=""))
    raise TwilioProtocolError(f"unknown event {event[:40]!r}")


def parse_outbound(text: str | bytes) -> OutboundEvent:
    """One message we send to Twilio (used by the caller simulator)."""
    message = _load(text)
    event = message.get("event")
    stream_sid = str(message.get("streamSid", ""))
    if event == "media":
        return OutboundMedia(stream_sid, _b64(_str(_obj(message, "media", "media"), "payload",
                                                    "media"), "media"))
    if event == "mark":
        return OutboundMark(stream_sid, _str(_obj(message, "mark", "mark"), "name", "mark"))
    if event == "clear":
        return OutboundClear(stream_sid)
    raise TwilioProtocolError(f"unknown outbound event {str(event)[:40]!r}")


# ------------------------------------------------------------------------------ building
def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _b64s(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def media_message(stream_sid: str, ulaw: bytes) -> str:
    return _dump({"event": "media", "streamSid": stream_sid, "media": {"payload": _b64s(ulaw)}})


def mark_message(stream_sid: str, name: str) -> str:
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return _dump({"event": "clear", "streamSid": stream_sid})


def connected_message() -> str:
    return _dump({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start_message(stream_sid: str, call_sid: str, *, account_sid: str = "AC" + "0" * 32,
                  custom_parameters: dict[str, str] | None = None, sequence: int = 1) -> str:
    return _dump({
        "event": "start", "sequenceNumber": str(sequence), "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid, "accountSid": account_sid, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": custom_parameters or {},
            "mediaFormat": {"encoding": ACCEPTED_ENCODING, "sampleRate": ACCEPTED_RATE,
                            "channels": 1},
        },
    })


def inbound_media_message(stream_sid: str, chunk: int, timestamp_ms: int, ulaw: bytes) -> str:
    return _dump({"event": "media", "streamSid": stream_sid, "media": {
        "track": "inbound", "chunk": str(chunk), "timestamp": str(timestamp_ms),
        "payload": _b64s(ulaw)}})


def dtmf_message(stream_sid: str, digit: str) -> str:
    return _dump({"event": "dtmf", "streamSid": stream_sid,
                  "dtmf": {"track": "inbound_track", "digit": digit}})


def inbound_mark_message(stream_sid: str, name: str) -> str:
    return mark_message(stream_sid, name)


def stop_message(stream_sid: str, call_sid: str, *, account_sid: str = "AC" + "0" * 32) -> str:
    return _dump({"event": "stop", "streamSid": stream_sid,
                  "stop": {"accountSid": account_sid, "callSid": call_sid}})
