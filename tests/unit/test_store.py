"""The SQLite store in particular: the file, WAL mode, the CallStore name, FTS5 or LIKE.

What every store does is tested on both backends in test_store_backends.py,
test_store_queries.py and test_store_migrations.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import review
from review import store as sqlite_store
from review.repository import CallRepository
from review.store import SCHEMA_VERSION, CallStore, SqliteCallStore, StoreError

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "calls.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[CallStore]:
    with CallStore(db_path) as store:
        yield store


def test_call_store_is_the_sqlite_store_and_a_call_repository(store: CallStore) -> None:
    assert CallStore is SqliteCallStore is review.CallStore
    assert isinstance(store, CallRepository)


def test_the_database_is_created_in_wal_mode_with_a_schema_version(db_path: Path) -> None:
    assert not db_path.parent.exists()
    CallStore(db_path).close()
    CallStore(db_path).close()  # reopening does not migrate twice
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = db.execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_a_database_written_by_a_newer_version_is_refused(db_path: Path) -> None:
    CallStore(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="schema version"):
        CallStore(db_path)


def test_a_file_that_is_not_a_database_raises_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(StoreError, match="calls.sqlite3"):
        CallStore(db_path)


def test_turn_texts_are_indexed_with_fts5_kept_in_step_by_triggers(store: CallStore) -> None:
    store.start_call(call_id="CA1", channel="twilio", caller=None, started_at=T0)
    turn_id = store.add_turn("CA1", speaker="assistant", text="", start_ms=0)
    assert store.search_calls(text="refund") == []
    store.update_turn(turn_id, text="Your refund was issued")
    assert [c["id"] for c in store.search_calls(text="refunds")] == ["CA1"]  # stemmed
    store.update_turn(turn_id, text="Your parcel shipped")
    assert store.search_calls(text="refund") == []
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM turns_fts WHERE turns_fts MATCH 'refund'"
                          ).fetchone() == (0,)


def test_without_fts5_text_search_falls_back_to_like_and_the_index_comes_later(
    db_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite_store, "_fts5_available", lambda db: False)
    with CallStore(db_path) as store:
        store.start_call(call_id="CA1", channel="twilio", caller=None, started_at=T0)
        store.add_turn("CA1", speaker="caller", text="Where is my ORDER-1001 parcel", start_ms=0)
        assert [c["id"] for c in store.search_calls(text="1001 PARCEL")] == ["CA1"]
        assert store.search_calls(text="order_1001") == []  # "_" is no LIKE wildcard
        assert store.search_calls(text="where is my") == []  # only stop words: nothing
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'turns_fts'"
                          ).fetchone() is None

    monkeypatch.undo()  # an SQLite with FTS5: the index is built, old turns included
    with CallStore(db_path) as store:
        assert [c["id"] for c in store.search_calls(text="parcels")] == ["CA1"]
