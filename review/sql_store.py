"""The call-record repository written once, in SQL both SQLite and PostgreSQL understand.

``SqlCallStore`` holds every method of ``review.repository.CallRepository``; a subclass brings
the database: how a transaction is opened, how an inserted row's id comes back, how turn
texts are searched, and the few words of SQL that differ (the column that orders rows by
writing, row locks). Queries are written with ``?`` placeholders; the PostgreSQL session
turns them into psycopg's ``%s``. Rows are read by column name only, and wall-clock times
come back from both databases as the same fixed-width ISO text, so the shaping functions of
``review.records`` see the same values whichever database answered.

Where PostgreSQL runs transactions side by side (SQLite runs one at a time behind a lock),
rows are locked explicitly: ``FOR KEY SHARE`` keeps a call from being deleted while a turn
is added to it, ``FOR UPDATE`` serializes read-modify-write steps (ending a call, merging a
turn's meta, retention).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Protocol

from review.migrations import MIGRATIONS, SCHEMA_VERSION, SCHEMA_VERSION_TABLE, Dialect, Migration
from review.records import (
    LABEL_KINDS,
    RESERVED_CALL_KEYS,
    RESERVED_EVENT_KEYS,
    TURN_FIELDS,
    DuplicateCallError,
    InvalidRecordError,
    Row,
    Speaker,
    StoreError,
    UnknownCallError,
    UnknownTurnError,
    call_summary,
    duration_s,
    event_dict,
    handoff_dict,
    json_object,
    label_dict,
    turn_columns,
    turn_dict,
    utc_text,
    valid_number,
    valid_text,
    valid_whole,
)

logger = logging.getLogger("review.store")

# A call counts as transferred when it ended so or when a transfer was started in it.
_TRANSFERRED: Final = ("(COALESCE(c.outcome, '') = 'transferred' OR EXISTS (SELECT 1 FROM events e"
                       " WHERE e.call_id = c.id AND e.type = 'transfer'))")
_CHUNK: Final = 500  # ids per IN (...) list: far below both databases' parameter limits


class Session(Protocol):
    """An open transaction: sqlite3.Connection, or the PostgreSQL store's wrapper."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...


class SqlCallStore:
    """Call records in a SQL database; see ``review.repository.CallRepository``."""

    dialect: ClassVar[Dialect]
    _SEQ: ClassVar[str]  # the column that orders calls and handoffs by writing
    _KEY_SHARE: ClassVar[str] = ""  # appended to a SELECT: the row may not be deleted
    _FOR_UPDATE: ClassVar[str] = ""  # appended to a SELECT: the row may not change
    _UPSERT_HANDOFF: ClassVar[str]
    location: str  # where the records are, for messages (never with a password)
    upgraded_from: int = 0  # the schema version found when the store was opened

    # ------------------------------------------------------------------ database hooks
    def _transaction(self, *, write: bool = True) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _insert(self, db: Session, sql: str, parameters: Sequence[Any]) -> int:
        """Run an INSERT and return the new row's id."""
        raise NotImplementedError

    def _text_match(self, query: str) -> tuple[str, list[Any]]:
        """A condition on the turn ``t`` that its text matches the words of ``query``."""
        raise NotImplementedError

    def _migration_statements(self, migration: Migration) -> tuple[str, ...]:
        return migration.statements(self.dialect)

    def _lock_schema(self, db: Session) -> None:
        """Keep other processes from migrating at the same time (SQLite: BEGIN IMMEDIATE)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SqlCallStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def start_call(self, *, call_id: str, channel: str, caller: str | None,
                   started_at: datetime, meta: Mapping[str, Any] | None = None) -> None:
        """Record a new call; DuplicateCallError if ``call_id`` is already recorded."""
        row = (valid_text("call_id", call_id, non_empty=True),
               valid_text("channel", channel, non_empty=True),
               None if caller is None else valid_text("caller", caller),
               utc_text("started_at", started_at), json_object("meta", meta, RESERVED_CALL_KEYS))
        with self._transaction() as db:
            inserted = db.execute("INSERT INTO calls (id, channel, caller, started_at, meta)"
                                  " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", row)
            if inserted.rowcount == 0:
                raise DuplicateCallError(f"call already recorded: {call_id}")
        logger.info("call %s: record started (%s)", call_id, channel)

    def add_turn(self, call_id: str, *, speaker: Speaker, text: str, start_ms: int,
                 end_ms: int | None = None, intent: str | None = None,
                 confidence: float | None = None, sentiment: float | None = None,
                 latency_ms: int | None = None, interrupted: bool = False,
                 meta: Mapping[str, Any] | None = None) -> int:
        """Record a turn of ``call_id`` and return its id (for update_turn)."""
        columns = turn_columns({
            "speaker": speaker, "text": text, "start_ms": start_ms, "end_ms": end_ms,
            "intent": intent, "confidence": confidence, "sentiment": sentiment,
            "latency_ms": latency_ms, "interrupted": interrupted, "meta": meta,
        })
        marks = ", ".join("?" for _ in columns)
        with self._transaction() as db:
            self._require_call(db, call_id, self._KEY_SHARE)
            turn_id = self._insert(db, f"INSERT INTO turns (call_id, {', '.join(columns)})"
                                       f" VALUES (?, {marks})", (call_id, *columns.values()))
        logger.debug("call %s: %s turn %d recorded", call_id, speaker, turn_id)
        return turn_id

    def update_turn(self, turn_id: int, **fields: Any) -> None:
        """Change fields of a recorded turn, e.g. when an answer ends or is interrupted.

        Takes the keyword arguments of add_turn. ``meta`` is merged into the turn's meta
        (a key given again is replaced); every other field given replaces the stored value.
        """
        if unknown := sorted(set(fields) - {*TURN_FIELDS, "meta"}):
            raise InvalidRecordError(f"update_turn got unknown fields: {', '.join(unknown)}")
        with self._transaction() as db:
            row = self._require_turn(db, turn_id, "*", self._FOR_UPDATE)
            merged: dict[str, Any] = {name: row[name] for name in TURN_FIELDS}
            merged["interrupted"] = bool(row["interrupted"])
            new_meta = fields.pop("meta", None) or {}
            if not isinstance(new_meta, Mapping):
                raise InvalidRecordError(f"meta must be a mapping, got {new_meta!r}")
            merged.update(fields, meta={**json.loads(row["meta"]), **new_meta})
            columns = turn_columns(merged)
            assignments = ", ".join(f"{name} = ?" for name in columns)
            db.execute(f"UPDATE turns SET {assignments} WHERE id = ?", (*columns.values(), turn_id))

    def add_event(self, call_id: str, *, type: str, at_ms: int, **data: Any) -> None:
        """Record that something happened in ``call_id`` (``data`` is kept as JSON)."""
        row = (call_id, valid_text("type", type, non_empty=True), valid_whole("at_ms", at_ms),
               json_object("data", data, RESERVED_EVENT_KEYS))
        with self._transaction() as db:
            self._require_call(db, call_id, self._KEY_SHARE)
            db.execute("INSERT INTO events (call_id, type, at_ms, data) VALUES (?, ?, ?, ?)", row)

    def end_call(self, call_id: str, *, ended_at: datetime, outcome: str) -> None:
        """Record how ``call_id`` ended, e.g. "completed", "caller_hung_up", "transferred".

        The first end is kept: a bridge may see both a stop message and a closed socket, and
        the second report must not overwrite the first.
        """
        ended = utc_text("ended_at", ended_at)
        outcome = valid_text("outcome", outcome, non_empty=True)
        with self._transaction() as db:
            row = self._require_call(db, call_id, self._FOR_UPDATE)
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
        outcome = valid_text("outcome", outcome, non_empty=True)
        marked = 0
        with self._transaction() as db:
            rows = db.execute(
                """SELECT c.id, c.started_at,
                     (SELECT MAX(COALESCE(end_ms, start_ms)) FROM turns WHERE call_id = c.id)
                       AS last_turn_ms,
                     (SELECT MAX(at_ms) FROM events WHERE call_id = c.id) AS last_event_ms
                   FROM calls c WHERE c.ended_at IS NULL"""
            ).fetchall()
            for row in rows:
                last = timedelta(milliseconds=max(row["last_turn_ms"] or 0,
                                                  row["last_event_ms"] or 0))
                ended = utc_text("ended_at", datetime.fromisoformat(row["started_at"]) + last)
                marked += db.execute("UPDATE calls SET ended_at = ?, outcome = ?"
                                     " WHERE id = ? AND ended_at IS NULL",
                                     (ended, outcome, row["id"])).rowcount
        if marked:
            logger.warning("marked %d unfinished calls as %s", marked, outcome)
        return marked

    # ------------------------------------------------------------------ reading
    def get_call(self, call_id: str) -> dict[str, Any] | None:
        """The whole record of ``call_id`` (the ``GET /api/calls/{id}`` shape), or None."""
        with self._transaction(write=False) as db:
            call = _call_row(db, call_id)
            return None if call is None else self._records(db, [call])[0]

    def get_turn(self, turn_id: int) -> dict[str, Any] | None:
        """One turn in get_call()'s shape plus its ``id`` and ``call_id``, or None."""
        with self._transaction(write=False) as db:
            try:
                row = self._require_turn(db, turn_id, "*", "")
            except UnknownTurnError:
                return None
        return {"id": row["id"], "call_id": row["call_id"], **turn_dict(row)}

    def list_calls(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Summaries of calls, newest first: id, channel, caller, times, outcome, turn_count."""
        limit, offset = valid_whole("limit", limit), valid_whole("offset", offset)
        with self._transaction(write=False) as db:
            rows = db.execute(
                f"""SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.call_id = c.id)
                       AS turn_count
                     FROM calls c ORDER BY c.started_at DESC, c.{self._SEQ} DESC
                     LIMIT ? OFFSET ?""", (limit, offset)).fetchall()
        return [{**call_summary(row), "turn_count": row["turn_count"]} for row in rows]

    def _records(self, db: Session, calls: Sequence[Row]) -> list[dict[str, Any]]:
        """Whole records (get_call's shape) of ``calls``, read in a few queries."""
        turns: dict[str, list[dict[str, Any]]] = {call["id"]: [] for call in calls}
        events: dict[str, list[dict[str, Any]]] = {call["id"]: [] for call in calls}
        for chunk in _chunks(list(turns)):
            marks = ", ".join("?" for _ in chunk)
            for row in db.execute(f"SELECT * FROM turns WHERE call_id IN ({marks})"
                                  " ORDER BY start_ms, id", chunk).fetchall():
                turns[row["call_id"]].append(turn_dict(row))
            for row in db.execute("SELECT call_id, type, at_ms, data FROM events"
                                  f" WHERE call_id IN ({marks}) ORDER BY at_ms, id",
                                  chunk).fetchall():
                events[row["call_id"]].append(event_dict(row))
        return [{**call_summary(call), **json.loads(call["meta"]),
                 "turns": turns[call["id"]], "events": events[call["id"]]} for call in calls]

    # ------------------------------------------------------------------ handoffs
    def save_handoff(self, handoff: Mapping[str, Any]) -> None:
        """Insert or replace a handoff (``review.handoffs.Handoff.to_json()``): it needs ``id``,
        ``call_id``, ``status``, ``created_at`` and ``updated_at``; the rest is kept as JSON."""
        data = dict(handoff)
        row = (valid_text("id", data.pop("id"), non_empty=True),
               valid_text("call_id", data.pop("call_id"), non_empty=True),
               valid_text("status", data.pop("status"), non_empty=True),
               valid_text("created_at", data.pop("created_at"), non_empty=True),
               valid_text("updated_at", data.pop("updated_at"), non_empty=True),
               json_object("data", data, frozenset()))
        with self._transaction() as db:
            self._require_call(db, row[1], self._KEY_SHARE)
            db.execute(self._UPSERT_HANDOFF, row)

    def get_handoff(self, handoff_id: str) -> dict[str, Any] | None:
        if not isinstance(handoff_id, str) or "\x00" in handoff_id:
            return None
        with self._transaction(write=False) as db:
            row = db.execute("SELECT * FROM handoffs WHERE id = ?", (handoff_id,)).fetchone()
        return None if row is None else handoff_dict(row)

    def list_handoffs(self, *, status: str | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:
        """Handoffs, newest first, optionally only those with ``status`` or of ``call_id``."""
        limit = valid_whole("limit", limit)
        clauses, values = [], []
        if status is not None:
            clauses.append("status = ?")
            values.append(status)
        if call_id is not None:
            clauses.append("call_id = ?")
            values.append(call_id)
        with self._transaction(write=False) as db:
            rows = db.execute(f"SELECT * FROM handoffs {_where(clauses)}"
                              f" ORDER BY created_at DESC, {self._SEQ} DESC LIMIT ?",
                              (*values, limit)).fetchall()
        return [handoff_dict(row) for row in rows]

    # ------------------------------------------------------------------ review and KPIs
    def search_calls(self, *, since: datetime | None = None, until: datetime | None = None,
                     outcome: str | None = None, channel: str | None = None,
                     intent: str | None = None, transferred: bool | None = None,
                     sentiment_below: float | None = None, latency_above_ms: int | None = None,
                     text: str | None = None, limit: int = 50,
                     offset: int = 0) -> list[dict[str, Any]]:
        """Summaries of the calls that pass every filter given, newest first.

        ``since`` <= started_at < ``until``; ``intent``: some turn has it; ``sentiment_below``
        / ``latency_above_ms``: some turn below / above it; ``text``: some turn contains all
        its words (full-text: stemmed, stop words ignored; blank means no filter). Each
        summary is list_calls()'s plus ``duration_s`` (None while the call runs),
        ``intents`` (distinct, in the order they came up), ``min_sentiment``,
        ``max_latency_ms`` and ``transferred``.
        """
        clauses, values = self._call_filters(
            since=since, until=until, outcome=outcome, channel=channel, intent=intent,
            transferred=transferred, sentiment_below=sentiment_below,
            latency_above_ms=latency_above_ms, query=text)
        limit, offset = valid_whole("limit", limit), valid_whole("offset", offset)
        with self._transaction(write=False) as db:
            rows = db.execute(
                f"""SELECT c.*,
                      (SELECT COUNT(*) FROM turns t WHERE t.call_id = c.id) AS turn_count,
                      (SELECT MIN(t.sentiment) FROM turns t WHERE t.call_id = c.id)
                        AS min_sentiment,
                      (SELECT MAX(t.latency_ms) FROM turns t WHERE t.call_id = c.id)
                        AS max_latency_ms,
                      CASE WHEN {_TRANSFERRED} THEN 1 ELSE 0 END AS transferred
                    FROM calls c {_where(clauses)}
                    ORDER BY c.started_at DESC, c.{self._SEQ} DESC LIMIT ? OFFSET ?""",
                (*values, limit, offset)).fetchall()
            intents: dict[str, list[str]] = {row["id"]: [] for row in rows}
            for chunk in _chunks(list(intents)):
                marks = ", ".join("?" for _ in chunk)
                for turn in db.execute(f"SELECT call_id, intent FROM turns WHERE call_id IN"
                                       f" ({marks}) AND intent IS NOT NULL ORDER BY start_ms, id",
                                       chunk).fetchall():
                    seen = intents[turn["call_id"]]
                    if turn["intent"] not in seen:
                        seen.append(turn["intent"])
        return [{**call_summary(row), "turn_count": row["turn_count"],
                 "duration_s": duration_s(row["started_at"], row["ended_at"]),
                 "intents": intents[row["id"]], "min_sentiment": row["min_sentiment"],
                 "max_latency_ms": row["max_latency_ms"], "transferred": bool(row["transferred"])}
                for row in rows]

    def count_calls(self, *, since: datetime | None = None, until: datetime | None = None,
                    outcome: str | None = None, channel: str | None = None,
                    intent: str | None = None, transferred: bool | None = None,
                    sentiment_below: float | None = None, latency_above_ms: int | None = None,
                    text: str | None = None) -> int:
        """How many calls search_calls() would find with no limit (for paging)."""
        clauses, values = self._call_filters(
            since=since, until=until, outcome=outcome, channel=channel, intent=intent,
            transferred=transferred, sentiment_below=sentiment_below,
            latency_above_ms=latency_above_ms, query=text)
        with self._transaction(write=False) as db:
            row = db.execute(f"SELECT COUNT(*) AS n FROM calls c {_where(clauses)}",
                             values).fetchone()
        return int(row["n"])

    def iter_calls(self, since: datetime | None = None, until: datetime | None = None, *,
                   batch_size: int = 200) -> Iterator[dict[str, Any]]:
        """Whole records (get_call's shape) of the calls started in [since, until), oldest
        first, for KPIs. Read ``batch_size`` calls per transaction, so a long computation
        never holds the store; a call started meanwhile may or may not be included."""
        clauses, values = self._call_filters(since=since, until=until)
        batch_size = valid_whole("batch_size", batch_size) or 1
        after: list[Any] = []  # started_at, started_at, write order: of the last call read
        while True:
            keyset = "(c.started_at > ? OR (c.started_at = ? AND c.{seq} > ?))"
            where = _where([*clauses, keyset.format(seq=self._SEQ)] if after else clauses)
            with self._transaction(write=False) as db:
                calls = db.execute(
                    f"SELECT c.*, c.{self._SEQ} AS write_order FROM calls c {where}"
                    f" ORDER BY c.started_at, c.{self._SEQ} LIMIT ?",
                    (*values, *after, batch_size)).fetchall()
                records = self._records(db, calls)
            yield from records
            if len(calls) < batch_size:
                return
            last = calls[-1]
            after = [last["started_at"], last["started_at"], last["write_order"]]

    # ------------------------------------------------------------------ retention
    def delete_older_than(self, cutoff: datetime) -> list[str]:
        """Delete the calls started before ``cutoff`` with their turns, events, handoffs and
        labels; return their ids (oldest first), so that their recordings can go too.
        A call still in progress is kept (mark_unfinished_calls() ends those cut off)."""
        cut = utc_text("cutoff", cutoff)
        with self._transaction() as db:
            ids = [row["id"] for row in db.execute(
                "SELECT id FROM calls WHERE started_at < ? AND ended_at IS NOT NULL"
                f" ORDER BY started_at, {self._SEQ}{self._FOR_UPDATE}", (cut,)).fetchall()]
            for chunk in _chunks(ids):
                marks = ", ".join("?" for _ in chunk)
                for table in ("labels", "handoffs", "events", "turns"):
                    db.execute(f"DELETE FROM {table} WHERE call_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM calls WHERE id IN ({marks})", chunk)
        if ids:
            logger.info("deleted %d call records started before %s", len(ids), cut)
        return ids

    # ------------------------------------------------------------------ labels
    def add_label(self, turn_id: int, *, kind: str, value: str, by: str,
                  at: datetime | None = None) -> int:
        """Label a turn for review or retraining and return the label's id.

        ``kind``: "intent" (the right intent), "answer" (the right answer) or "note";
        ``by``: who labelled it; ``at``: when (default now).
        """
        if kind not in LABEL_KINDS:
            raise InvalidRecordError(f"kind must be one of {sorted(LABEL_KINDS)}, got {kind!r}")
        row = (kind, valid_text("value", value, non_empty=True),
               valid_text("by", by, non_empty=True),
               utc_text("at", datetime.now(UTC) if at is None else at))
        with self._transaction() as db:
            turn = self._require_turn(db, turn_id, "call_id", self._KEY_SHARE)
            return self._insert(db, "INSERT INTO labels (turn_id, call_id, kind, value,"
                                    " labeled_by, labeled_at) VALUES (?, ?, ?, ?, ?, ?)",
                                (turn_id, turn["call_id"], *row))

    def labels(self, call_id: str | None = None, since: datetime | None = None, *,
               kind: str | None = None) -> list[dict[str, Any]]:
        """Labels, oldest first, each with its turn's speaker, text, intent and confidence:
        id, call_id, turn_id, kind, value, by, at, speaker, text, turn_intent, turn_confidence."""
        clauses, values = [], []
        if call_id is not None:
            clauses.append("l.call_id = ?")
            values.append(call_id)
        if since is not None:
            clauses.append("l.labeled_at >= ?")
            values.append(utc_text("since", since))
        if kind is not None:
            clauses.append("l.kind = ?")
            values.append(kind)
        with self._transaction(write=False) as db:
            rows = db.execute("SELECT l.*, t.speaker, t.text, t.intent, t.confidence FROM labels l"
                              f" JOIN turns t ON t.id = l.turn_id {_where(clauses)}"
                              " ORDER BY l.labeled_at, l.id", values).fetchall()
        return [label_dict(row) for row in rows]

    # ------------------------------------------------------------------ schema
    def schema_version(self) -> int:
        with self._transaction(write=False) as db:
            return int(db.execute("SELECT COALESCE(MAX(version), 0) AS version"
                                  " FROM schema_version").fetchone()["version"])

    def _migrate(self) -> None:
        """Bring the schema up to SCHEMA_VERSION; schema_version keeps one row per step."""
        with self._transaction() as db:
            self._lock_schema(db)
            db.execute(SCHEMA_VERSION_TABLE)
            version = int(db.execute("SELECT COALESCE(MAX(version), 0) AS version"
                                     " FROM schema_version").fetchone()["version"])
            if version > SCHEMA_VERSION:
                raise StoreError(f"call store {self.location} has schema version {version};"
                                 f" this code knows up to {SCHEMA_VERSION}: run a newer release")
            applied_at = utc_text("applied_at", datetime.now(UTC))
            for number_, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in self._migration_statements(migration):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                           (number_, applied_at))
        self.upgraded_from = version
        if version < SCHEMA_VERSION:
            logger.info("call store %s: schema %d -> %d", self.location, version, SCHEMA_VERSION)

    # ------------------------------------------------------------------ helpers
    def _call_filters(self, *, since: datetime | None = None, until: datetime | None = None,
                      outcome: str | None = None, channel: str | None = None,
                      intent: str | None = None, transferred: bool | None = None,
                      sentiment_below: float | None = None, latency_above_ms: int | None = None,
                      query: str | None = None) -> tuple[list[str], list[Any]]:
        """The conditions (on calls ``c``) of search_calls(), with their values."""
        clauses: list[str] = []
        values: list[Any] = []
        if since is not None:
            clauses.append("c.started_at >= ?")
            values.append(utc_text("since", since))
        if until is not None:
            clauses.append("c.started_at < ?")
            values.append(utc_text("until", until))
        for column, wanted in (("outcome", outcome), ("channel", channel)):
            if wanted is not None:
                clauses.append(f"c.{column} = ?")
                values.append(valid_text(column, wanted))
        turn_filters = (
            ("t.intent = ?", None if intent is None else valid_text("intent", intent)),
            ("t.sentiment < ?", valid_number("sentiment_below", sentiment_below)),
            ("t.latency_ms > ?", None if latency_above_ms is None
             else valid_whole("latency_above_ms", latency_above_ms)),
        )
        for condition, value in turn_filters:
            if value is not None:
                clauses.append(f"c.id IN (SELECT t.call_id FROM turns t WHERE {condition})")
                values.append(value)
        if transferred is not None:
            if not isinstance(transferred, bool):
                raise InvalidRecordError(f"transferred must be a bool, got {transferred!r}")
            clauses.append(_TRANSFERRED if transferred else f"NOT {_TRANSFERRED}")
        if query is not None and valid_text("text", query).strip():
            condition, words = self._text_match(query)
            clauses.append(f"c.id IN (SELECT t.call_id FROM turns t WHERE {condition})")
            values.extend(words)
        return clauses, values

    @staticmethod
    def _require_call(db: Session, call_id: str, lock: str) -> Row:
        row = _call_row(db, call_id, lock)
        if row is None:
            raise UnknownCallError(f"unknown call id: {call_id}")
        return row

    @staticmethod
    def _require_turn(db: Session, turn_id: object, columns: str, lock: str) -> Row:
        row = None
        if isinstance(turn_id, int) and not isinstance(turn_id, bool) and 0 < turn_id < 2**63:
            row = db.execute(f"SELECT {columns} FROM turns WHERE id = ?{lock}",
                             (turn_id,)).fetchone()
        if row is None:
            raise UnknownTurnError(f"unknown turn id: {turn_id}")
        return row


def _call_row(db: Session, call_id: object, lock: str = "") -> Row | None:
    if not isinstance(call_id, str) or "\x00" in call_id:  # no call can have such an id
        return None
    return db.execute(f"SELECT * FROM calls WHERE id = ?{lock}", (call_id,)).fetchone()


def _where(clauses: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _chunks(ids: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]

