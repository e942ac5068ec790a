"""Call records in SQLite: every turn, event and outcome of a call, written as it happens.

The voice session writes here while the call runs; the review pages, the KPIs and
``/api/calls`` read from here. Each write is committed at once, so a crashed process loses at
most the turn in flight. WAL mode with ``synchronous=NORMAL``: a commit survives a crash of
the process, and only a crash of the machine may lose the last few, the price of not waiting
for an fsync on a call's event loop. One connection serves every thread; a lock makes each
method atomic, and each is short enough to call from an event loop.

Times inside a call (``start_ms``, ``end_ms``, ``at_ms``) are milliseconds since the call's
``started_at``. Wall-clock times must be timezone-aware and come back as ISO-8601 UTC strings.
The keys of a call's or a turn's ``meta`` and of an event's data come back beside its fields.

Exceptions::

    StoreError                 the database failed, is newer than this code, or is closed
     +-- DuplicateCallError    start_call() with an id that is already recorded
     +-- UnknownCallError      no call has this id (also a LookupError)
     +-- UnknownTurnError      no turn has this id (also a LookupError)
     +-- InvalidRecordError    a value a record cannot hold (also a ValueError): unknown
                               speaker, naive datetime, negative time, non-JSON data, ...
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

__all__ = [
    "SCHEMA_VERSION", "CallStore", "DuplicateCallError", "InvalidRecordError", "Speaker",
    "StoreError", "UnknownCallError", "UnknownTurnError",
]

logger = logging.getLogger(__name__)

Speaker = Literal["caller", "assistant", "agent"]
_SPEAKERS: Final = frozenset(get_args(Speaker))

# The fields of a turn, in the order get_call() returns them; meta keys follow.
_TURN_FIELDS: Final = ("speaker", "text", "start_ms", "end_ms", "intent", "confidence",
                        "sentiment", "latency_ms", "interrupted")
# Keys meta/data may not use: they would hide a field, now or once ids are exposed.
_RESERVED_CALL_KEYS: Final = frozenset({"id", "channel", "caller", "started_at", "ended_at",
                                        "outcome", "turns", "events", "turn_count", "meta"})
_RESERVED_TURN_KEYS: Final = frozenset(_TURN_FIELDS) | {"id", "call_id", "meta"}
_RESERVED_EVENT_KEYS: Final = frozenset({"type", "at_ms", "id", "call_id", "data"})

# Entry i upgrades a database from schema version i to i + 1; add entries, never edit them.
# Turn ids use AUTOINCREMENT so that one is never reused: labels may refer to it for good.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        "CREATE TABLE calls (id TEXT PRIMARY KEY, channel TEXT NOT NULL, caller TEXT,"
        " started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, meta TEXT NOT NULL)",
        "CREATE INDEX calls_by_start ON calls (started_at)",
        "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " call_id TEXT NOT NULL REFERENCES calls (id), speaker TEXT NOT NULL, text TEXT NOT NULL,"
        " start_ms INTEGER NOT NULL, end_ms INTEGER, intent TEXT, confidence REAL, sentiment REAL,"
        " latency_ms INTEGER, interrupted INTEGER NOT NULL, meta TEXT NOT NULL)",
        "CREATE INDEX turns_by_call ON turns (call_id, start_ms, id)",
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " call_id TEXT NOT NULL REFERENCES calls (id), type TEXT NOT NULL,"
        " at_ms INTEGER NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX events_by_call ON events (call_id, at_ms, id)",
    ),
    (
        # Warm transfers: one row per handoff; the fields the desk shows live in ``data``.
        "CREATE TABLE handoffs (id TEXT PRIMARY KEY, call_id TEXT NOT NULL REFERENCES calls (id),"
        " status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " data TEXT NOT NULL)",
        "CREATE INDEX handoffs_by_status ON handoffs (status, created_at)",
        "CREATE INDEX handoffs_by_call ON handoffs (call_id)",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


class StoreError(Exception):
    """The call store failed; the base of every error this module raises."""


class DuplicateCallError(StoreError):
    """A call with this id is already recorded."""


class UnknownCallError(StoreError, LookupError):
    """No call has this id."""


class UnknownTurnError(StoreError, LookupError):
    """No turn has this id."""


class InvalidRecordError(StoreError, ValueError):
    """A value that a call record cannot hold."""


class CallStore:
    """The call records in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # isolation_level=None: no implicit transactions; _transaction() opens each one.
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open call store {self.path}: {exc}") from exc
        self._db: sqlite3.Connection | None = db
        try:
            db.row_factory = sqlite3.Row
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("call store %s runs in %s mode, not WAL", self.path, mode)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database; later calls raise StoreError. Closing twice is harmless."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def start_call(self, *, call_id: str, channel: str, caller: str | None,
                   started_at: datetime, meta: Mapping[str, Any] | None = None) -> None:
        """Record a new call; DuplicateCallError if ``call_id`` is already recorded."""
        row = (_text("call_id", call_id, non_empty=True),
               _text("channel", channel, non_empty=True),
               None if caller is None else _text("caller", caller),
               _utc_text("started_at", started_at), _json_object("meta", meta, _RESERVED_CALL_KEYS))
        with self._transaction() as db:
            if _call_row(db, call_id) is not None:
                raise DuplicateCallError(f"call already recorded: {call_id}")
            db.execute("INSERT INTO calls (id, channel, caller, started_at, meta)"
                       " VALUES (?, ?, ?, ?, ?)", row)
        logger.info("call %s: record started (%s)", call_id, channel)

    def add_turn(self, call_id: str, *, speaker: Speaker, text: str, start_ms: int,
                 end_ms: int | None = None, intent: str | None = None,
                 confidence: float | None = None, sentiment: float | None = None,
                 latency_ms: int | None = None, interrupted: bool = False,
                 meta: Mapping[str, Any] | None = None) -> int:
        """Record a turn of ``call_id`` and return its id (for update_turn)."""
        columns = _turn_columns({
            "speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": end_ms,
            "intent": intent, "confidence": confidence, "sentiment": sentiment,
            "latency_ms": latency_ms, "interrupted": interrupted, "meta": meta,
        })
        marks = ", ".join("?" for _ in columns)
        with self._transaction() as db:
            _require_call(db, call_id)
            cursor = db.execute(f"INSERT INTO turns (call_id, {', '.join(columns)})"
                                f" VALUES (?, {marks})", (call_id, *columns.values()))
            turn_id = int(cursor.lastrowid or 0)
        logger.debug("call %s: %s turn %d recorded", call_id, speaker, turn_id)
        return turn_id

    def update_turn(self, turn_id: int, **fields: Any) -> None:
        """Change fields of a recorded turn, e.g. when an answer ends or is interrupted.

        Takes the keyword arguments of add_turn. ``meta`` is merged into the turn's meta
        (a key given again is replaced); every other field given replaces the stored value.
        """
        if unknown := sorted(set(fields) - {*_TURN_FIELDS, "meta"}):
            raise InvalidRecordError(f"update_turn got unknown fields: {', '.join(unknown)}")
        with self._transaction() as db:
            row = db.execute("SELECT * FROM turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None:
                raise UnknownTurnError(f"unknown turn id: {turn_id}")
            merged: dict[str, Any] = {name: row[name] for name in _TURN_FIELDS}
            merged["interrupted"] = bool(row["interrupted"])
            new_meta = fields.pop("meta", None) or {}
            if not isinstance(new_meta, Mapping):
                raise InvalidRecordError(f"meta must be a mapping, got {new_meta!r}")
            merged.update(fields, meta={**json.loads(row["meta"]), **new_meta})
            columns = _turn_columns(merged)
            assignments = ", ".join(f"{name} = ?" for name in columns)
            db.execute(f"UPDATE turns SET {assignments} WHERE id = ?", (*columns.values(), turn_id))

    def add_event(self, call_id: str, *, type: str, at_ms: int, **data: Any) -> None:
        """Record that something happened in ``call_id`` (``data`` is kept as JSON)."""
        row = (call_id, _text("type", type, non_empty=True), _whole("at_ms", at_ms),
               _json_object("data", data, _RESERVED_EVENT_KEYS))
        with self._transaction() as db:
            _require_call(db, call_id)
            db.execute("INSERT INTO events (call_id, type, at_ms, data) VALUES (?, ?, ?, ?)", row)

    def end_call(self, call_id: str, *, ended_at: datetime, outcome: str) -> None:
        """Record how ``call_id`` ended, e.g. "completed", "caller_hung_up", "transferred".

        The first end is kept: a bridge may see both a stop message and a closed socket, and
        the second report must not overwrite the first.
        """
        ended = _utc_text("ended_at", ended_at)
        outcome = _text("outcome", outcome, non_empty=True)
        with self._transaction() as db:
            row = _require_call(db, call_id)
            if row["ended_at"] is not None:
                logger.info("call %s: already ended (%s); kept", call_id, row["outcome"])
                return
            if ended < row["started_at"]:
                raise InvalidRecordError(f"call {call_id} cannot end before it started")
            db.execute("UPDATE calls SET ended_at = ?, outcome = ? WHERE id = ?",
                       (ended, outcome, call_id))
        logger.info("call %s: record ended (%s)", call_id, outcome)

    def mark_unfinished_calls(self, outcome: str = "interrupted_by_restart") -> int:
        """End every call that has no end yet; call once at start-up, before taking calls.

        Such calls were cut off by a crash or a restart. Their end is set to the last moment
        the record knows of (the latest turn or event), and their number is returned.
        """
        outcome = _text("outcome", outcome, non_empty=True)
        with self._transaction() as db:
            rows = db.execute(
                """SELECT c.id, c.started_at,
                     (SELECT MAX(COALESCE(end_ms, start_ms)) FROM turns WHERE call_id = c.id),
                     (SELECT MAX(at_ms) FROM events WHERE call_id = c.id)
                   FROM calls c WHERE c.ended_at IS NULL"""
            ).fetchall()
            for row in rows:
                call_id, started_at, last_turn_ms, last_event_ms = row
                last = timedelta(milliseconds=max(last_turn_ms or 0, last_event_ms or 0))
                ended = _utc_text("ended_at", datetime.fromisoformat(started_at) + last)
                db.execute("UPDATE calls SET ended_at = ?, outcome = ? WHERE id = ?",
                           (ended, outcome, call_id))
        if rows:
            logger.warning("marked %d unfinished calls as %s", len(rows), outcome)
        return len(rows)

    # ------------------------------------------------------------------ reading
    def get_call(self, call_id: str) -> dict[str, Any] | None:
        """The whole record of ``call_id`` (the ``GET /api/calls/{id}`` shape), or None."""
        with self._transaction(write=False) as db:
            call = _call_row(db, call_id)
            if call is None:
                return None
            turns = db.execute("SELECT * FROM turns WHERE call_id = ? ORDER BY start_ms, id",
                               (call_id,)).fetchall()
            events = db.execute("SELECT type, at_ms, data FROM events WHERE call_id = ?"
                                " ORDER BY at_ms, id", (call_id,)).fetchall()
        return {
            **_call_summary(call),
            **json.loads(call["meta"]),
            "turns": [_turn_dict(turn) for turn in turns],
            "events": [{"type": kind, "at_ms": at_ms, **json.loads(data)}
                       for kind, at_ms, data in events],
        }

    def list_calls(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Summaries of calls, newest first: id, channel, caller, times, outcome, turn_count."""
        limit, offset = _whole("limit", limit), _whole("offset", offset)
        with self._transaction(write=False) as db:
            rows = db.execute(
                """SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.call_id = c.id) AS turn_count
                     FROM calls c ORDER BY c.started_at DESC, c.rowid DESC LIMIT ? OFFSET ?""",
                (limit, offset)).fetchall()
        return [{**_call_summary(row), "turn_count": row["turn_count"]} for row in rows]

    # ------------------------------------------------------------------ handoffs
    def save_handoff(self, handoff: Mapping[str, Any]) -> None:
        """Insert or replace a handoff (``review.handoffs.Handoff.to_json()``): it needs ``id``,
        ``call_id``, ``status``, ``created_at`` and ``updated_at``; the rest is kept as JSON."""
        data = dict(handoff)
        row = (_text("id", data.pop("id"), non_empty=True),
               _text("call_id", data.pop("call_id"), non_empty=True),
               _text("status", data.pop("status"), non_empty=True),
               _text("created_at", data.pop("created_at"), non_empty=True),
               _text("updated_at", data.pop("updated_at"), non_empty=True),
               _json_object("data", data, frozenset()))
        with self._transaction() as db:
            _require_call(db, row[1])
            db.execute("INSERT OR REPLACE INTO handoffs (id, call_id, status, created_at,"
                       " updated_at, data) VALUES (?, ?, ?, ?, ?, ?)", row)

    def get_handoff(self, handoff_id: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as db:
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        return None if row is None else _handoff_dict(row)

    def list_handoffs(self, *, status: str | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:
        """Handoffs, newest first, optionally only those with ``status`` or of ``call_id``."""
        limit = _whole("limit", limit)
        clauses, values = [], []
        if status is not None:
            clauses.append("status = ?")
            values.append(status)
        if call_id is not None:
            clauses.append("call_id = ?")
            values.append(call_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._transaction(write=False) as db:
            rows = db.execute(f"SELECT * FROM handoffs {where} ORDER BY created_at DESC, rowid DESC"
                              " LIMIT ?", (*values, limit)).fetchall()
        return [_handoff_dict(row) for row in rows]

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

    def _migrate(self) -> None:
        """Bring the schema up to SCHEMA_VERSION; schema_version keeps one row per step."""
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version"
                       " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            (version,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
            if version > SCHEMA_VERSION:
                raise StoreError(f"call store {self.path} has schema version {version};"
                                 f" this code knows up to {SCHEMA_VERSION}")
            applied_at = _utc_text("applied_at", datetime.now(UTC))
            for number, statements in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (number, applied_at))
        if version < SCHEMA_VERSION:
            logger.info("call store %s: schema %d -> %d", self.path, version, SCHEMA_VERSION)


def _call_row(db: sqlite3.Connection, call_id: str) -> sqlite3.Row | None:
    return db.execute("SELECT * FROM calls WHERE id = ?", (call_id,)).fetchone()


def _require_call(db: sqlite3.Connection, call_id: str) -> sqlite3.Row:
    row = _call_row(db, call_id)
    if row is None:
        raise UnknownCallError(f"unknown call id: {call_id}")
    return row


def _call_summary(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "channel": row["channel"], "caller": row["caller"],
            "started_at": _iso(row["started_at"]), "ended_at": _iso(row["ended_at"]),
            "outcome": row["outcome"]}


def _turn_dict(row: sqlite3.Row) -> dict[str, Any]:
    turn = {name: row[name] for name in _TURN_FIELDS}
    return {**turn, "interrupted": bool(row["interrupted"]), **json.loads(row["meta"])}


def _handoff_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "call_id": row["call_id"], "status": row["status"],
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            **json.loads(row["data"])}


def _iso(stored: str | None) -> str | None:
    """Stored times are fixed-width (so they sort as text); show them in the usual form."""
    return None if stored is None else datetime.fromisoformat(stored).isoformat()


def _turn_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check a whole turn and return its column values."""
    speaker, start_ms, end_ms = fields["speaker"], fields["start_ms"], fields["end_ms"]
    latency_ms, intent = fields["latency_ms"], fields["intent"]
    if speaker not in _SPEAKERS:
        raise InvalidRecordError(f"speaker must be one of {sorted(_SPEAKERS)}, got {speaker!r}")
    if isinstance(end_ms, int) and isinstance(start_ms, int) and 0 <= end_ms < start_ms:
        raise InvalidRecordError(f"end_ms ({end_ms}) is before start_ms ({start_ms})")
    if not isinstance(fields["interrupted"], bool):
        raise InvalidRecordError(f"interrupted must be a bool, got {fields['interrupted']!r}")
    return {
        "speaker": speaker,
        "text": _text("text", fields["text"]),
        "start_ms": _whole("start_ms", start_ms),
        "end_ms": None if end_ms is None else _whole("end_ms", end_ms),
        "intent": None if intent is None else _text("intent", intent),
        "confidence": _number("confidence", fields["confidence"], low=0.0, high=1.0),
        "sentiment": _number("sentiment", fields["sentiment"]),
        "latency_ms": None if latency_ms is None else _whole("latency_ms", latency_ms),
        "interrupted": int(fields["interrupted"]),
        "meta": _json_object("meta", fields["meta"], _RESERVED_TURN_KEYS),
    }


def _text(name: str, value: object, *, non_empty: bool = False) -> str:
    if isinstance(value, str) and (value or not non_empty):
        return value
    raise InvalidRecordError(f"{name} must be a {'non-empty ' * non_empty}string, got {value!r}")


def _whole(name: str, value: object) -> int:
    """A count or a time in milliseconds: an int, never negative (and never a bool)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidRecordError(f"{name} must be a non-negative int, got {value!r}")


def _number(name: str, value: object, *, low: float = -math.inf,
            high: float = math.inf) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and low <= number <= high:
            return number
    raise InvalidRecordError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")


def _utc_text(name: str, value: object) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidRecordError(f"{name} must be a timezone-aware datetime, got {value!r}")
    # Fixed width, so that ORDER BY on the text is chronological.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _json_object(name: str, value: object, reserved: frozenset[str]) -> str:
    """Serialize meta/data, refusing keys that would hide a field once flattened."""
    if value is None:
        return "{}"
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidRecordError(f"{name} must be a mapping with string keys, got {value!r}")
    if clashes := sorted(reserved.intersection(value)):
        raise InvalidRecordError(f"{name} may not use the reserved keys {', '.join(clashes)}")
    try:
        return json.dumps(dict(value), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{name} is not JSON-serializable: {exc}") from exc
