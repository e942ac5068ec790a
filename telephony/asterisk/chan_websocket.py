"""Asterisk's WebSocket channel (chan_websocket), sans I/O: control messages and media codecs.

Media travels in BINARY WebSocket messages, raw, in the codec the dial string chose
(``c(ulaw)``); control travels in TEXT messages. Asterisk sends events (``MEDIA_START`` first,
then ``DTMF_END``, ``MEDIA_XOFF``/``MEDIA_XON``, ``STATUS``, ``MEDIA_BUFFERING_COMPLETED``,
``MEDIA_MARK_PROCESSED``, ``QUEUE_DRAINED``, ``ERROR``); the application sends commands
(``ANSWER``, ``HANGUP``, ``FLUSH_MEDIA``, ``MARK_MEDIA``, ``GET_STATUS``, ...).

Two control formats exist. The original plain text puts a message on one line, parameters as
``name:value`` words (``MEDIA_START connection_id:… channel:WebSocket/… format:ulaw
optimal_frame_size:160 ptime:20``), except that the correlation id of ``MEDIA_MARK_PROCESSED``,
``MEDIA_BUFFERING_COMPLETED``, ``MARK_MEDIA`` and ``STOP_MEDIA_BUFFERING`` is a bare word and
``ERROR``'s ``error_text`` runs to the end of the line. JSON (Asterisk 20.18, 22.8, 23.2 and
later, ``control_message_format = json`` or the ``f(json)`` dial option) sends one object per
message, ``{"event": …}`` or ``{"command": …}``, and only it carries the channel's variables
in ``MEDIA_START``. ``control_format`` tells them apart; commands are sent back in the format
``MEDIA_START`` came in. Asterisk ignores command messages longer than 128 bytes.

Server side (the bridge): ``parse_event`` and ``build_command``. Client side (tests, playing
Asterisk's part): ``media_start_message`` … and ``parse_command``.

Codecs: ``codec_for(format)`` maps Asterisk's format names (``ulaw``, ``alaw``, ``slin``,
``slin16``, …) to a sample rate and converters to and from 16-bit PCM. ``slin`` media is in
the Asterisk host's byte order, little-endian on x86 and ARM, which is what is assumed.

Errors::

    ValueError
     └── ChanWebsocketError   a malformed message, a missing or mistyped field, an unknown
                              command, a format this bridge cannot decode
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from telephony.audio import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16

DTMF_DIGITS = frozenset("0123456789*#ABCD")
MAX_COMMAND_BYTES = 128  # Asterisk drops longer TEXT messages (MAX_TEXT_MESSAGE_LEN)
_NAME = re.compile(r"[A-Z][A-Z_]*\Z")


class ChanWebsocketError(ValueError):
    """A message or format that is not valid chan_websocket."""


class ControlFormat(StrEnum):
    PLAIN = "plain-text"
    JSON = "json"


def control_format(text: str | bytes) -> ControlFormat:
    """The format of a control message: JSON objects start with ``{``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return ControlFormat.JSON if text.lstrip().startswith("{") else ControlFormat.PLAIN


# ------------------------------------------------------------------------------ media codecs
@dataclass(frozen=True, slots=True)
class MediaCodec:
    """An Asterisk format: its rate and how its bytes become 16-bit PCM and back."""

    name: str
    rate: int
    bytes_per_sample: int
    decode: Callable[[bytes], bytes]
    encode: Callable[[bytes], bytes]

    def frame_bytes(self, ms: int) -> int:
        return self.rate * ms // 1000 * self.bytes_per_sample

    def silence(self, n_bytes: int) -> bytes:
        return self.encode(bytes(n_bytes // self.bytes_per_sample * 2))


def _same(data: bytes) -> bytes:
    return data


_SLIN_RATES = {"slin": 8000, "slin12": 12_000, "slin16": 16_000, "slin24": 24_000,
               "slin32": 32_000, "slin44": 44_100, "slin48": 48_000, "slin96": 96_000,
               "slin192": 192_000}
CODECS: dict[str, MediaCodec] = {
    "ulaw": MediaCodec("ulaw", 8000, 1, ulaw_to_pcm16, pcm16_to_ulaw),
    "alaw": MediaCodec("alaw", 8000, 1, alaw_to_pcm16, pcm16_to_alaw),
    **{name: MediaCodec(name, rate, 2, _same, _same) for name, rate in _SLIN_RATES.items()},
}


def codec_for(name: str) -> MediaCodec:
    """The codec of an Asterisk format name; others (opus, g722, …) are refused."""
    codec = CODECS.get(name.lower())
    if codec is None:
        raise ChanWebsocketError(f"media format {name!r:.40} is not supported; use one of "
                                 f"{', '.join(CODECS)} in the dial string's c() option")
    return codec


# ------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class MediaStart:
    connection_id: str
    channel: str
    format: str
    optimal_frame_size: int
    channel_id: str | None = None
    ptime: int | None = None
    channel_variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DtmfEnd:
    digit: str
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaXoff:
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaXon:
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueDrained:
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    queue_length: int
    xon_level: int
    xoff_level: int
    queue_full: bool
    bulk_media: bool
    media_paused: bool
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaBufferingCompleted:
    correlation_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaMarkProcessed:
    correlation_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Asterisk could not carry out a command (``ERROR``)."""

    error_text: str
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event this module does not know (a newer Asterisk's); safe to ignore."""

    name: str


Event = (MediaStart | DtmfEnd | MediaXoff | MediaXon | QueueDrained | Status
         | MediaBufferingCompleted | MediaMarkProcessed | ErrorEvent | UnknownEvent)

_BARE_ID_EVENTS = {"MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED"}


# ------------------------------------------------------------------------------ reading events
class _Fields:
    """Typed access to one message's parameters, with errors naming the message and field."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self.name = name
        self.values = values

    def fail(self, problem: str) -> ChanWebsocketError:
        return ChanWebsocketError(f"{self.name}: {problem}")

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(f"missing '{key}'")
            return None
        if not isinstance(value, str):
            raise self.fail(f"'{key}' must be a string, got {value!r:.40}")
        return value

    def integer(self, key: str, *, required: bool = True) -> int | None:
        value = self.values.get(key)
        if value is None:
            if required:
                raise self.fail(f"missing '{key}'")
            return None
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.fail(f"'{key}' must be a whole number, got {value!r:.40}")
        return value

    def flag(self, key: str) -> bool:
        value = self.values.get(key)
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise self.fail(f"'{key}' must be true or false, got {value!r:.40}")


def _plain_fields(line: str) -> _Fields:
    name, _, rest = line.partition(" ")
    if not _NAME.match(name):
        raise ChanWebsocketError(f"not a chan_websocket message: {line!r:.60}")
    rest = rest.strip()
    if name in _BARE_ID_EVENTS:
        return _Fields(name, {"correlation_id": rest or None})
    values: dict[str, Any] = {}
    if name == "ERROR":  # error_text runs to the end of the line
        head, sep, text = rest.partition("error_text:")
        rest, values["error_text"] = head, text.strip() if sep else None
    for word in rest.split():
        key, sep, value = word.partition(":")
        if not sep or not key:
            raise ChanWebsocketError(f"{name}: {word!r:.40} is not a name:value parameter")
        values[key] = value
    return _Fields(name, values)


def _json_fields(text: str) -> _Fields:
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChanWebsocketError(f"invalid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(message, dict):
        raise ChanWebsocketError("a JSON control message must be an object")
    name = message.get("event", message.get("command"))
    if not isinstance(name, str) or not _NAME.match(name):
        raise ChanWebsocketError(f"a JSON control message needs an 'event' name, got {name!r:.40}")
    return _Fields(name, message)


def _decode(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ChanWebsocketError(f"control message is not UTF-8 ({exc.reason})") from exc
    text = text.strip()
    if not text:
        raise ChanWebsocketError("empty control message")
    return text


def _variables(f: _Fields) -> dict[str, str]:
    raw = f.values.get("channel_variables") or {}
    if not isinstance(raw, dict):
        raise f.fail("'channel_variables' must be an object")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def parse_event(text: str | bytes) -> Event:
    """One event from Asterisk, in either control format. Raises ``ChanWebsocketError``."""
    text = _decode(text)
    if control_format(text) is ControlFormat.JSON:
        f = _json_fields(text)
        if "event" not in f.values:
            raise f.fail("a command, not an event: Asterisk does not send commands")
    else:
        f = _plain_fields(text)
    channel_id = f.text("channel_id", required=False)
    if f.name == "MEDIA_START":
        size = f.integer("optimal_frame_size")
        if not size:
            raise f.fail("'optimal_frame_size' must be positive")
        return MediaStart(connection_id=str(f.text("connection_id")),
                          channel=str(f.text("channel")),
                          format=str(f.text("format")), optimal_frame_size=size,
                          channel_id=channel_id, ptime=f.integer("ptime", required=False),
                          channel_variables=_variables(f))
    if f.name == "DTMF_END":
        digit = str(f.text("digit"))
        if digit not in DTMF_DIGITS:
            raise f.fail(f"{digit!r:.20} is not a DTMF digit (0-9, *, #, A-D)")
        return DtmfEnd(digit, channel_id)
    if f.name == "MEDIA_XOFF":
        return MediaXoff(channel_id)
    if f.name == "MEDIA_XON":
        return MediaXon(channel_id)
    if f.name == "QUEUE_DRAINED":
        return QueueDrained(channel_id)
    if f.name == "STATUS":
        return Status(int(f.integer("queue_length") or 0), int(f.integer("xon_level") or 0),
                      int(f.integer("xoff_level") or 0), f.flag("queue_full"),
                      f.flag("bulk_media"), f.flag("media_paused"), channel_id)
    if f.name == "MEDIA_BUFFERING_COMPLETED":
        return MediaBufferingCompleted(f.text("correlation_id", required=False), channel_id)
    if f.name == "MEDIA_MARK_PROCESSED":
        return MediaMarkProcessed(f.text("correlation_id", required=False), channel_id)
    if f.name == "ERROR":
        return ErrorEvent(f.text("error_text", required=False) or "(no text)", channel_id)
    return UnknownEvent(f.name)


# ------------------------------------------------------------------------------ commands
class Command(StrEnum):
    ANSWER = "ANSWER"
    HANGUP = "HANGUP"
    START_MEDIA_BUFFERING = "START_MEDIA_BUFFERING"
    STOP_MEDIA_BUFFERING = "STOP_MEDIA_BUFFERING"
    FLUSH_MEDIA = "FLUSH_MEDIA"
    PAUSE_MEDIA = "PAUSE_MEDIA"
    CONTINUE_MEDIA = "CONTINUE_MEDIA"
    MARK_MEDIA = "MARK_MEDIA"
    GET_STATUS = "GET_STATUS"
    REPORT_QUEUE_DRAINED = "REPORT_QUEUE_DRAINED"
    SET_MEDIA_DIRECTION = "SET_MEDIA_DIRECTION"


_WITH_ID = {Command.STOP_MEDIA_BUFFERING, Command.MARK_MEDIA}
DIRECTIONS = frozenset({"in", "out", "both"})


@dataclass(frozen=True, slots=True)
class CommandMessage:
    command: Command
    correlation_id: str | None = None
    direction: str | None = None


def build_command(command: Command, fmt: ControlFormat, *, correlation_id: str | None = None,
                  direction: str | None = None) -> str:
    """The TEXT message for ``command`` in ``fmt``."""
    message = CommandMessage(Command(command), correlation_id, direction)
    _check_command(message)
    if fmt is ControlFormat.JSON:
        body: dict[str, str] = {"command": message.command.value}
        if correlation_id is not None:
            body["correlation_id"] = correlation_id
        if direction is not None:
            body["direction"] = direction
        text = json.dumps(body, separators=(",", ":"))
    else:
        argument = correlation_id if correlation_id is not None else direction
        text = message.command.value + (f" {argument}" if argument is not None else "")
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise ChanWebsocketError(f"{command.value}: {len(text.encode())} bytes is more than the "
                                 f"{MAX_COMMAND_BYTES} Asterisk reads")
    return text


def _check_command(message: CommandMessage) -> None:
    name = message.command.value
    if message.correlation_id is not None:
        if message.command not in _WITH_ID:
            raise ChanWebsocketError(f"{name} takes no correlation id")
        if not message.correlation_id or any(c.isspace() for c in message.correlation_id):
            raise ChanWebsocketError(f"{name}: a correlation id is one non-empty word, "
                                     f"got {message.correlation_id!r:.40}")
    if (message.command is Command.SET_MEDIA_DIRECTION) != (message.direction is not None):
        raise ChanWebsocketError(f"{name}: a direction goes with SET_MEDIA_DIRECTION, and only it")
    if message.direction is not None and message.direction not in DIRECTIONS:
        raise ChanWebsocketError(f"{name}: direction must be in, out or both, "
                                 f"got {message.direction!r:.20}")


def parse_command(text: str | bytes) -> CommandMessage:
    """A command the application sent (read by tests playing Asterisk)."""
    text = _decode(text)
    if control_format(text) is ControlFormat.JSON:
        f = _json_fields(text)
        values = f.values
        correlation_id, direction = values.get("correlation_id"), values.get("direction")
    else:
        name, _, argument = text.partition(" ")
        f = _Fields(name, {})
        argument = argument.strip() or None
        correlation_id = argument if name in {c.value for c in _WITH_ID} else None
        direction = argument if name == Command.SET_MEDIA_DIRECTION else None
        if argument is not None and correlation_id is None and direction is None:
            raise f.fail(f"takes no argument, got {argument!r:.40}")
    try:
        command = Command(f.name)
    except ValueError as exc:
        raise ChanWebsocketError(f"unknown command {f.name!r:.40}") from exc
    message = CommandMessage(command, correlation_id, direction)
    _check_command(message)
    return message


# ------------------------------------------------------------------------------ Asterisk's side
def _event(fmt: ControlFormat, name: str, params: dict[str, Any], *,
           bare: str | None = None) -> str:
    if fmt is ControlFormat.JSON:
        return json.dumps({"event": name, **params}, separators=(",", ":"))
    if bare is not None:
        return f"{name} {bare}"
    words = [f"{key}:{str(value).lower() if isinstance(value, bool) else value}"
             for key, value in params.items() if value is not None]
    return " ".join([name, *words])


def media_start_message(connection_id: str, channel: str, *, format: str = "ulaw",
                        optimal_frame_size: int = 160, channel_id: str | None = None,
                        ptime: int | None = 20, channel_variables: dict[str, str] | None = None,
                        fmt: ControlFormat = ControlFormat.PLAIN) -> str:
    params: dict[str, Any] = {"connection_id": connection_id, "channel": channel,
                              "channel_id": channel_id, "format": format,
                              "optimal_frame_size": optimal_frame_size, "ptime": ptime}
    if fmt is ControlFormat.JSON:
        params = {k: v for k, v in params.items() if v is not None}
        params["channel_variables"] = dict(channel_variables or {})
    return _event(fmt, "MEDIA_START", params)


def dtmf_end_message(digit: str, *, channel_id: str | None = None,
                     fmt: ControlFormat = ControlFormat.PLAIN) -> str:
    if digit not in DTMF_DIGITS:
        raise ValueError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    params = {"digit": digit, "channel_id": channel_id}
    return _event(fmt, "DTMF_END", {k: v for k, v in params.items() if v is not None})


def mark_processed_message(correlation_id: str, *, channel_id: str | None = None,
                           fmt: ControlFormat = ControlFormat.PLAIN) -> str:
    if fmt is ControlFormat.JSON:
        return _event(fmt, "MEDIA_MARK_PROCESSED",
                      {"channel_id": channel_id or "", "correlation_id": correlation_id})
    return _event(fmt, "MEDIA_MARK_PROCESSED", {}, bare=correlation_id)


def simple_event_message(name: str, *, channel_id: str | None = None,
                         fmt: ControlFormat = ControlFormat.PLAIN) -> str:
    """``MEDIA_XOFF``, ``MEDIA_XON`` or ``QUEUE_DRAINED``."""
    if fmt is ControlFormat.JSON:
        return _event(fmt, name, {"channel_id": channel_id or ""})
    return name
