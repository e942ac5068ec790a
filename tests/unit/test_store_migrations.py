"""Schema migrations, open_store's choice of database, and the ``iva db`` commands."""

from __future__ import annotations

import argparse
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from review.db_cli import add_db_commands
from review.migrations import MIGRATIONS, SCHEMA_VERSION, SCHEMA_VERSION_TABLE
from review.pg_store import PostgresCallStore, redact_url
from review.repository import CallRepository, open_store
from review.store import SqliteCallStore, StoreError
from tests.pg import _free_port

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)

# The SQL that made the SQLite databases of schema versions 1 and 2, as released: a database
# made by it must open with the code of today.
OLD_SQLITE_SCHEMA = (
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
        "CREATE TABLE handoffs (id TEXT PRIMARY KEY, call_id TEXT NOT NULL REFERENCES calls (id),"
        " status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " data TEXT NOT NULL)",
        "CREATE INDEX handoffs_by_status ON handoffs (status, created_at)",
        "CREATE INDEX handoffs_by_call ON handoffs (call_id)",
    ),
)


def make_old_database(backend: str, url: str | None, path: Path, version: int) -> None:
    """A database at schema ``version``, made with that version's SQL, holding one call."""
    rows = [
        "INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00.000000+00:00')",
        "INSERT INTO calls (id, channel, caller, started_at, meta) VALUES ('CA-old', 'twilio',"
        " NULL, '2025-03-04T10:00:00.000000+00:00', '{\"bridge\": \"v1\"}')",
        "INSERT INTO turns (call_id, speaker, text, start_ms, interrupted, meta) VALUES"
        " ('CA-old', 'caller', 'I need a refund for the blender', 0, {false}, '{{}}')",
        "INSERT INTO events (call_id, type, at_ms, data) VALUES ('CA-old', 'transfer', 900,"
        " '{\"target\": \"+15550199\"}')",
    ]
    if version >= 2:
        rows.append("INSERT INTO schema_version VALUES (2, '2025-02-01T00:00:00.000000+00:00')")
    if backend == "sqlite":
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as db:
            db.execute(SCHEMA_VERSION_TABLE)
            for statement in [s for step in OLD_SQLITE_SCHEMA[:version] for s in step]:
                db.execute(statement)
            for row in rows:
                db.execute(row.replace("{false}", "0").replace("{{}}", "{}"))
        return
    assert url is not None
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(SCHEMA_VERSION_TABLE)
        for statement in [s for step in MIGRATIONS[:version] for s in step.postgres]:
            db.execute(statement)
        for row in rows:
            db.execute(row.replace("{false}", "false").replace("{{}}", "{}"))


def schema_versions(backend: str, url: str | None, path: Path) -> list[int]:
    query = "SELECT version FROM schema_version ORDER BY version"
    if backend == "sqlite":
        with sqlite3.connect(path) as db:
            return [v for (v,) in db.execute(query).fetchall()]
    assert url is not None
    with psycopg.connect(url) as db:
        return [v for (v,) in db.execute(query).fetchall()]


# ---------------------------------------------------------------------- migrations
def test_a_new_database_gets_every_migration_once(
    open_repository: Callable[[], CallRepository], backend: str, database_url: str | None,
    store_path: Path,
) -> None:
    with open_repository() as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.upgraded_from == 0
    with open_repository() as store:
        assert store.upgraded_from == SCHEMA_VERSION
    assert schema_versions(backend, database_url, store_path) == list(
        range(1, SCHEMA_VERSION + 1))


@pytest.mark.parametrize("version", [1, 2])
def test_a_database_of_an_older_version_is_upgraded_and_keeps_its_records(
    open_repository: Callable[[], CallRepository], backend: str, database_url: str | None,
    store_path: Path, version: int,
) -> None:
    make_old_database(backend, database_url, store_path, version)

    with open_repository() as store:
        assert store.upgraded_from == version
        call = store.get_call("CA-old")
        assert call is not None and call["bridge"] == "v1"
        assert [t["text"] for t in call["turns"]] == ["I need a refund for the blender"]
        # What the newer steps brought works on the old records: search (old turns indexed),
        # the transfer flag, handoffs and labels.
        [found] = store.search_calls(text="blenders")
        assert (found["id"], found["transferred"]) == ("CA-old", True)
        turn_id = store.add_turn("CA-old", speaker="agent", text="Refund done", start_ms=5000)
        store.add_label(turn_id, kind="note", value="ok", by="ana")
        store.save_handoff({"id": "H1", "call_id": "CA-old", "status": "waiting",
                            "created_at": "x", "updated_at": "x"})
        assert [h["id"] for h in store.list_handoffs()] == ["H1"]
    assert schema_versions(backend, database_url, store_path) == list(
        range(1, SCHEMA_VERSION + 1))


def test_a_database_of_a_newer_version_is_refused(
    open_repository: Callable[[], CallRepository], backend: str, database_url: str | None,
    store_path: Path,
) -> None:
    open_repository().close()
    newer = f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, 'later')"
    if backend == "sqlite":
        with sqlite3.connect(store_path) as db:
            db.execute(newer)
    else:
        assert database_url is not None
        with psycopg.connect(database_url, autocommit=True) as db:
            db.execute(newer)
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}.*newer release"):
        open_repository()


def test_stores_opened_together_migrate_once(
    open_repository: Callable[[], CallRepository], backend: str, database_url: str | None,
    store_path: Path,
) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_and_close() -> None:
        barrier.wait()
        try:
            open_repository().close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert schema_versions(backend, database_url, store_path) == list(
        range(1, SCHEMA_VERSION + 1))


def test_every_migration_has_sql_for_both_dialects() -> None:
    for migration in MIGRATIONS:
        assert migration.summary and migration.sqlite and migration.postgres
        assert migration.statements("sqlite", fts5=False) == migration.sqlite


# ---------------------------------------------------------------------- open_store
def test_no_database_url_opens_the_sqlite_file(tmp_path: Path) -> None:
    for url in (None, "", "   "):
        path = tmp_path / f"x{len(url or '')}" / "calls.sqlite3"
        with open_store(url, path) as store:
            assert isinstance(store, SqliteCallStore) and store.path == path
        assert path.exists()


@pytest.mark.postgres
def test_a_postgres_url_opens_postgresql_with_either_scheme(postgres_url: str,
                                                            tmp_path: Path) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://")):
        with open_store(url, tmp_path / "unused.sqlite3") as store:
            assert isinstance(store, PostgresCallStore)
            assert isinstance(store, CallRepository)
            assert store.schema_version() == SCHEMA_VERSION
    assert not (tmp_path / "unused.sqlite3").exists()


@pytest.mark.parametrize("url", ["mysql://iva:s3cret@db/iva", "sqlite:///var/calls.db",
                                 "var/calls.sqlite3", "http://s3cret@example.com"])
def test_another_kind_of_url_is_refused_naming_the_setting(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="IVA_DATABASE_URL") as refused:
        open_store(url, tmp_path / "calls.sqlite3")
    assert "s3cret" not in str(refused.value)
    assert not (tmp_path / "calls.sqlite3").exists()


def test_an_unreachable_server_raises_store_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://iva:s3cret@127.0.0.1:{_free_port()}/iva?connect_timeout=2"
    with pytest.raises(StoreError, match="cannot connect") as refused:
        open_store(url, tmp_path / "calls.sqlite3")
    assert "s3cret" not in str(refused.value) and "***" in str(refused.value)


def test_urls_are_shown_without_their_passwords() -> None:
    assert redact_url("postgresql://iva:pw@db:5432/iva") == "postgresql://iva:***@db:5432/iva"
    assert redact_url("postgresql://db/iva?password=pw&sslmode=require") == (
        "postgresql://db/iva?password=***&sslmode=require")
    assert redact_url("postgresql://iva@db/iva") == "postgresql://iva@db/iva"


# ---------------------------------------------------------------------- iva db
def run_db_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="iva")
    add_db_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               database_url: str | None) -> Path:
    """The service's settings point at this test's database; returns IVA_DATA_DIR."""
    monkeypatch.delenv("IVA_CONFIG", raising=False)
    monkeypatch.delenv("IVA_DATABASE_PATH", raising=False)
    monkeypatch.delenv("IVA_RECORDINGS_DIR", raising=False)
    monkeypatch.delenv("IVA_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("IVA_DATA_DIR", str(tmp_path / "data"))
    if database_url is None:
        monkeypatch.delenv("IVA_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("IVA_DATABASE_URL", database_url)
    return tmp_path / "data"


def test_iva_db_upgrade_migrates_and_prints_the_version(
    configured: Path, backend: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_db_command(["db", "upgrade"]) == 0
    first = capsys.readouterr().out
    assert f"schema version {SCHEMA_VERSION} (upgraded from version 0)" in first
    assert ("SQLite" if backend == "sqlite" else "PostgreSQL") in first
    assert run_db_command(["db", "upgrade"]) == 0
    assert f"schema version {SCHEMA_VERSION} (up to date)" in capsys.readouterr().out


def test_iva_db_retention_deletes_old_calls_and_their_recordings(
    configured: Path, database_url: str | None, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, recent = datetime.now(UTC) - timedelta(days=40), datetime.now(UTC) - timedelta(days=2)
    with open_store(database_url, configured / "calls.sqlite3") as store:
        for call_id, started in (("old", old), ("recent", recent)):
            store.start_call(call_id=call_id, channel="twilio", caller=None, started_at=started)
            store.end_call(call_id, ended_at=started + timedelta(minutes=1), outcome="completed")
    recordings = configured / "recordings"
    recordings.mkdir(parents=True)
    (recordings / "old.wav").write_bytes(b"RIFF")
    (recordings / "recent.wav").write_bytes(b"RIFF")

    assert run_db_command(["db", "retention"]) == 0  # no days set: retention is off
    assert "retention is off" in capsys.readouterr().out
    monkeypatch.setenv("IVA_RETENTION_DAYS", "30")
    assert run_db_command(["db", "retention", "--days", "0"]) == 0  # the option wins
    assert "retention is off" in capsys.readouterr().out
    assert run_db_command(["db", "retention"]) == 0
    assert "deleted 1 call(s)" in capsys.readouterr().out
    assert [p.name for p in recordings.iterdir()] == ["recent.wav"]
    with open_store(database_url, configured / "calls.sqlite3") as store:
        assert [c["id"] for c in store.list_calls()] == ["recent"]


def test_iva_db_commands_report_a_bad_database_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("IVA_CONFIG", raising=False)
    monkeypatch.setenv("IVA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IVA_DATABASE_URL", "mysql://iva@db/iva")
    assert run_db_command(["db", "upgrade"]) == 1
    assert "IVA_DATABASE_URL" in capsys.readouterr().err
    assert run_db_command(["db", "retention", "--days", "3"]) == 1
    assert "IVA_DATABASE_URL" in capsys.readouterr().err
