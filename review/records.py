"""What a call record may hold and how it reads back, whatever database keeps it.

Both call stores (``review.store.SqliteCallStore`` and ``review.pg_store.PostgresCallStore``)
check every value with the functions here before writing it and shape every row with them
when reading, so the two give the same answers and raise the same errors.

Exceptions::

    StoreError                 the database failed, is newer than this code, or is closed
     +-- DuplicateCallError    start_call() with an id that is already recorded
     +-- UnknownCallError      no call has this id (also a LookupError)
     +-- UnknownTurnError      no turn has this id (also a LookupError)
     +-- InvalidRecordError    a value a record cannot hold (also a ValueError): unknown
                               speaker, naive datetime, negative time, non-JSON data, ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

Speaker = Literal["caller", "assistant", "agent"]
SPEAKERS: Final = frozenset(get_args(Speaker))
LabelKind = Literal["intent", "answer", "note"]
LABEL_KINDS: Final = frozenset(get_args(LabelKind))

# The fields of a turn, in the order get_call() returns them; meta keys follow.
TURN_FIELDS: Final = ("speaker", "text", "start_ms", "end_ms", "intent", "confidence",
                      "sentiment", "latency_ms", "interrupted")
# Keys meta/data may not use: they would hide a field, now or once ids are exposed.
RESERVED_CALL_KEYS: Final = frozenset({"id", "channel", "caller", "started_at", "ended_at",
                                       "outcome", "turns", "events", "turn_count", "meta"})
RESERVED_TURN_KEYS: Final = frozenset(TURN_FIELDS) | {"id", "call_id", "meta"}
RESERVED_EVENT_KEYS: Final = frozenset({"type", "at_ms", "id", "call_id", "data"})

# The largest whole number both databases keep (a signed 64-bit integer).
_MAX_WHOLE: Final = 2**63 - 1


class StoreError(Exception):
    """The call store failed; the base of every error this module raises."""


class DuplicateCallError(StoreError):
    """A call with this id is already recorded."""


class UnknownCallError(StoreError, LookupError):
    """No call has this id."""


class UnknownTurnError(StoreError, LookupError):
    """No turn has this id."""


class InvalidRecordError(StoreError, ValueError):
    """A value that a call record cannot hold."""


# ---------------------------------------------------------------------- reading rows
# Rows are anything indexable by column name: sqlite3.Row or a psycopg dict_row.
Row = Mapping[str, Any]


def call_summary(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "channel": row["channel"], "caller": row["caller"],
            "started_at": iso(row["started_at"]), "ended_at": iso(row["ended_at"]),
            "outcome": row["outcome"]}


def turn_dict(row: Row) -> dict[str, Any]:
    turn = {name: row[name] for name in TURN_FIELDS}
    return {**turn, "interrupted": bool(row["interrupted"]), **json.loads(row["meta"]),
            "id": row["id"]}


def event_dict(row: Row) -> dict[str, Any]:
    return {"type": row["type"], "at_ms": row["at_ms"], **json.loads(row["data"])}


def handoff_dict(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "call_id": row["call_id"], "status": row["status"],
            "created_at": row["created_at"], "updated_at": row["updated_at"],
            **json.loads(row["data"])}


def label_dict(row: Row) -> dict[str, Any]:
    """A label with the turn it is about: one line of a retraining export."""
    return {"id": row["id"], "call_id": row["call_id"], "turn_id": row["turn_id"],
            "kind": row["kind"], "value": row["value"], "by": row["labeled_by"],
            "at": iso(row["labeled_at"]), "speaker": row["speaker"], "text": row["text"],
            "turn_intent": row["intent"], "turn_confidence": row["confidence"]}


def duration_s(started_at: str, ended_at: str | None) -> float | None:
    """Seconds from start to end of a call (to the millisecond), None while it runs."""
    if ended_at is None:
        return None
    span = datetime.fromisoformat(ended_at) - datetime.fromisoformat(started_at)
    return round(span.total_seconds(), 3)


def iso(stored: str | None) -> str | None:
    """Stored times are fixed-width (so they sort as text); show them in the usual form."""
    return None if stored is None else datetime.fromisoformat(stored).isoformat()


# ---------------------------------------------------------------------- checking values
def turn_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check a whole turn and return its column values."""
    speaker, start_ms, end_ms = fields["speaker"], fields["start_ms"], fields["end_ms"]
    latency_ms, intent = fields["latency_ms"], fields["intent"]
    if speaker not in SPEAKERS:
        raise InvalidRecordError(f"speaker must be one of {sorted(SPEAKERS)}, got {speaker!r}")
    if isinstance(end_ms, int) and isinstance(start_ms, int) and 0 <= end_ms < start_ms:
        raise InvalidRecordError(f"end_ms ({end_ms}) is before start_ms ({start_ms})")
    if not isinstance(fields["interrupted"], bool):
        raise InvalidRecordError(f"interrupted must be a bool, got {fields['interrupted']!r}")
    return {
        "speaker": speaker,
        "text": valid_text("text", fields["text"]),
        "start_ms": valid_whole("start_ms", start_ms),
        "end_ms": None if end_ms is None else valid_whole("end_ms", end_ms),
        "intent": None if intent is None else valid_text("intent", intent),
        "confidence": valid_number("confidence", fields["confidence"], low=0.0, high=1.0),
        "sentiment": valid_number("sentiment", fields["sentiment"]),
        "latency_ms": None if latency_ms is None else valid_whole("latency_ms", latency_ms),
        "interrupted": fields["interrupted"],  # a bool: SQLite keeps 0/1, PostgreSQL a boolean
        "meta": json_object("meta", fields["meta"], RESERVED_TURN_KEYS),
    }


def valid_text(name: str, value: object, *, non_empty: bool = False) -> str:
    if isinstance(value, str) and (value or not non_empty):
        if "\x00" in value:  # PostgreSQL text cannot hold NUL; refuse it on both stores
            raise InvalidRecordError(f"{name} may not contain NUL characters")
        return value
    raise InvalidRecordError(f"{name} must be a {'non-empty ' * non_empty}string, got {value!r}")


def valid_whole(name: str, value: object) -> int:
    """A count or a time in milliseconds: an int, never negative (and never a bool)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_WHOLE:
        return value
    raise InvalidRecordError(f"{name} must be a non-negative int, got {value!r}")


def valid_number(name: str, value: object, *, low: float = -math.inf,
           high: float = math.inf) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
        if math.isfinite(result) and low <= result <= high:
            return result
    raise InvalidRecordError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")


def utc_text(name: str, value: object) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidRecordError(f"{name} must be a timezone-aware datetime, got {value!r}")
    # Fixed width, so that ORDER BY on the text is chronological.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def json_object(name: str, value: object, reserved: frozenset[str]) -> str:
    """Serialize meta/data, refusing keys that would hide a field once flattened."""
    if value is None:
        return "{}"
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidRecordError(f"{name} must be a mapping with string keys, got {value!r}")
    if clashes := sorted(reserved.intersection(value)):
        raise InvalidRecordError(f"{name} may not use the reserved keys {', '.join(clashes)}")
    try:
        serialized = json.dumps(dict(value), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{name} is not JSON-serializable: {exc}") from exc
    if _has_nul(value):  # PostgreSQL's JSONB cannot hold \u0000
        raise InvalidRecordError(f"{name} may not contain NUL characters")
    return serialized


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False
