"""HTTP digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760).

Server side: ``DigestAuthenticator`` makes challenges (``WWW-Authenticate`` / ``Proxy-
Authenticate`` values) whose nonce carries its own timestamp and an HMAC of it, so a nonce is
verified without remembering it: a forged one is refused, an old one (``nonce_ttl``) answered
with a fresh challenge marked ``stale=true``. ``check`` verifies an ``Authorization`` value
against the user's password. Replays within the nonce's lifetime are not detected (that would
need state: the nonce counts); keep the lifetime short.

Client side: ``authorize`` answers a challenge (for calling out through a registrar or proxy
that asks, and for the tests).

Algorithms: MD5 and SHA-256, plain or ``-sess``; qop ``auth``, ``auth-int`` or none (RFC 2069).
A malformed header raises ``SipParseError``; a wrong answer is a result, not an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, fields
from enum import StrEnum

from telephony.sip.errors import SipParseError
from telephony.sip.headers import is_token, quote, split_outside_quotes, unquote

HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
# Which values travel quoted (RFC 7616 §3.3, §3.4): qop is quoted in a challenge, not in an answer.
_CHALLENGE_QUOTED = frozenset({"realm", "nonce", "opaque", "domain", "qop"})
_CREDENTIALS_QUOTED = frozenset({"username", "realm", "nonce", "uri", "response", "cnonce",
                                 "opaque"})


def _hash(algorithm: str, text: str) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    if base not in HASHES:
        raise SipParseError(f"unsupported digest algorithm {algorithm!r:.30}")
    return HASHES[base](text.encode()).hexdigest()


def _params(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"not a Digest header: {value!r:.60}")
    params: dict[str, str] = {}
    for part in split_outside_quotes(rest, ","):
        if not part.strip():
            continue
        name, equals, raw = part.strip().partition("=")
        name = name.strip().lower()
        if not equals or not is_token(name):
            raise SipParseError(f"bad digest parameter {part.strip()!r:.40}")
        params[name] = unquote(raw.strip())
    return params


def _format(params: dict[str, str | None], quoted: frozenset[str]) -> str:
    parts = [f"{name}={quote(value) if name in quoted else value}"
             for name, value in params.items() if value is not None]
    return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = "auth"  # as sent: "auth", "auth,auth-int", or None (RFC 2069)
    opaque: str | None = None
    stale: bool = False

    @classmethod
    def parse(cls, value: str) -> DigestChallenge:
        p = _params(value)
        if "realm" not in p or "nonce" not in p:
            raise SipParseError("a digest challenge needs a realm and a nonce")
        return cls(p["realm"], p["nonce"], p.get("algorithm", "MD5"), p.get("qop"),
                   p.get("opaque"), p.get("stale", "").lower() == "true")

    def __str__(self) -> str:
        return _format({"realm": self.realm, "nonce": self.nonce, "opaque": self.opaque,
                        "algorithm": self.algorithm, "qop": self.qop,
                        "stale": "true" if self.stale else None}, _CHALLENGE_QUOTED)

    @property
    def qops(self) -> list[str]:
        return [q.strip() for q in (self.qop or "").split(",") if q.strip()]


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """An ``Authorization`` / ``Proxy-Authorization`` value."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    cnonce: str | None = None
    nc: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, value: str) -> DigestCredentials:
        p = _params(value)
        missing = [n for n in ("username", "realm", "nonce", "uri", "response") if n not in p]
        if missing:
            raise SipParseError(f"digest credentials without {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        return cls(**{name: v for name, v in p.items() if name in known})

    def __str__(self) -> str:
        return _format({f.name: getattr(self, f.name) for f in fields(self)},
                       _CREDENTIALS_QUOTED)


def digest_response(*, algorithm: str, username: str, realm: str, password: str, method: str,
                    uri: str, nonce: str, qop: str | None = None, cnonce: str | None = None,
                    nc: str | None = None, body: bytes = b"") -> str:
    """The ``response`` value (RFC 7616 §3.4.1-3.4.3)."""
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce or ''}")
    if qop == "auth-int":
        body_hash = HASHES[algorithm.upper().removesuffix("-SESS")](body).hexdigest()
        ha2 = _hash(algorithm, f"{method}:{uri}:{body_hash}")
    else:
        ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def authorize(challenge: DigestChallenge | str, *, method: str, uri: str, username: str,
              password: str, cnonce: str | None = None, nc: int = 1,
              body: bytes = b"") -> DigestCredentials:
    """Answer a challenge (client side). Prefers qop ``auth``; raises ``SipParseError`` for a
    challenge we cannot answer (an unknown algorithm)."""
    if isinstance(challenge, str):
        challenge = DigestChallenge.parse(challenge)
    qops = challenge.qops
    qop = None
    if qops:
        qop = next((q for q in ("auth", "auth-int") if q in qops), None)
        if qop is None:
            raise SipParseError(f"unsupported qop {challenge.qop!r:.30}")
    if qop or challenge.algorithm.upper().endswith("-SESS"):
        cnonce = cnonce or secrets.token_hex(8)
    else:
        cnonce = None
    nc_text = f"{nc:08x}" if qop else None
    response = digest_response(algorithm=challenge.algorithm, username=username,
                               realm=challenge.realm, password=password, method=method, uri=uri,
                               nonce=challenge.nonce, qop=qop, cnonce=cnonce, nc=nc_text,
                               body=body)
    return DigestCredentials(username, challenge.realm, challenge.nonce, uri, response,
                             challenge.algorithm, qop, cnonce, nc_text, challenge.opaque)


# ------------------------------------------------------------------------------ server side
class DigestResult(StrEnum):
    OK = "ok"
    STALE = "stale"  # the right password with an expired nonce: challenge again, stale=true
    INVALID = "invalid"  # wrong password, forged nonce, another realm: 401/407 again (or 403)


_NONCE = struct.Struct("!Q8s")  # issue time (whole seconds), salt; then a 16-byte HMAC


class DigestAuthenticator:
    """Stateless challenges and checks for one realm.

    ``secret`` signs the nonces (keep it for as long as nonces should stay valid, e.g. from
    settings); ``context`` (say, the peer's IP address) can bind a nonce to where it was sent.
    """

    def __init__(self, secret: bytes, realm: str, *, nonce_ttl: float = 300.0,
                 qop: str | None = "auth") -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret should have at least 16 bytes")
        self.secret = secret
        self.realm = realm
        self.nonce_ttl = nonce_ttl
        self.qop = qop
        self.opaque = hmac.new(secret, b"opaque:" + realm.encode(), "sha256").hexdigest()[:16]

    def challenge(self, *, now: float, algorithm: str = "MD5", stale: bool = False,
                  context: str = "") -> DigestChallenge:
        _hash(algorithm, "")  # refuse an unknown algorithm here rather than at check time
        head = _NONCE.pack(int(now), secrets.token_bytes(8))
        nonce = base64.urlsafe_b64encode(head + self._sign(head, context)).decode().rstrip("=")
        return DigestChallenge(self.realm, nonce, algorithm, self.qop, self.opaque, stale)

    def check(self, credentials: DigestCredentials | str, *, method: str, password: str,
              now: float, body: bytes = b"", context: str = "",
              request_uri: str | None = None) -> DigestResult:
        """Verify credentials for ``method`` (and, if given, that they name ``request_uri``).
        Raises ``SipParseError`` only for a malformed header."""
        if isinstance(credentials, str):
            credentials = DigestCredentials.parse(credentials)
        issued = self._nonce_time(credentials.nonce, context)
        if (issued is None or credentials.realm != self.realm
                or credentials.algorithm.upper().removesuffix("-SESS") not in HASHES
                or (self.qop is not None and credentials.qop not in self.qop.split(","))
                or (credentials.qop is not None and not (credentials.cnonce and credentials.nc))
                or (request_uri is not None and credentials.uri != request_uri)):
            return DigestResult.INVALID
        expected = digest_response(
            algorithm=credentials.algorithm, username=credentials.username, realm=self.realm,
            password=password, method=method, uri=credentials.uri, nonce=credentials.nonce,
            qop=credentials.qop, cnonce=credentials.cnonce, nc=credentials.nc, body=body)
        if not hmac.compare_digest(expected.encode(), credentials.response.lower().encode()):
            return DigestResult.INVALID
        if not 0 <= now - issued <= self.nonce_ttl:
            return DigestResult.STALE
        return DigestResult.OK

    def _sign(self, head: bytes, context: str) -> bytes:
        message = head + self.realm.encode() + b"\x00" + context.encode()
        return hmac.new(self.secret, message, "sha256").digest()[:16]

    def _nonce_time(self, nonce: str, context: str) -> int | None:
        """When the nonce was issued, if we issued it (for this context); else None."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _NONCE.size + 16:
            return None
        head, signature = raw[:_NONCE.size], raw[_NONCE.size:]
        if not hmac.compare_digest(signature, self._sign(head, context)):
            return None
        return int(_NONCE.unpack(head)[0])
