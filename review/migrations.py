"""The call store's schema, as one ordered list of steps written for SQLite and PostgreSQL.

Step *i* (counting from 1) takes a database from schema version *i - 1* to *i*; each applied
step leaves a row in ``schema_version``. Steps are added at the end and never edited once
released: a database made by an older release is brought up to date by running the steps it
has not seen, at start-up and by ``iva db upgrade``, inside one transaction. A database whose
version is higher than this code knows is refused rather than guessed at.

Why a list and not Alembic: the store speaks SQL through the drivers (``sqlite3``, psycopg)
with no ORM, so there are no models for Alembic to compare against and autogenerate from.
What Alembic would add is an ordered list of SQL scripts and a version table, which is what
this module is, without SQLAlchemy as a dependency, without an ``alembic.ini`` and ``env.py``
to ship beside the package, and with the version check and the steps in one transaction
(PostgreSQL and SQLite both roll back DDL), taken under a lock so that two processes starting
together migrate once. The SQLite text of steps 1 and 2 is the text those databases were
created with, so that existing files carry on from where they are.

PostgreSQL gets its native types: ``TIMESTAMPTZ`` for wall-clock times, ``JSONB`` for meta
and event data, ``BOOLEAN``, ``BIGINT`` identities (never reused, like SQLite's
AUTOINCREMENT), and a ``seq`` identity on calls and handoffs standing in for SQLite's
``rowid`` (the order in which rows were written breaks ties between equal times).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Migration:
    """One schema step: the same change for each dialect."""

    summary: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]
    # SQLite statements that need the FTS5 extension; skipped where SQLite lacks it, and
    # the store then searches turn texts with LIKE (see SqliteCallStore).
    sqlite_fts5: tuple[str, ...] = ()

    def statements(self, dialect: Dialect, *, fts5: bool = True) -> tuple[str, ...]:
        if dialect == "postgres":
            return self.postgres
        return self.sqlite + (self.sqlite_fts5 if fts5 else ())


SCHEMA_VERSION_TABLE: Final = ("CREATE TABLE IF NOT EXISTS schema_version"
                               " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")

# SQLite's full-text index over turn texts: an external-content FTS5 table (the text is
# stored once, in turns) kept in step with turns by triggers, whichever code writes them.
SQLITE_FTS5: Final = (
    "CREATE VIRTUAL TABLE turns_fts USING fts5(text, content='turns', content_rowid='id',"
    " tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER turns_fts_insert AFTER INSERT ON turns BEGIN"
    " INSERT INTO turns_fts (rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER turns_fts_delete AFTER DELETE ON turns BEGIN"
    " INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER turns_fts_update AFTER UPDATE OF text ON turns BEGIN"
    " INSERT INTO turns_fts (turns_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " INSERT INTO turns_fts (rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO turns_fts (turns_fts) VALUES ('rebuild')",  # index the turns already there
)

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "calls, their turns and events",
        sqlite=(
            "CREATE TABLE calls (id TEXT PRIMARY KEY, channel TEXT NOT NULL, caller TEXT,"
            " started_at TEXT NOT NULL, ended_at TEXT, outcome TEXT, meta TEXT NOT NULL)",
            "CREATE INDEX calls_by_start ON calls (started_at)",
            "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " call_id TEXT NOT NULL REFERENCES calls (id), speaker TEXT NOT NULL,"
            " text TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER, intent TEXT,"
            " confidence REAL, sentiment REAL, latency_ms INTEGER, interrupted INTEGER NOT NULL,"
            " meta TEXT NOT NULL)",
            "CREATE INDEX turns_by_call ON turns (call_id, start_ms, id)",
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " call_id TEXT NOT NULL REFERENCES calls (id), type TEXT NOT NULL,"
            " at_ms INTEGER NOT NULL, data TEXT NOT NULL)",
            "CREATE INDEX events_by_call ON events (call_id, at_ms, id)",
        ),
        postgres=(
            "CREATE TABLE calls (id TEXT PRIMARY KEY,"
            " seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, channel TEXT NOT NULL,"
            " caller TEXT, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, outcome TEXT,"
            " meta JSONB NOT NULL)",
            "CREATE INDEX calls_by_start ON calls (started_at, seq)",
            "CREATE TABLE turns (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " call_id TEXT NOT NULL REFERENCES calls (id), speaker TEXT NOT NULL,"
            " text TEXT NOT NULL, start_ms BIGINT NOT NULL, end_ms BIGINT, intent TEXT,"
            " confidence DOUBLE PRECISION, sentiment DOUBLE PRECISION, latency_ms BIGINT,"
            " interrupted BOOLEAN NOT NULL, meta JSONB NOT NULL)",
            "CREATE INDEX turns_by_call ON turns (call_id, start_ms, id)",
            "CREATE TABLE events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " call_id TEXT NOT NULL REFERENCES calls (id), type TEXT NOT NULL,"
            " at_ms BIGINT NOT NULL, data JSONB NOT NULL)",
            "CREATE INDEX events_by_call ON events (call_id, at_ms, id)",
        ),
    ),
    Migration(
        # Warm transfers: one row per handoff; the fields the desk shows live in ``data``.
        "handoffs (warm transfers)",
        sqlite=(
            "CREATE TABLE handoffs (id TEXT PRIMARY KEY,"
            " call_id TEXT NOT NULL REFERENCES calls (id), status TEXT NOT NULL,"
            " created_at TEXT NOT NULL, updated_at TEXT NOT NULL, data TEXT NOT NULL)",
            "CREATE INDEX handoffs_by_status ON handoffs (status, created_at)",
            "CREATE INDEX handoffs_by_call ON handoffs (call_id)",
        ),
        postgres=(
            # created_at is the text the desk wrote; COLLATE "C" sorts it as SQLite does.
            "CREATE TABLE handoffs (id TEXT PRIMARY KEY, seq BIGINT GENERATED ALWAYS AS IDENTITY,"
            " call_id TEXT NOT NULL REFERENCES calls (id), status TEXT NOT NULL,"
            ' created_at TEXT COLLATE "C" NOT NULL, updated_at TEXT NOT NULL, data JSONB NOT NULL)',
            "CREATE INDEX handoffs_by_status ON handoffs (status, created_at)",
            "CREATE INDEX handoffs_by_call ON handoffs (call_id)",
        ),
    ),
    Migration(
        "labels for retraining, full-text search over turns, indexes for the review filters",
        sqlite=(
            "CREATE TABLE labels (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " turn_id INTEGER NOT NULL REFERENCES turns (id),"
            " call_id TEXT NOT NULL REFERENCES calls (id), kind TEXT NOT NULL,"
            " value TEXT NOT NULL, labeled_by TEXT NOT NULL, labeled_at TEXT NOT NULL)",
            "CREATE INDEX labels_by_call ON labels (call_id, labeled_at)",
            "CREATE INDEX labels_by_time ON labels (labeled_at, id)",
            "CREATE INDEX turns_by_intent ON turns (intent, call_id)",
            "CREATE INDEX events_by_type ON events (type, call_id)",
        ),
        sqlite_fts5=SQLITE_FTS5,
        postgres=(
            "CREATE TABLE labels (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " turn_id BIGINT NOT NULL REFERENCES turns (id),"
            " call_id TEXT NOT NULL REFERENCES calls (id), kind TEXT NOT NULL,"
            " value TEXT NOT NULL, labeled_by TEXT NOT NULL, labeled_at TIMESTAMPTZ NOT NULL)",
            "CREATE INDEX labels_by_call ON labels (call_id, labeled_at)",
            "CREATE INDEX labels_by_time ON labels (labeled_at, id)",
            "CREATE INDEX turns_by_intent ON turns (intent, call_id)",
            "CREATE INDEX events_by_type ON events (type, call_id)",
            # The expression must match the one search_calls() uses for the index to serve it.
            "CREATE INDEX turns_text_search ON turns USING GIN (to_tsvector('english', text))",
        ),
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)
