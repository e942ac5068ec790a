"""The people who may sign in: usernames, roles and Argon2id password hashes in SQLite.

Kept in a file of its own (default ``<data_dir>/users.sqlite3``), apart from the call records,
so that it can be backed up, restricted or reset on its own. Like ``review.store``: one
connection shared by every thread, WAL mode, and a lock that makes each method atomic. Hashing
(about 0.2 s and 64 MiB per password with argon2-cffi's defaults) runs outside that lock, and
at most ``max_parallel_hashes`` at once, so a burst of logins cannot exhaust memory; call
``verify`` from a worker thread, not from an event loop.

Usernames are unique without regard to case ("Ana" and "ana" are one user) and are shown as
first written. ``verify`` costs the same for a user who does not exist, one who is disabled and
a wrong password, so the answer time does not tell which usernames exist.

Each user has a ``sessions_since`` time: sign-in sessions issued before it are void. Changing
a password moves it, which signs the user out everywhere.

Exceptions::

    UserStoreError              the database failed, is newer than this code, or is closed
     +-- DuplicateUserError     add() with a username that exists (in any case)
     +-- UnknownUserError       no user has this name (also a LookupError)
     +-- InvalidUserError       a bad username, role or password (also a ValueError)
"""

from __future__ import annotations

import builtins
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from review import sqlite

__all__ = [
    "MIN_PASSWORD_LENGTH", "ROLES", "DuplicateUserError", "InvalidUserError", "Role",
    "UnknownUserError", "User", "UserStore", "UserStoreError", "ensure_admin",
]

logger = logging.getLogger(__name__)

# Another process (a second instance starting, a migration) may hold the write lock; wait for
# it rather than fail, even on a loaded machine.
SQLITE_BUSY_TIMEOUT_S = 30.0

Role = Literal["supervisor", "agent"]
ROLES: Final[tuple[str, ...]] = get_args(Role)
MIN_PASSWORD_LENGTH: Final = 8
# Longer input is refused before hashing: nobody types it, and hashing it costs time.
MAX_PASSWORD_LENGTH: Final = 1024
_USERNAME: Final = re.compile(r"[\w.@-]{1,64}")

# Entry i upgrades the database from schema version i to i + 1; add entries, never edit them.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL,"
        " username_key TEXT NOT NULL UNIQUE, role TEXT NOT NULL, password_hash TEXT NOT NULL,"
        " created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,"
        " sessions_since REAL NOT NULL)",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


class UserStoreError(Exception):
    """The user store failed; the base of every error this module raises."""


class DuplicateUserError(UserStoreError):
    """A user with this name (in any case) already exists."""


class UnknownUserError(UserStoreError, LookupError):
    """No user has this name."""


class InvalidUserError(UserStoreError, ValueError):
    """A username, role or password that a user cannot have."""


@dataclass(frozen=True, slots=True)
class User:
    """A person who may sign in; never carries the password or its hash."""

    username: str
    role: Role
    created_at: str
    disabled: bool = False
    sessions_since: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"username": self.username, "role": self.role, "created_at": self.created_at,
                "disabled": self.disabled}


class UserStore:
    """The users in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path, *, hasher: PasswordHasher | None = None,
                 max_parallel_hashes: int = 2, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._hasher = hasher or PasswordHasher()  # Argon2id, RFC 9106 low-memory profile
        self._hashing = threading.BoundedSemaphore(max_parallel_hashes)
        self._clock = clock
        self._dummy_hash: str | None = None
        self._lock = threading.Lock()
        try:
            db, _mode = sqlite.connect(self.path, busy_timeout_s=SQLITE_BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise UserStoreError(f"cannot open user store {self.path}: {exc}") from exc
        self._db: sqlite3.Connection | None = db
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database; later calls raise UserStoreError. Closing twice is harmless."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> UserStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def add(self, username: str, password: str, role: str = "agent") -> User:
        """Create a user; DuplicateUserError if the name exists in any case."""
        name, key = _username(username)
        if role not in ROLES:
            raise InvalidUserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        password_hash = self._hash(_new_password(password))
        now = self._clock()
        created_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE username_key = ?", (key,)).fetchone():
                raise DuplicateUserError(f"user {name!r} already exists")
            db.execute("INSERT INTO users (username, username_key, role, password_hash,"
                       " created_at, sessions_since) VALUES (?, ?, ?, ?, ?, ?)",
                       (name, key, role, password_hash, created_at, now))
        logger.info("user %s added (%s)", name, role)
        return User(name, role, created_at, False, now)  # type: ignore[arg-type]

    def set_password(self, username: str, password: str) -> None:
        """Replace a user's password; their existing sessions end."""
        _, key = _username(username)
        password_hash = self._hash(_new_password(password))
        with self._transaction() as db:
            cursor = db.execute("UPDATE users SET password_hash = ?, sessions_since = ?"
                                " WHERE username_key = ?", (password_hash, self._clock(), key))
            if cursor.rowcount == 0:
                raise UnknownUserError(f"no user {username!r}")
        logger.info("user %s: password changed", username)

    def disable(self, username: str) -> None:
        """Refuse the user's logins and sessions from now on (the record stays)."""
        self._set_disabled(username, True)

    def enable(self, username: str) -> None:
        """Let a disabled user sign in again; sessions from before stay void."""
        self._set_disabled(username, False)

    # ------------------------------------------------------------------ reading
    def verify(self, username: str, password: str) -> User | None:
        """The user if the password is theirs and they are enabled, else None.

        An unknown user is checked against a dummy hash, so every refusal costs one hash.
        """
        try:
            _, key = _username(username)
        except InvalidUserError:
            key = None
        row = None
        if key is not None:
            with self._transaction(write=False) as db:
                row = db.execute("SELECT * FROM users WHERE username_key = ?", (key,)).fetchone()
        stored = row["password_hash"] if row is not None else self._dummy()
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            password = ""
        try:
            with self._hashing:
                self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"] or not password:
            return None
        if self._hasher.check_needs_rehash(stored):
            self._rehash(row["username_key"], stored, password)
        return _user(row)

    def get(self, username: str) -> User | None:
        """The user of this name in any case, or None; cheap (no hashing)."""
        try:
            _, key = _username(username)
        except InvalidUserError:
            return None
        with self._transaction(write=False) as db:
            row = db.execute("SELECT * FROM users WHERE username_key = ?", (key,)).fetchone()
        return None if row is None else _user(row)

    def list(self) -> builtins.list[User]:
        """Every user, in the order they were added."""
        with self._transaction(write=False) as db:
            rows = db.execute("SELECT * FROM users ORDER BY id").fetchall()
        return [_user(row) for row in rows]

    def count(self) -> int:
        with self._transaction(write=False) as db:
            return int(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    # ------------------------------------------------------------------ inside
    def _hash(self, password: str) -> str:
        with self._hashing:
            return self._hasher.hash(password)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _rehash(self, key: str, old_hash: str, password: str) -> None:
        """Upgrade a hash made with older parameters; skipped if the password changed meanwhile."""
        new_hash = self._hash(password)
        with self._transaction() as db:
            db.execute("UPDATE users SET password_hash = ? WHERE username_key = ?"
                       " AND password_hash = ?", (new_hash, key, old_hash))

    def _set_disabled(self, username: str, disabled: bool) -> None:
        _, key = _username(username)
        with self._transaction() as db:
            cursor = db.execute("UPDATE users SET disabled = ? WHERE username_key = ?",
                                (int(disabled), key))
            if cursor.rowcount == 0:
                raise UnknownUserError(f"no user {username!r}")
        logger.info("user %s %s", username, "disabled" if disabled else "enabled")

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction, committed at once."""
        with self._lock:
            db = self._db
            if db is None:
                raise UserStoreError(f"user store {self.path} is closed")
            try:
                with db:
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    yield db
            except sqlite3.Error as exc:
                raise UserStoreError(f"user store {self.path} failed: {exc}") from exc

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version"
                       " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            (version,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            if version > SCHEMA_VERSION:
                raise UserStoreError(f"user store {self.path} has schema version {version};"
                                     f" this code knows up to {SCHEMA_VERSION}")
            applied_at = datetime.now(UTC).isoformat(timespec="seconds")
            for number, statements in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (number, applied_at))


def ensure_admin(store: UserStore, admin_user: str | None, admin_password: str | None,
                 write_once: Callable[[str], None]) -> str | None:
    """Create the first supervisor when the store has no users; return its name, else None.

    From ``admin_user`` and ``admin_password`` (``IVA_ADMIN_USER`` / ``IVA_ADMIN_PASSWORD``)
    when both are set. When neither is, an ``admin`` with a random password is created and the
    password is handed to ``write_once`` (e.g. ``sys.stderr.write``), the only place it ever
    appears: it is never logged. One without the other is a ValueError, users or not. Once
    users exist the two settings are not read again: change passwords with ``iva users passwd``.
    """
    if (admin_user is None) != (admin_password is None):
        given, missing = (("IVA_ADMIN_USER", "IVA_ADMIN_PASSWORD") if admin_user is not None
                          else ("IVA_ADMIN_PASSWORD", "IVA_ADMIN_USER"))
        raise ValueError(f"{given} is set but {missing} is not: set both to create the first "
                         "supervisor, or neither to have one generated")
    if store.count() > 0:
        return None
    if admin_user is not None and admin_password is not None:
        user = store.add(admin_user, admin_password, "supervisor")
        logger.info("first supervisor %s created from the settings", user.username)
        return user.username
    password = secrets.token_urlsafe(18)  # 24 characters
    try:
        user = store.add("admin", password, "supervisor")
    except DuplicateUserError:  # another process bootstrapped at the same moment
        return None
    rule = "=" * 64
    write_once(f"\n{rule}\n"
               "IVA: no users yet, so a supervisor was created. Sign in at /login with\n"
               f"    username: {user.username}\n"
               f"    password: {password}\n"
               "This password is shown only this once: change it with\n"
               f"    iva users passwd {user.username}\n"
               f"{rule}\n\n")
    logger.warning("first supervisor %s created with a generated password (shown once on"
                   " stderr)", user.username)
    return user.username


def _username(username: str) -> tuple[str, str]:
    """The name as written and its case-insensitive key; InvalidUserError if not allowed."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise InvalidUserError("a username is 1 to 64 letters, digits, '.', '_', '-' or '@'")
    return username, username.casefold()


def _new_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUserError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _user(row: sqlite3.Row) -> User:
    return User(username=row["username"], role=row["role"], created_at=row["created_at"],
                disabled=bool(row["disabled"]), sessions_since=float(row["sessions_since"]))
