"""Sign-in sessions as signed cookies, the secret that signs them, and a brake on guessing.

A session is the cookie value ``PAYLOAD.SIGNATURE``: PAYLOAD is base64url JSON
``{"u": username, "r": role, "iat": issued, "exp": expires}`` (Unix seconds) and SIGNATURE is
base64url HMAC-SHA256 over a version tag and PAYLOAD. Nothing is stored on the server, so any
number of workers can read the same cookie; a session ends when it expires, when the secret
changes, or when the user's ``sessions_since`` moves past its ``iat`` (``review.users``).

The secret is ``session_secret`` from the settings, or else random bytes kept in
``<data_dir>/session.key`` (mode 0600), created on first use, so a restart keeps people
signed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["LoginLimiter", "SessionClaims", "SessionSigner", "load_session_secret"]

logger = logging.getLogger(__name__)

_TAG: Final = b"iva-session-v1."
_MAX_COOKIE: Final = 4096
MIN_SECRET_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What a valid session cookie says."""

    username: str
    role: str
    issued_at: float
    expires_at: float


class SessionSigner:
    """Issues and checks session cookie values with one secret."""

    def __init__(self, secret: bytes, *, max_age_s: float = 12 * 3600,
                 clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the session secret needs at least {MIN_SECRET_BYTES} bytes")
        if max_age_s <= 0:
            raise ValueError("sessions must last more than 0 seconds")
        self._secret = secret
        self.max_age_s = max_age_s
        self._clock = clock

    def issue(self, username: str, role: str) -> str:
        now = self._clock()
        claims = {"u": username, "r": role, "iat": now, "exp": now + self.max_age_s}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def read(self, value: str | None) -> SessionClaims | None:
        """The claims of a cookie value this signer issued and that has not expired, else None."""
        if not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature.encode("ascii", "replace"),
                                   self._sign(payload).encode("ascii")):
            return None
        try:
            claims = json.loads(_b64decode(payload))
            result = SessionClaims(str(claims["u"]), str(claims["r"]), float(claims["iat"]),
                                   float(claims["exp"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None  # signed by us but unreadable: a format from another version
        return result if result.expires_at > self._clock() else None

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, _TAG + payload.encode("ascii", "replace"), hashlib.sha256)
        return _b64encode(digest.digest())


def load_session_secret(configured: str | None, key_file: Path) -> bytes:
    """The secret that signs sessions: ``configured`` if set, else the one in ``key_file``.

    The file is created with a fresh random secret when missing, readable by its owner only;
    two processes starting at once agree on one secret (the file appears whole or not at all).
    """
    if configured:
        secret = configured.encode("utf-8")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"session_secret (IVA_SESSION_SECRET) needs at least "
                             f"{MIN_SECRET_BYTES} characters")
        return secret
    key_file = Path(key_file)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        draft = key_file.with_name(f".{key_file.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(draft, key_file)  # fails if another process made it first
                logger.info("session key created in %s", key_file)
            except FileExistsError:
                pass
        finally:
            draft.unlink(missing_ok=True)
    if key_file.stat().st_mode & 0o077:
        logger.warning("session key %s is readable by others; chmod 600 it", key_file)
    secret = key_file.read_text("ascii").strip().encode("ascii")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"session key file {key_file} holds fewer than {MIN_SECRET_BYTES}"
                         " characters; delete it to have a new one made")
    return secret


class LoginLimiter:
    """At most ``max_failures`` failed logins per key (username + address) in ``window_s``.

    Counting per username and address slows guessing one account without letting someone
    lock a user out from everywhere. Kept in memory: a restart forgets, which is fine for a
    brake meant to turn thousands of guesses a minute into ten.
    """

    def __init__(self, *, max_failures: int = 10, window_s: float = 60.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this key may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(_key(username, address))
            if len(times) < self.max_failures:
                return 0.0
            return max(0.0, times[0] + self.window_s - self._clock())

    def failed(self, username: str, address: str) -> None:
        key = _key(username, address)
        with self._lock:
            if key not in self._failures and len(self._failures) >= self._max_keys:
                self._forget_stale()
            times = self._failures.setdefault(key, deque(maxlen=self.max_failures))
            times.append(self._clock())

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop(_key(username, address), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= self._clock() - self.window_s:
            times.popleft()
        return times

    def _forget_stale(self) -> None:
        for key in [k for k in self._failures if not self._recent(k)]:
            del self._failures[key]
        if len(self._failures) >= self._max_keys:  # a flood of distinct keys: start over
            self._failures.clear()


def _key(username: str, address: str) -> tuple[str, str]:
    return username.casefold()[:128], address


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
