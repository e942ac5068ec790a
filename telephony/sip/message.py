"""SIP messages, sans I/O (RFC 3261 §7, §8.2.6, §18.3): bytes ⇄ ``Request`` / ``Response``.

``parse_message(data)`` reads one message (a UDP datagram, or one unit cut out of a TCP stream
by ``SipStreamFramer``) and ``bytes(message)`` writes one, always with a Content-Length that
matches the body (so Content-Length is not kept among the parsed headers). Parsed messages
are checked for what every later layer relies on (a Via, From, To, Call-ID and CSeq that
parse, and a CSeq method that matches the request's), so the accessors (``msg.via``,
``msg.cseq``, ...) do not fail on them; they parse on each access and raise ``SipParseError``
for a message built by hand with bad values.

Bad input raises ``SipParseError`` and nothing else; its ``status`` says how to answer it (400;
416, 505, 513 where they fit). Over TCP a ``SipStreamFramer`` error means the stream has lost
its framing: close the connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from telephony.sip.errors import SipParseError
from telephony.sip.headers import (
    Address,
    CSeq,
    Headers,
    SipUri,
    Via,
    canonical_name,
    is_token,
)

SIP_VERSION = "SIP/2.0"
MAX_MESSAGE_SIZE = 65_535  # the largest UDP datagram; over TCP a bound against memory abuse
MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 branches start with it (§8.1.1.7)

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here", 489: "Bad Event",
    491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}
_CLASS_REASONS = {1: "Trying", 2: "OK", 3: "Redirected", 4: "Request Failure",
                  5: "Server Failure", 6: "Global Failure"}


def reason_phrase(status: int) -> str:
    return REASON_PHRASES.get(status) or _CLASS_REASONS.get(status // 100, "Unknown")


# ------------------------------------------------------------------------------ identifiers
def new_branch() -> str:
    """A fresh Via branch with the RFC 3261 magic cookie."""
    return MAGIC_COOKIE + secrets.token_hex(12)


def new_tag() -> str:
    """A fresh From/To tag (§19.3: at least 32 bits of randomness)."""
    return secrets.token_hex(8)


def new_call_id(host: str | None = None) -> str:
    token = secrets.token_hex(16)
    return f"{token}@{host}" if host else token


# ------------------------------------------------------------------------------ messages
class _Message:
    """Typed access to the headers every SIP message carries."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def header(self, name: str) -> str:
        """The first value of header ``name``; ``SipParseError`` when there is none."""
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"no {name} header")
        return value

    @property
    def call_id(self) -> str:
        return self.header("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.header("CSeq"))

    @property
    def from_(self) -> Address:
        return Address.parse(self.header("From"))

    @property
    def to(self) -> Address:
        return Address.parse(self.header("To"))

    @property
    def via(self) -> list[Via]:
        """Every Via, topmost first."""
        return [Via.parse(value) for value in self.headers.values("Via")]

    @property
    def top_via(self) -> Via:
        return Via.parse(self.header("Via"))

    @property
    def contact(self) -> list[Address]:
        return [Address.parse(v) for v in self.headers.values("Contact") if v.strip() != "*"]

    @property
    def record_route(self) -> list[Address]:
        return [Address.parse(value) for value in self.headers.values("Record-Route")]

    @property
    def content_type(self) -> str | None:
        """The media type, lower case, without parameters (``application/sdp``)."""
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None


def _header_lines(headers: Headers, body: bytes) -> str:
    lines = [f"{name}: {value}\r\n" for name, value in headers if name != "Content-Length"]
    return "".join(lines) + f"Content-Length: {len(body)}\r\n\r\n"


@dataclass(slots=True)
class Request(_Message):
    method: str
    uri: SipUri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Request:
        message = parse_message(data)
        if not isinstance(message, Request):
            raise SipParseError("expected a request, got a response")
        return message

    def __bytes__(self) -> bytes:
        start = f"{self.method} {self.uri} {SIP_VERSION}\r\n"
        return (start + _header_lines(self.headers, self.body)).encode() + self.body


@dataclass(slots=True)
class Response(_Message):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> Response:
        message = parse_message(data)
        if not isinstance(message, Response):
            raise SipParseError("expected a response, got a request")
        return message

    def __bytes__(self) -> bytes:
        start = f"{SIP_VERSION} {self.status} {self.reason}\r\n"
        return (start + _header_lines(self.headers, self.body)).encode() + self.body

    @property
    def provisional(self) -> bool:
        return self.status < 200

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300


Message = Request | Response


# ------------------------------------------------------------------------------ parsing
def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """(head, rest) at the first empty line; bare-LF line ends are tolerated."""
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    if not ends:
        raise SipParseError("no empty line after the headers")
    index, length = min(ends)
    return data[:index], data[index + length:]


def _start_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ", 2)
    if len(parts) == 2 and parts[0].upper().startswith("SIP/"):
        parts.append("")  # a status line without a reason phrase: tolerated
    if len(parts) != 3 or not all(parts[:2]):
        raise SipParseError(f"bad start line {line!r:.80}")
    return parts[0], parts[1], parts[2]


def _check_version(version: str) -> None:
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"unsupported version {version!r:.20}", status=505)


def _content_length(headers: Headers) -> int | None:
    values = {value.strip() for value in headers.values("Content-Length")}
    if not values:
        return None
    text = values.pop()
    if values or not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise SipParseError("bad Content-Length")
    return int(text)


def _validate(message: Message) -> None:
    """Check, once, the headers every later layer reads (RFC 3261 §8.1.1)."""
    if not message.via:
        raise SipParseError("no Via header")
    if not message.call_id.strip():
        raise SipParseError("empty Call-ID")
    _ = (message.from_, message.to, message.contact)  # parsing them is the check
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError(f"CSeq method {cseq.method} differs from {message.method}")
    max_forwards = message.headers.get("Max-Forwards")
    if max_forwards is not None and not (max_forwards.isascii() and max_forwards.isdigit()
                                         and len(max_forwards) <= 3 and int(max_forwards) < 256):
        raise SipParseError(f"bad Max-Forwards {max_forwards!r:.20}")


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE,
                  stream: bool = False) -> Message:
    """One SIP message from bytes. ``stream=True`` (TCP) makes Content-Length mandatory.

    The body is what Content-Length says (bytes beyond it are ignored, as over UDP they must
    be); a body shorter than it is an error. Raises ``SipParseError`` only.
    """
    data = bytes(data)
    if len(data) > max_size:
        raise SipParseError(f"message of {len(data)} bytes exceeds {max_size}", status=513)
    data = data.lstrip(b"\r\n")  # CRLFs before the start line are ignored (§7.5)
    head_bytes, rest = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"headers are not UTF-8 ({exc.reason})") from None
    lines = [line.rstrip("\r") for line in head.split("\n")]
    fields: list[list[str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # folded continuation of the previous header (§7.3.1)
            if not fields:
                raise SipParseError("continuation line before any header")
            fields[-1][1] = f"{fields[-1][1]} {line.strip()}".strip()
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not is_token(name):
            raise SipParseError(f"bad header line {line!r:.80}")
        fields.append([name, value.strip()])
    if any("\x00" in value or "\r" in value for _, value in fields):
        raise SipParseError("control characters in a header value")
    headers = Headers((canonical_name(name), value) for name, value in fields)

    length = _content_length(headers)
    if length is None and stream:
        raise SipParseError("no Content-Length on a stream transport")
    if length is not None and len(rest) < length:
        raise SipParseError(f"body of {len(rest)} bytes is shorter than Content-Length {length}")
    body = rest if length is None else rest[:length]
    headers.remove("Content-Length")  # len(body) is the truth, and bytes() writes it

    first, second, third = _start_line(lines[0])
    message: Message
    if first.upper().startswith("SIP/"):
        _check_version(first)
        if not (len(second) == 3 and second.isascii() and second.isdigit()
                and 100 <= int(second) < 700):
            raise SipParseError(f"bad status code {second!r:.20}")
        message = Response(int(second), third, headers, body)
    else:
        _check_version(third)
        if not is_token(first):
            raise SipParseError(f"bad method {first!r:.40}")
        message = Request(first, SipUri.parse(second), headers, body)
    _validate(message)
    return message


def is_keepalive(datagram: bytes) -> bool:
    """A UDP keep-alive (CRLFs, RFC 5626 §4.4.1; some phones send NULs): ignore it quietly."""
    return bool(datagram) and not bytes(datagram).strip(b"\r\n\x00 ")


# ------------------------------------------------------------------------------ TCP framing
class SipStreamFramer:
    """Cuts a TCP byte stream into whole messages using Content-Length (§18.3).

    ``feed(data)`` returns the complete messages seen so far, as bytes for ``parse_message``.
    Empty lines between messages are skipped; each double CRLF among them is an RFC 5626
    keep-alive "ping", counted in ``keepalives`` so the caller can answer with a CRLF "pong".
    A message without Content-Length, or larger than ``max_size``, raises ``SipParseError``:
    the stream cannot be framed any more and should be closed.
    """

    def __init__(self, *, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self.keepalives = 0
        self._buffer = bytearray()
        self._scanned = 0  # how far the search for the end of the headers has looked
        self._size: int | None = None  # the whole size of the message at the buffer's start

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        while self._buffer:
            if self._size is None:
                blank = len(self._buffer) - len(self._buffer.lstrip(b"\r\n"))
                if blank:
                    if blank == len(self._buffer) and blank < 4:
                        break  # maybe the first half of a ping
                    self.keepalives += bytes(self._buffer[:blank]).count(b"\r\n\r\n")
                    del self._buffer[:blank]
                    continue
                self._size = self._measure()
                if self._size is None:
                    break
            if len(self._buffer) < self._size:
                break
            messages.append(bytes(self._buffer[:self._size]))
            del self._buffer[:self._size]
            self._size, self._scanned = None, 0
        return messages

    def _measure(self) -> int | None:
        """The size of the message starting the buffer, once its headers are complete."""
        start = max(0, self._scanned - 3)
        ends = [(i, n) for sep, n in ((b"\r\n\r\n", 4), (b"\n\n", 2))
                if (i := self._buffer.find(sep, start)) >= 0]
        if not ends:
            self._scanned = len(self._buffer)
            if len(self._buffer) > self.max_size:
                raise SipParseError(f"no end of headers within {self.max_size} bytes",
                                    status=513)
            return None
        index, separator = min(ends)
        length = None
        for line in bytes(self._buffer[:index]).split(b"\n")[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower() in (b"content-length", b"l"):
                text = value.strip()
                if not (text.isdigit() and len(text) <= 9):
                    raise SipParseError(f"bad Content-Length {text[:20]!r}")
                length = int(text)
        if length is None:
            raise SipParseError("no Content-Length on a stream transport")
        size = index + separator + length
        if size > self.max_size:
            raise SipParseError(f"message of {size} bytes exceeds {self.max_size}", status=513)
        return size


# ------------------------------------------------------------------------------ responses
def response_for(request: Request, status: int, reason: str | None = None, *,
                 to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (),
                 body: bytes = b"", content_type: str | None = None) -> Response:
    """A response to ``request`` as RFC 3261 §8.2.6.2 builds it.

    Via (all of them, in order), From, To, Call-ID and CSeq are copied; ``to_tag`` is added to
    To unless the request's To already has a tag (an in-dialog request). A 100 Trying also
    copies Timestamp (§8.2.6.1). ``headers`` are appended; ``content_type`` labels ``body``.
    """
    out = Headers()
    for value in request.headers.values("Via"):
        out.add("Via", value)
    out.add("From", request.header("From"))
    to = request.to
    if to_tag is not None and to.tag is None:
        out.add("To", str(to.with_tag(to_tag)))
    else:
        out.add("To", request.header("To"))
    out.add("Call-ID", request.call_id)
    out.add("CSeq", request.header("CSeq"))
    if status == 100 and "Timestamp" in request.headers:
        out.add("Timestamp", request.header("Timestamp"))
    for name, value in headers:
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    return Response(status, reason or reason_phrase(status), out, body)


def stamp_received(request: Request, source_host: str, source_port: int) -> Request:
    """``request`` with its top Via stamped with where it really came from (§18.2.1, RFC 3581),
    so that ``response_for`` copies it and responses find their way back through NAT."""
    vias = request.via
    vias[0] = vias[0].stamped(source_host, source_port)
    headers = request.headers.copy()
    headers.set("Via", *(str(via) for via in vias))
    return Request(request.method, request.uri, headers, request.body)
