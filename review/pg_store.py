"""Call records in PostgreSQL, for when ``IVA_DATABASE_URL`` names a server.

The same repository as the SQLite store (the code is ``review.sql_store``'s), over psycopg 3.
Each method runs in its own transaction on a connection taken from a small pool, so calls
on several threads write side by side; row locks keep them from undoing each other (see
``review.sql_store``). Reads run in REPEATABLE READ, so a record is read from one snapshot.

Times are ``TIMESTAMPTZ`` and meta/data ``JSONB``; they are read back as the fixed-width UTC
text and the JSON text the SQLite store keeps, so both stores give the same answers. Two
things JSONB does not keep: the order of the keys of a meta/data object (they come back in
JSONB's order, shortest first) and the spelling of a number (``1e+16`` comes back as the
integer ``10000000000000000``). Turn texts are searched with ``to_tsvector('english', text)
@@ plainto_tsquery('english', ...)``, served by a GIN index.

Use a database of its own (or a schema of its own, with ``?options=-csearch_path%3Dname`` in
the URL): the store creates its tables (calls, turns, events, handoffs, labels,
schema_version) under those names.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from functools import lru_cache
from typing import Any, ClassVar, Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.string import TextLoader

from review.records import StoreError
from review.sql_store import SqlCallStore

__all__ = ["PostgresCallStore", "redact_url"]

logger = logging.getLogger("review.store")

# pg_advisory_xact_lock key held while migrating, so two processes starting together take
# turns (any constant would do; this one spells "iva calls").
_MIGRATION_LOCK: Final = 0x1FA_CA115


class PostgresCallStore(SqlCallStore):
    """The call records in a PostgreSQL database; safe to share between threads."""

    dialect = "postgres"
    _SEQ = "seq"
    _KEY_SHARE = " FOR KEY SHARE"
    _FOR_UPDATE = " FOR UPDATE"
    # seq = DEFAULT: a replaced handoff counts as written last, as in SQLite.
    _UPSERT_HANDOFF: ClassVar[str] = (
        "INSERT INTO handoffs (id, call_id, status, created_at, updated_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET call_id = EXCLUDED.call_id,"
        " status = EXCLUDED.status, created_at = EXCLUDED.created_at,"
        " updated_at = EXCLUDED.updated_at, data = EXCLUDED.data, seq = DEFAULT")

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout_s: int = 10,
                 wait_timeout_s: float = 30.0) -> None:
        self.url = url
        self.location = redact_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._pool = _ConnectionPool(self._connect, size=pool_size, wait_timeout_s=wait_timeout_s,
                                     location=self.location)
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close every connection; later calls raise StoreError. Closing twice is harmless."""
        self._pool.close()

    def __enter__(self) -> PostgresCallStore:
        return self

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[_Session]:
        with self._pool.connection() as conn:
            try:
                with conn.transaction():
                    if not write:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    yield _Session(conn)
            except psycopg.Error as exc:
                raise StoreError(f"call store {self.location} failed: {exc}") from exc

    def _insert(self, db: Any, sql: str, parameters: Sequence[Any]) -> int:
        return int(db.execute(f"{sql} RETURNING id", parameters).fetchone()["id"])

    def _text_match(self, query: str) -> tuple[str, list[Any]]:
        # The expression of the GIN index turns_text_search, word for word.
        return "to_tsvector('english', t.text) @@ plainto_tsquery('english', ?)", [query]

    def _lock_schema(self, db: Any) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _connect(self) -> psycopg.Connection[Any]:
        # A connect_timeout in the URL wins over the default.
        timeout = {} if "connect_timeout=" in self.url else {
            "connect_timeout": self._connect_timeout_s}
        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, **timeout)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the call store {self.location}: {exc}") from exc
        # Read times and JSON as the text the SQLite store keeps (see the module docstring).
        conn.adapters.register_loader("timestamptz", _UtcTextLoader)
        conn.adapters.register_loader("jsonb", TextLoader)
        try:
            conn.execute("SET TIME ZONE 'UTC'")
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"call store {self.location} failed: {exc}") from exc
        return conn


class _Session:
    """A transaction as the shared code sees it: ``execute`` with ``?`` placeholders."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(_to_psycopg(sql), parameters)


@lru_cache(maxsize=256)
def _to_psycopg(sql: str) -> str:
    """``?`` placeholders to ``%s`` (the queries have no ``?`` or ``%`` of their own)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _UtcTextLoader(TimestamptzLoader):
    """TIMESTAMPTZ as fixed-width ISO-8601 UTC text, the form the SQLite store keeps."""

    def load(self, data: Any) -> str:
        return super().load(data).astimezone(UTC).isoformat(timespec="microseconds")


class _ConnectionPool:
    """Up to ``size`` connections, opened when first needed and reused, newest first."""

    def __init__(self, connect: Any, *, size: int, wait_timeout_s: float, location: str) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self._connect = connect
        self._size = size
        self._wait_timeout_s = wait_timeout_s
        self._location = location
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._opened = 0
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _take(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreError(f"call store {self._location} is closed")
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = self._opened < self._size
            if grow:
                self._opened += 1
        if grow:
            try:
                return self._connect()
            except BaseException:
                with self._lock:
                    self._opened -= 1
                raise
        try:
            return self._idle.get(timeout=self._wait_timeout_s)
        except queue.Empty:
            raise StoreError(f"call store {self._location}: all {self._size} connections busy"
                             f" for {self._wait_timeout_s} s") from None

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            keep = not (self._closed or conn.closed or conn.broken)
            if not keep:
                self._opened -= 1
        if keep:
            self._idle.put(conn)
        else:
            conn.close()


def redact_url(url: str) -> str:
    """The URL without its password (in the user part or the query), for messages and logs."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            host = netloc.rsplit("@", 1)[1]
            netloc = f"{parts.username or ''}:***@{host}"
        query = "&".join(f"{key}=***" if key == "password" else f"{key}={value}"
                         for key, value in parse_qsl(parts.query, keep_blank_values=True))
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "the database named by IVA_DATABASE_URL"
