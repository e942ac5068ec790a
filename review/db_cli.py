"""``iva db``: the call-record database from the command line.

    iva db upgrade                 apply pending schema migrations; print the schema version
    iva db retention [--days N]    delete records (and recordings) older than N days, once

The database is the one the service uses: ``IVA_DATABASE_URL`` (PostgreSQL) or the SQLite
file under ``IVA_DATA_DIR``. ``voice.cli`` adds these commands with ``add_db_commands``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from review.records import StoreError
from review.repository import describe_database, open_store
from review.retention import apply_retention

__all__ = ["add_db_commands"]


def add_db_commands(subparsers: Any) -> None:
    """Add ``db upgrade`` and ``db retention`` to the ``iva`` command's subparsers."""
    db = subparsers.add_parser(
        "db", help="call-record database commands (upgrade, retention)",
        description="Manage the call-record database: SQLite under IVA_DATA_DIR, or the "
        "PostgreSQL database named by IVA_DATABASE_URL.")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")

    upgrade = db_sub.add_parser(
        "upgrade", help="apply pending schema migrations and print the schema version",
        description="Bring the call-record schema up to this release (the service also does "
        "it when it starts). A database written by a newer release is refused.")
    upgrade.set_defaults(func=_upgrade)

    retention = db_sub.add_parser(
        "retention", help="delete call records and recordings older than N days, once",
        description="Delete the calls that started more than N days ago, with their turns, "
        "events, handoffs and labels, and their recording files. The service does it at "
        "start-up and daily when IVA_RETENTION_DAYS is set.")
    retention.add_argument("--days", type=int, default=None,
                           help="keep this many days (default IVA_RETENTION_DAYS; 0 keeps all)")
    retention.add_argument("--recordings-dir", type=Path, default=None,
                           help="folder of <call_id>.* recordings (default the service's)")
    retention.set_defaults(func=_retention)


def _database(settings: Any) -> tuple[str | None, Path]:
    """IVA_DATABASE_URL and the SQLite path, from the settings (or the environment)."""
    url = getattr(settings, "database_url", None) or os.environ.get("IVA_DATABASE_URL") or None
    return url, Path(settings.database_file)


def _load_settings() -> Any:
    from voice.settings import load_settings

    return load_settings()


def _upgrade(args: argparse.Namespace) -> int:
    try:
        settings = _load_settings()
    except (ValueError, FileNotFoundError) as exc:  # pydantic's ValidationError is a ValueError
        sys.stderr.write(f"iva db upgrade: bad configuration:\n{exc}\n")
        return 2
    url, path = _database(settings)
    where = describe_database(url, path)
    try:
        with open_store(url, path) as store:
            version, before = store.schema_version(), store.upgraded_from
    except StoreError as exc:
        sys.stderr.write(f"iva db upgrade: {exc}\n")
        return 1
    change = "up to date" if before == version else f"upgraded from version {before}"
    sys.stdout.write(f"{where}: schema version {version} ({change})\n")
    return 0


def _retention(args: argparse.Namespace) -> int:
    try:
        settings = _load_settings()
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"iva db retention: bad configuration:\n{exc}\n")
        return 2
    days = args.days
    if days is None:
        configured = getattr(settings, "retention_days", None)
        if configured is None:  # until voice.settings has the field
            configured = os.environ.get("IVA_RETENTION_DAYS", "0")
        try:
            days = int(configured)
        except ValueError:
            sys.stderr.write(f"iva db retention: IVA_RETENTION_DAYS must be a whole number,"
                             f" not {configured!r}\n")
            return 2
    if days < 0:
        sys.stderr.write("iva db retention: --days must be 0 or more\n")
        return 2
    if days == 0:
        sys.stdout.write("retention is off (0 days): nothing deleted\n")
        return 0
    recordings = args.recordings_dir or getattr(settings, "recordings_folder", None)
    url, path = _database(settings)
    try:
        with open_store(url, path) as store:
            deleted = apply_retention(store, days, recordings)
    except StoreError as exc:
        sys.stderr.write(f"iva db retention: {exc}\n")
        return 1
    sys.stdout.write(f"{describe_database(url, path)}: deleted {deleted} call(s) started more"
                     f" than {days} day(s) ago, and their recordings\n")
    return 0
