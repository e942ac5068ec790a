"""Opening the service's SQLite files (call store, user store) the same way.

WAL journal (readers never block the writer), ``synchronous=NORMAL``, a busy timeout so a
writer waits for another's commit instead of failing, and no implicit transactions
(``isolation_level=None``: the stores open each transaction themselves).

Switching a fresh file to WAL needs a moment alone with it, and SQLite answers "database is
locked" at once, without the busy timeout, when another connection is opening the same file
(several workers starting together). :func:`connect` retries that switch until the timeout.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


def connect(path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> tuple[sqlite3.Connection, str]:
    """An open connection to ``path`` and its journal mode ("wal" unless the file system cannot
    do WAL). Raises ``sqlite3.Error``; the connection is closed when it does."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                         timeout=busy_timeout_s)
    try:
        db.row_factory = sqlite3.Row
        mode = _wal(db, deadline=time.monotonic() + busy_timeout_s)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db, mode
    except BaseException:
        db.close()
        raise


def _wal(db: sqlite3.Connection, *, deadline: float) -> str:
    pause = 0.01
    while True:
        try:
            return str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
