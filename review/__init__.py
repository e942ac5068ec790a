"""Review: what happened on each call, kept for people to read and for the KPIs.

``open_store`` opens the configured ``CallRepository`` (SQLite, the embedded ``CallStore``, or
PostgreSQL), which records every turn, event and outcome as the call runs; ``calls_router``
serves the records as ``GET /api/calls`` and ``GET /api/calls/{call_id}``; ``apply_retention``
deletes the records and recordings older than the retention period.
"""

from review.api import calls_router
from review.repository import CallRepository, open_store
from review.retention import apply_retention
from review.store import (
    SCHEMA_VERSION,
    CallStore,
    DuplicateCallError,
    InvalidRecordError,
    Speaker,
    SqliteCallStore,
    StoreError,
    UnknownCallError,
    UnknownTurnError,
)

__all__ = [
    "SCHEMA_VERSION",
    "CallRepository",
    "CallStore",
    "DuplicateCallError",
    "InvalidRecordError",
    "Speaker",
    "SqliteCallStore",
    "StoreError",
    "UnknownCallError",
    "UnknownTurnError",
    "apply_retention",
    "calls_router",
    "open_store",
]
