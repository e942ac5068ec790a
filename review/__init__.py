"""Review: what happened on each call, kept for people to read and for the KPIs.

``CallStore`` records every turn, event and outcome as the call runs; ``calls_router`` serves
the records as ``GET /api/calls`` and ``GET /api/calls/{call_id}``.
"""

from review.api import calls_router
from review.store import (
    SCHEMA_VERSION,
    CallStore,
    DuplicateCallError,
    InvalidRecordError,
    Speaker,
    StoreError,
    UnknownCallError,
    UnknownTurnError,
)

__all__ = [
    "SCHEMA_VERSION",
    "CallStore",
    "DuplicateCallError",
    "InvalidRecordError",
    "Speaker",
    "StoreError",
    "UnknownCallError",
    "UnknownTurnError",
    "calls_router",
]
