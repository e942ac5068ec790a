"""The call-record repository: what the service asks of the database, and opening one.

``CallRepository`` is the whole interface; ``review.store.SqliteCallStore`` (the embedded
default, also known as ``CallStore``) and ``review.pg_store.PostgresCallStore`` implement it
with the same code and give the same answers. ``open_store`` picks one from the settings:

    open_store(None, data_dir / "calls.sqlite3")            SQLite file (created if missing)
    open_store("postgresql://iva@db.example/iva", ...)       PostgreSQL server

and applies any pending schema migrations before returning (see ``review.migrations``).
The call session, the desk and the API need only parts of it (``voice.session.CallRecorder``,
``review.handoffs.HandoffStore``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from review.records import Speaker, StoreError

__all__ = ["CallRepository", "describe_database", "open_store"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@runtime_checkable
class CallRepository(Protocol):
    """Call records: written as calls happen, read by the review pages, KPIs and APIs.

    Errors are ``review.records.StoreError`` and its subclasses. Wall-clock times given must
    be timezone-aware; those returned are ISO-8601 UTC strings. Times inside a call are
    milliseconds since its start.
    """

    location: str  # where the records are kept, for messages (no password)
    upgraded_from: int  # the schema version the database had when opened (0: it was new)

    # --- writing, as a call runs
    def start_call(self, *, call_id: str, channel: str, caller: str | None,
                   started_at: datetime, meta: Mapping[str, Any] | None = None) -> None: ...
    def add_turn(self, call_id: str, *, speaker: Speaker, text: str, start_ms: int,
                 end_ms: int | None = None, intent: str | None = None,
                 confidence: float | None = None, sentiment: float | None = None,
                 latency_ms: int | None = None, interrupted: bool = False,
                 meta: Mapping[str, Any] | None = None) -> int: ...
    def update_turn(self, turn_id: int, **fields: Any) -> None: ...
    def add_event(self, call_id: str, *, type: str, at_ms: int, **data: Any) -> None: ...
    def end_call(self, call_id: str, *, ended_at: datetime, outcome: str) -> None: ...
    def mark_unfinished_calls(self, outcome: str = "interrupted_by_restart") -> int: ...

    # --- reading
    def get_call(self, call_id: str) -> dict[str, Any] | None: ...
    def get_turn(self, turn_id: int) -> dict[str, Any] | None: ...
    def list_calls(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]: ...
    def search_calls(self, *, since: datetime | None = None, until: datetime | None = None,
                     outcome: str | None = None, channel: str | None = None,
                     intent: str | None = None, transferred: bool | None = None,
                     sentiment_below: float | None = None, latency_above_ms: int | None = None,
                     text: str | None = None, limit: int = 50,
                     offset: int = 0) -> list[dict[str, Any]]: ...
    def count_calls(self, *, since: datetime | None = None, until: datetime | None = None,
                    outcome: str | None = None, channel: str | None = None,
                    intent: str | None = None, transferred: bool | None = None,
                    sentiment_below: float | None = None, latency_above_ms: int | None = None,
                    text: str | None = None) -> int: ...
    def iter_calls(self, since: datetime | None = None, until: datetime | None = None, *,
                   batch_size: int = 200) -> Iterator[dict[str, Any]]: ...

    # --- warm transfers
    def save_handoff(self, handoff: Mapping[str, Any]) -> None: ...
    def get_handoff(self, handoff_id: str) -> dict[str, Any] | None: ...
    def list_handoffs(self, *, status: str | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]: ...

    # --- labels for retraining
    def add_label(self, turn_id: int, *, kind: str, value: str, by: str,
                  at: datetime | None = None) -> int: ...
    def labels(self, call_id: str | None = None, since: datetime | None = None, *,
               kind: str | None = None) -> list[dict[str, Any]]: ...

    # --- retention and upkeep
    def delete_older_than(self, cutoff: datetime) -> list[str]: ...
    def schema_version(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> CallRepository: ...
    def __exit__(self, *exc_info: object) -> None: ...


def open_store(database_url: str | None, sqlite_path: Path) -> CallRepository:
    """The configured call store, its schema brought up to date.

    ``database_url`` (``IVA_DATABASE_URL``): ``postgresql://...`` or ``postgres://...`` opens
    PostgreSQL; None (or blank) opens the SQLite file ``sqlite_path``. Anything else, or a
    database that cannot be opened or is newer than this code, raises StoreError.
    """
    if database_url is None or not database_url.strip():
        from review.store import SqliteCallStore

        return SqliteCallStore(sqlite_path)
    url = database_url.strip()
    if url.lower().startswith(_POSTGRES_SCHEMES):
        from review.pg_store import PostgresCallStore

        return PostgresCallStore(url)
    # Name the scheme only: the rest of the URL may hold a password.
    found = f"it starts with {url.split('://', 1)[0]}://" if "://" in url else "it is not a URL"
    raise StoreError(f"IVA_DATABASE_URL must start with postgresql:// or postgres:// (or be"
                     f" unset to keep call records in the SQLite file {sqlite_path}); {found}")


def describe_database(database_url: str | None, sqlite_path: Path) -> str:
    """Which database open_store() would open, for messages (no password)."""
    if database_url is None or not database_url.strip():
        return f"SQLite {sqlite_path}"
    from review.pg_store import redact_url

    return f"PostgreSQL {redact_url(database_url.strip())}"
