"""Call records in SQLite: every turn, event and outcome of a call, written as it happens.

The embedded default store (``review.pg_store.PostgresCallStore`` is the other one; both
implement ``review.repository.CallRepository`` with the code of ``review.sql_store``). The
voice session writes here while the call runs; the review pages, the KPIs and
``/api/calls`` read from here. Each write is committed at once, so a crashed process loses at
most the turn in flight. WAL mode with ``synchronous=NORMAL``: a commit survives a crash of
the process, and only a crash of the machine may lose the last few, the price of not waiting
for an fsync on a call's event loop. One connection serves every thread; a lock makes each
method atomic, and each is short enough to call from an event loop.

Times inside a call (``start_ms``, ``end_ms``, ``at_ms``) are milliseconds since the call's
``started_at``. Wall-clock times must be timezone-aware and come back as ISO-8601 UTC strings.
The keys of a call's or a turn's ``meta`` and of an event's data come back beside its fields.

Turn texts are searched through an FTS5 index (``turns_fts``, kept in step by triggers) with
the Porter stemmer and PostgreSQL's English stop words, so that a search finds what
PostgreSQL's ``plainto_tsquery('english', ...)`` finds; where SQLite lacks FTS5 a LIKE per
word stands in, and the index is built on the first start with an SQLite that has it.

Exceptions (defined in ``review.records``)::

    StoreError                 the database failed, is newer than this code, or is closed
     +-- DuplicateCallError    start_call() with an id that is already recorded
     +-- UnknownCallError      no call has this id (also a LookupError)
     +-- UnknownTurnError      no turn has this id (also a LookupError)
     +-- InvalidRecordError    a value a record cannot hold (also a ValueError): unknown
                               speaker, naive datetime, negative time, non-JSON data, ...
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final

from review import sqlite
from review.migrations import SCHEMA_VERSION, SQLITE_FTS5, Migration
from review.records import (
    DuplicateCallError,
    InvalidRecordError,
    Speaker,
    StoreError,
    UnknownCallError,
    UnknownTurnError,
)
from review.sql_store import SqlCallStore

__all__ = [
    "SCHEMA_VERSION", "CallStore", "DuplicateCallError", "InvalidRecordError", "Speaker",
    "SqliteCallStore", "StoreError", "UnknownCallError", "UnknownTurnError",
]

logger = logging.getLogger(__name__)

# Another process (a second instance starting, a migration) may hold the write lock; wait for
# it rather than fail, even on a loaded machine.
SQLITE_BUSY_TIMEOUT_S = 30.0

# PostgreSQL's English stop words (tsearch_data/english.stop): plainto_tsquery drops them.
_STOP_WORDS: Final = frozenset("""
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under
    again further then once here there when where why how all any both each few more most
    other some such no nor not only own same so than too very s t can will just don should now
""".split())
_WORD: Final = re.compile(r"\w+")


class SqliteCallStore(SqlCallStore):
    """The call records in one SQLite file; safe to share between threads."""

    dialect = "sqlite"
    _SEQ = "rowid"
    # INSERT OR REPLACE gives a replaced handoff a new rowid, as it always has.
    _UPSERT_HANDOFF: ClassVar[str] = (
        "INSERT OR REPLACE INTO handoffs (id, call_id, status, created_at, updated_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?)")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:  # no implicit transactions: _transaction() opens each one
            db, mode = sqlite.connect(self.path, busy_timeout_s=SQLITE_BUSY_TIMEOUT_S)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open call store {self.path}: {exc}") from exc
        if mode != "wal":
            logger.warning("call store %s runs in %s mode, not WAL", self.path, mode)
        self._db: sqlite3.Connection | None = db
        try:
            self._fts5 = _fts5_available(db)
            self._migrate()
            self._searches_fts5 = self._ensure_fts5()
        except sqlite3.Error as exc:  # not a database, say
            self.close()
            raise StoreError(f"cannot open call store {self.path}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database; later calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> SqliteCallStore:
        return self

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction, committed at once."""
        with self._lock:
            db = self._db
            if db is None:
                raise StoreError(f"call store {self.path} is closed")
            try:
                with db:  # commits when the block ends, rolls back when it raises
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    yield db
            except sqlite3.Error as exc:
                raise StoreError(f"call store {self.path} failed: {exc}") from exc

    def _insert(self, db: Any, sql: str, parameters: Sequence[Any]) -> int:
        return int(db.execute(sql, parameters).lastrowid or 0)

    def _migration_statements(self, migration: Migration) -> tuple[str, ...]:
        return migration.statements("sqlite", fts5=self._fts5)

    def _ensure_fts5(self) -> bool:
        """Whether turn texts are searched with FTS5; builds the index if an earlier start,
        on an SQLite without FTS5, migrated without it."""
        with self._transaction() as db:
            present = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns_fts'").fetchone()
            if present is None and self._fts5:
                logger.info("call store %s: building the full-text index of turns", self.path)
                for statement in SQLITE_FTS5:
                    db.execute(statement)
                present = True
        if not present:
            logger.warning("call store %s: SQLite has no FTS5; text search uses LIKE", self.path)
        return bool(present)

    def _text_match(self, query: str) -> tuple[str, list[Any]]:
        words = [word for word in _WORD.findall(query.lower()) if word not in _STOP_WORDS]
        if not words:  # only stop words: PostgreSQL finds nothing either
            return "1 = 0", []
        if self._searches_fts5:
            # Each word quoted, so none is read as an FTS5 operator (AND, NEAR, ...).
            return ("t.id IN (SELECT rowid FROM turns_fts WHERE turns_fts MATCH ?)",
                    [" ".join(f'"{word}"' for word in words)])
        escaped = [word.replace("\\", "\\\\").replace("_", "\\_") for word in words]
        return (" AND ".join("t.text LIKE ? ESCAPE '\\'" for _ in words),
                [f"%{word}%" for word in escaped])


def _fts5_available(db: sqlite3.Connection) -> bool:
    try:
        db.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        db.execute("DROP TABLE temp.fts5_probe")
    except sqlite3.OperationalError:
        return False
    return True


# The name the rest of the service has always used.
CallStore = SqliteCallStore
