"""review.sqlite.connect: WAL, and the switch to it retried when another opener holds the file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from review import sqlite


def test_a_connection_is_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db, mode = sqlite.connect(tmp_path / "x.sqlite3")
    assert mode == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.isolation_level is None
    db.close()


class LockedThenFine:
    """A connection whose first `locked` answers to the WAL switch are "database is locked"."""

    def __init__(self, locked: int, message: str = "database is locked") -> None:
        self.locked, self.message, self.calls = locked, message, 0

    def execute(self, sql: str):
        self.calls += 1
        if self.calls <= self.locked:
            raise sqlite3.OperationalError(self.message)
        return sqlite3.connect(":memory:").execute("SELECT 'wal'")


def test_the_wal_switch_is_retried_while_the_file_is_locked() -> None:
    fake = LockedThenFine(locked=3)
    assert sqlite._wal(fake, deadline=float("inf")) == "wal"  # type: ignore[arg-type]
    assert fake.calls == 4


def test_a_lock_that_outlasts_the_timeout_is_raised() -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        sqlite._wal(LockedThenFine(locked=10**6), deadline=0.0)  # type: ignore[arg-type]


def test_other_errors_are_not_retried() -> None:
    fake = LockedThenFine(locked=5, message="file is not a database")
    with pytest.raises(sqlite3.OperationalError, match="not a database"):
        sqlite._wal(fake, deadline=float("inf"))  # type: ignore[arg-type]
    assert fake.calls == 1


def open_together(path: Path, openers: int) -> tuple[list[str], list[sqlite3.Error]]:
    """``openers`` threads connect to ``path`` at the same moment: their modes and errors."""
    barrier, modes, errors = threading.Barrier(openers), [], []

    def open_it() -> None:
        barrier.wait()
        try:
            db, mode = sqlite.connect(path)
            modes.append(mode)
            db.close()
        except sqlite3.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return modes, errors


def test_many_openers_of_a_fresh_file_all_get_wal(tmp_path: Path) -> None:
    for attempt in range(20):
        modes, errors = open_together(tmp_path / f"fresh-{attempt}.sqlite3", 6)
        assert errors == [] and modes == ["wal"] * 6
