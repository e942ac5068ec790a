"""Fixtures shared by the unit tests: the call store on each backend.

A test that takes ``open_repository`` (or a fixture built on it) runs twice, on SQLite and on
a real PostgreSQL server (``tests/pg.py``); the PostgreSQL run is marked ``postgres``, so
``-m postgres`` selects it and ``-m "not postgres"`` leaves it out. Both run by default.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from review.repository import CallRepository, open_store
from tests.pg import postgres_server, postgres_url  # noqa: F401  (fixtures, shared by the session)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where the SQLite store goes (its folder does not exist yet)."""
    return tmp_path / "var" / "calls.sqlite3"


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """IVA_DATABASE_URL for this backend: None for SQLite, a fresh database for PostgreSQL."""
    return request.getfixturevalue("postgres_url") if backend == "postgres" else None


@pytest.fixture
def open_repository(database_url: str | None,
                    store_path: Path) -> Callable[[], CallRepository]:
    """Opens the test's store (again, when called again): same database, new connections."""
    return lambda: open_store(database_url, store_path)
