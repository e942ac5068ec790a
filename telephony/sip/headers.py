"""SIP header values, sans I/O: URIs, name-addrs, Via, CSeq, parameters and the header multi-map.

Each value type is a frozen dataclass with ``parse(text)`` and ``__str__`` (SIP headers are
text; whole messages, in ``message.py``, are bytes). Parsing follows RFC 3261 §25 closely
enough to read what real user agents send, and raises ``SipParseError`` for anything else;
quoted strings and ``<...>`` are respected wherever commas and semicolons split values.

Header names compare case-insensitively and compact forms (``v``, ``f``, ``t``, ``i``, ``m``,
``l``, ``c``, ``k``, ``s``, ...; RFC 3261 §7.3.3) are expanded to their full names on the way
in, so ``headers.get("Via")`` finds ``v:`` too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from telephony.sip.errors import SipParseError

Params = tuple[tuple[str, str | None], ...]
"""Parameters in order, ``(name, value)``; value ``None`` for a flag such as ``;lr``. Values
keep their quotes as sent; ``param()`` helpers return them unquoted."""

_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+\Z")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z|\[[0-9A-Fa-f:.]+\]\Z")  # linear: no ReDoS
_USER_FORBIDDEN = re.compile(r"[\x00-\x20\x7f<>\"@]")


def is_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


# ------------------------------------------------------------------------------ splitting
def split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split ``text`` at ``separator`` where it is outside ``"..."`` and ``<...>``."""
    parts: list[str] = []
    start, quoted, escaped, angle = 0, False, False, False
    for i, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            angle = True
        elif char == ">":
            angle = False
        elif char == separator and not angle:
            parts.append(text[start:i])
            start = i + 1
    if quoted:
        raise SipParseError(f"unterminated quoted string in {text!r:.80}")
    parts.append(text[start:])
    return parts


def _find_outside_quotes(text: str, char: str) -> int:
    quoted = escaped = False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            return i
    return -1


def unquote(value: str) -> str:
    """The content of a quoted string (backslash escapes resolved); other text as it is."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> Params:
    """``;name=value;flag`` (the leading semicolon optional) as ``Params``."""
    params: list[tuple[str, str | None]] = []
    for i, part in enumerate(split_outside_quotes(text, ";")):
        part = part.strip()
        if not part:
            if i == 0:
                continue
            raise SipParseError(f"empty parameter in {text!r:.80}")
        name, equals, value = part.partition("=")
        name = name.strip()
        if not is_token(name):
            raise SipParseError(f"bad parameter name {name!r:.40}")
        params.append((name, value.strip() if equals else None))
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


def get_param(params: Params, name: str) -> str | None:
    """The unquoted value of parameter ``name`` ("" for a flag), or None when absent."""
    name = name.lower()
    for key, value in params:
        if key.lower() == name:
            return "" if value is None else unquote(value)
    return None


def set_param(params: Params, name: str, value: str | None) -> Params:
    """``params`` with ``name`` set (replaced in place, or appended)."""
    lowered = name.lower()
    if any(key.lower() == lowered for key, _ in params):
        return tuple((key, value) if key.lower() == lowered else (key, old) for key, old in params)
    return (*params, (name, value))


def parse_host_port(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[v6]:port`` as (host, port or None)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[: end + 1], text[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            raise SipParseError(f"bad host {text!r:.80}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = text.partition(":")
        port_text = port_text if colon else None
    if not _HOST.match(host):
        raise SipParseError(f"bad host {host!r:.80}")
    if port_text is None:
        return host, None
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5
            and 0 < int(port_text) < 65536):
        raise SipParseError(f"bad port {port_text!r:.20}")
    return host, int(port_text)


def format_host_port(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


# ------------------------------------------------------------------------------ values
@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI (for ``tel:``, the number is ``user``, host is "")."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: Params = ()
    headers: str | None = None  # what follows "?", kept as sent (e.g. "Replaces=...")
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        scheme, colon, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if not colon or not rest:
            raise SipParseError(f"not a URI: {text!r:.80}")
        if scheme == "tel":
            number, *_ = rest.split(";", 1)
            if not number or _USER_FORBIDDEN.search(number):
                raise SipParseError(f"bad tel URI {text!r:.80}", status=416)
            return cls("tel", number, "", None, parse_params(rest[len(number):]))
        if scheme not in ("sip", "sips"):
            raise SipParseError(f"unsupported URI scheme {scheme!r:.20}", status=416)
        userinfo, at, hostpart = rest.rpartition("@")
        user = password = None
        if at:
            user, colon, pw = userinfo.partition(":")
            password = pw if colon else None
            if not user or _USER_FORBIDDEN.search(userinfo):
                raise SipParseError(f"bad user part in {text!r:.80}")
        hostpart, question, headers = hostpart.partition("?")
        hostport, *_ = hostpart.split(";", 1)
        host, port = parse_host_port(hostport)
        return cls(scheme, user, host, port, parse_params(hostpart[len(hostport):]),
                   headers if question else None, password)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        userinfo = ""
        if self.user is not None:
            userinfo = self.user + ("" if self.password is None else f":{self.password}") + "@"
        headers = "" if self.headers is None else f"?{self.headers}"
        return (f"{self.scheme}:{userinfo}{format_host_port(self.host, self.port)}"
                f"{format_params(self.params)}{headers}")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        return replace(self, params=set_param(self.params, name, value))

    @property
    def transport(self) -> str:
        """The ``transport`` parameter, upper case ("UDP" when absent, "TLS" for sips)."""
        default = "TLS" if self.scheme == "sips" else "UDP"
        return (self.param("transport") or default).upper()

    @property
    def loose_route(self) -> bool:
        return self.param("lr") is not None


@dataclass(frozen=True, slots=True)
class Address:
    """A name-addr or addr-spec, as in From, To, Contact, Route, Refer-To: ``"Name" <uri>;tag=x``."""

    uri: SipUri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Address:
        text = text.strip()
        opening = _find_outside_quotes(text, "<")
        if opening >= 0:
            display = text[:opening].strip()
            uri_text, closing, rest = text[opening + 1:].partition(">")
            if not closing:
                raise SipParseError(f"unterminated <...> in {text!r:.80}")
            if display.startswith('"'):
                if not display.endswith('"') or len(display) < 2:
                    raise SipParseError(f"bad display name in {text!r:.80}")
                display = unquote(display)
            if rest.strip() and not rest.strip().startswith(";"):
                raise SipParseError(f"unexpected text after '>' in {text!r:.80}")
            return cls(SipUri.parse(uri_text), display or None, parse_params(rest))
        # addr-spec: parameters after the URI belong to the header, not to the URI
        uri_text, *_ = split_outside_quotes(text, ";")
        if "," in uri_text or "?" in uri_text:
            raise SipParseError(f"a URI with ',' or '?' must be in <...>: {text!r:.80}")
        return cls(SipUri.parse(uri_text), None, parse_params(text[len(uri_text):]))

    def __str__(self) -> str:
        name = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag") or None

    def with_tag(self, tag: str) -> Address:
        return replace(self, params=set_param(self.params, "tag", tag))


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    _FORM = re.compile(r"SIP\s*/\s*2\.0\s*/\s*([A-Za-z0-9.!%*_+`'~-]+)\s+(.+)\Z",
                       re.IGNORECASE | re.DOTALL)

    @classmethod
    def parse(cls, text: str) -> Via:
        match = cls._FORM.match(text.strip())
        if not match:
            raise SipParseError(f"bad Via {text!r:.80}")
        sent_by, *_ = split_outside_quotes(match[2], ";")
        host, port = parse_host_port(sent_by)
        return cls(match[1].upper(), host, port, parse_params(match[2][len(sent_by):]))

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def sent_by(self) -> str:
        return format_host_port(self.host, self.port)

    @property
    def branch(self) -> str | None:
        return self.param("branch") or None

    @property
    def received(self) -> str | None:
        return self.param("received") or None

    @property
    def rport(self) -> int | None:
        """The ``rport`` value filled in by a server (RFC 3581); None if absent or empty."""
        value = self.param("rport") or ""
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 5 else None

    def stamped(self, source_host: str, source_port: int) -> Via:
        """This Via as a server records it (RFC 3261 §18.2.1, RFC 3581 §4): ``received`` when
        the packet came from elsewhere than sent-by says, ``rport`` filled when asked for."""
        params = self.params
        wants_rport = self.param("rport") is not None
        if wants_rport or source_host != self.host:
            params = set_param(params, "received", source_host)
        if wants_rport:
            params = set_param(params, "rport", str(source_port))
        return replace(self, params=params)

    def response_address(self) -> tuple[str, int]:
        """Where responses go over an unreliable transport (§18.2.2 with RFC 3581): ``maddr``,
        else ``received``, else sent-by host; ``rport``, else sent-by port, else the default."""
        default = 5061 if self.transport == "TLS" else 5060
        host = self.param("maddr") or self.received or self.host
        return host.strip("[]"), self.rport or self.port or default


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        number, _, method = text.strip().partition(" ")
        method = method.strip()
        if not (number.isascii() and number.isdigit() and len(number) <= 10
                and int(number) < 2**32 and is_token(method)):
            raise SipParseError(f"bad CSeq {text!r:.80}")
        return cls(int(number), method)

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


# ------------------------------------------------------------------------------ the multi-map
COMPACT_FORMS = {
    "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding",
    "o": "Event", "r": "Refer-To", "b": "Referred-By", "u": "Allow-Events", "x": "Session-Expires",
    "a": "Accept-Contact", "j": "Reject-Contact", "d": "Request-Disposition", "y": "Identity",
}
_CANONICAL = {name.lower(): name for name in (
    *COMPACT_FORMS.values(), "CSeq", "Max-Forwards", "Route", "Record-Route", "WWW-Authenticate",
    "Authorization", "Proxy-Authenticate", "Proxy-Authorization", "Allow", "Require",
    "Proxy-Require", "Unsupported", "Accept", "Subscription-State", "Replaces", "User-Agent",
    "Server", "Expires", "RSeq", "RAck", "Min-SE", "Reason", "Timestamp", "Retry-After",
    "Warning", "Date", "P-Asserted-Identity", "Privacy", "Diversion", "Call-Info", "Alert-Info",
    "Content-Disposition", "Organization", "Priority", "Authentication-Info",
)}
LIST_HEADERS = frozenset(name.lower() for name in (
    "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require", "Proxy-Require",
    "Unsupported", "Accept", "Accept-Encoding", "Accept-Language", "Allow-Events",
    "Content-Encoding", "In-Reply-To", "Warning", "Call-Info", "Alert-Info", "Error-Info", "Path",
    "Service-Route", "P-Asserted-Identity", "Reason", "Diversion", "History-Info",
))
"""Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): ``values()`` splits them."""


def canonical_name(name: str) -> str:
    """``v`` → ``Via``, ``call-id`` → ``Call-ID``; unknown names are kept as written."""
    lowered = name.lower()
    return COMPACT_FORMS.get(lowered) or _CANONICAL.get(lowered, name)


class Headers:
    """Header fields in order; names compare case-insensitively, compact forms are expanded."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in fields]

    def values(self, name: str) -> list[str]:
        """Every value of ``name``, in order; list headers split at top-level commas."""
        key = canonical_name(name).lower()
        found = [value for field, value in self._fields if field.lower() == key]
        if key not in LIST_HEADERS:
            return found
        return [part.strip() for value in found for part in split_outside_quotes(value, ",")
                if part.strip()]

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.values(name)
        return values[0] if values else default

    def add(self, name: str, value: str) -> None:
        self._fields.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Add before every other field (a proxy's new Via; not needed by a user agent)."""
        self._fields.insert(0, (canonical_name(name), value))

    def set(self, name: str, *values: str) -> None:
        """Replace every field of ``name`` with ``values``, where the first one was (or at the end)."""
        name = canonical_name(name)
        key = name.lower()
        positions = [i for i, (field, _) in enumerate(self._fields) if field.lower() == key]
        at = positions[0] if positions else len(self._fields)
        self.remove(name)
        self._fields[at:at] = [(name, value) for value in values]

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._fields = [(f, v) for f, v in self._fields if f.lower() != key]

    def copy(self) -> Headers:
        return Headers(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.values(name))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"
