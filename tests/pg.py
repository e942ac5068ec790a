"""A throwaway PostgreSQL server for the store tests, and a fresh database per test.

``postgres_server`` (session-scoped) runs Debian's server binaries (``./scripts/test``
installs the ``postgresql`` package): ``initdb`` into a temporary folder, then ``pg_ctl start``
on a free port, listening on 127.0.0.1 only, its unix socket inside that folder, with fsync
off (the data is thrown away). As root, the server runs as the ``postgres`` user, since
PostgreSQL refuses to run as root. Missing binaries fail the tests: they are never skipped.

``postgres_url`` gives each test an empty schema of its own and drops it afterwards.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

_INSTALL_HINT = ("PostgreSQL's server binaries (initdb, pg_ctl) were not found: ./scripts/test"
                 " installs them (apt_install postgresql); or run: apt-get install -y postgresql")


@dataclass(frozen=True)
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://iva@127.0.0.1:{self.port}/{database}"


def find_bin_dir() -> Path | None:
    """Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, off the PATH."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda path: _version(path.parent.parent.name), reverse=True)
    if not candidates and (initdb := shutil.which("initdb")):
        candidates = [Path(initdb)]
    for initdb in candidates:
        if (initdb.parent / "pg_ctl").exists():
            return initdb.parent
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as_owner(command: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    if os.geteuid() == 0:  # postgres will not run as root
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def start_server(root: Path) -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(_INSTALL_HINT, pytrace=False)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data_dir = root / "data"
    init = _run_as_owner([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "iva",
                          "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
    if init.returncode != 0:
        pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}", pytrace=False)
    for _attempt in range(3):  # another process may take the free port before the server
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        started = _run_as_owner([str(bin_dir / "pg_ctl"), "start", "-D", str(data_dir), "-w",
                                 "-t", "60", "-l", str(root / "server.log"), "-o", options])
        if started.returncode == 0:
            return PostgresServer(bin_dir, data_dir, port)
    log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
    pytest.fail(f"pg_ctl start failed:\n{started.stdout}\n{started.stderr}\n{log}", pytrace=False)


def stop_server(server: PostgresServer) -> None:
    _run_as_owner([str(server.bin_dir / "pg_ctl"), "stop", "-D", str(server.data_dir),
                   "-m", "immediate", "-w"], timeout=60)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="iva-pg-"))
    try:
        server = start_server(root)
        try:
            yield server
        finally:
            stop_server(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)


_schema_numbers = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty schema of this test's own (the URL's search_path names it).

    A schema rather than a database: CREATE DATABASE takes about 0.4 s, CREATE SCHEMA 1 ms.
    """
    name = f"test_{os.getpid()}_{next(_schema_numbers)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    yield f"{postgres_server.url()}?options=-csearch_path%3D{name}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
