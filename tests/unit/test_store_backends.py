"""The call repository on both backends: call records written as they happen and read back in
the architecture's shape, the same from SQLite and from PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from review.repository import CallRepository
from review.store import (
    DuplicateCallError,
    InvalidRecordError,
    StoreError,
    UnknownCallError,
    UnknownTurnError,
)

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def store(open_repository: Callable[[], CallRepository]) -> Iterator[CallRepository]:
    with open_repository() as store:
        yield store


def start(store: CallRepository, call_id: str = "CA1", *, at: datetime = T0, **kwargs: Any) -> None:
    kwargs.setdefault("channel", "twilio")
    kwargs.setdefault("caller", "+15550100")
    store.start_call(call_id=call_id, started_at=at, **kwargs)


def test_a_new_call_reads_back_with_no_turns_no_events_and_no_end(store: CallRepository) -> None:
    start(store)
    assert store.get_call("CA1") == {
        "id": "CA1", "channel": "twilio", "caller": "+15550100",
        "started_at": "2025-03-04T10:00:00+00:00", "ended_at": None, "outcome": None,
        "turns": [], "events": [],
    }


def test_a_whole_call_round_trips_with_meta_and_data_beside_the_fields(store: CallRepository) -> None:
    start(store, meta={"bridge": "media-streams"})
    store.add_turn("CA1", speaker="caller", text="where is my order", start_ms=500, end_ms=1900,
                   intent="order_status", confidence=0.92, sentiment=-0.25, meta={"asr_ms": 180})
    store.add_turn("CA1", speaker="assistant", text="Let me check.", start_ms=2300, end_ms=3100,
                   latency_ms=400)
    store.add_event("CA1", type="dtmf", at_ms=4000, digit="5")
    store.end_call("CA1", ended_at=T0 + timedelta(seconds=5, milliseconds=250),
                   outcome="completed")

    call = store.get_call("CA1")

    assert call is not None
    assert call["bridge"] == "media-streams"
    assert call["ended_at"] == "2025-03-04T10:00:05.250000+00:00"
    assert call["outcome"] == "completed"
    assert [without_id(t) for t in call["turns"]] == [
        {"speaker": "caller", "text": "where is my order", "start_ms": 500, "end_ms": 1900,
         "intent": "order_status", "confidence": 0.92, "sentiment": -0.25, "latency_ms": None,
         "interrupted": False, "asr_ms": 180},
        {"speaker": "assistant", "text": "Let me check.", "start_ms": 2300, "end_ms": 3100,
         "intent": None, "confidence": None, "sentiment": None, "latency_ms": 400,
         "interrupted": False},
    ]
    assert call["events"] == [{"type": "dtmf", "at_ms": 4000, "digit": "5"}]


def test_times_in_another_zone_come_back_in_utc(store: CallRepository) -> None:
    paris = timezone(timedelta(hours=2))
    start(store, at=datetime(2025, 6, 1, 12, 30, tzinfo=paris))
    store.end_call("CA1", ended_at=datetime(2025, 6, 1, 12, 31, tzinfo=paris), outcome="completed")
    call = store.get_call("CA1")
    assert call is not None
    assert (call["started_at"], call["ended_at"]) == (
        "2025-06-01T10:30:00+00:00", "2025-06-01T10:31:00+00:00")


def test_turns_are_ordered_by_start_then_by_writing_order(store: CallRepository) -> None:
    start(store)
    store.add_turn("CA1", speaker="assistant", text="late", start_ms=3000)
    store.add_turn("CA1", speaker="caller", text="first at 1000", start_ms=1000)
    store.add_turn("CA1", speaker="agent", text="second at 1000", start_ms=1000)
    store.add_turn("CA1", speaker="caller", text="early", start_ms=0)
    call = store.get_call("CA1")
    assert call is not None
    assert [t["text"] for t in call["turns"]] == ["early", "first at 1000", "second at 1000", "late"]


def test_events_are_ordered_by_time_then_by_writing_order(store: CallRepository) -> None:
    start(store)
    store.add_event("CA1", type="c", at_ms=900)
    store.add_event("CA1", type="a", at_ms=100)
    store.add_event("CA1", type="b", at_ms=100)
    call = store.get_call("CA1")
    assert call is not None
    assert [e["type"] for e in call["events"]] == ["a", "b", "c"]


def test_calls_are_listed_newest_first_with_their_turn_counts(store: CallRepository) -> None:
    start(store, "old", at=T0)
    start(store, "newest", at=T0 + timedelta(hours=1))
    start(store, "middle", at=T0 + timedelta(minutes=1))
    store.add_turn("middle", speaker="caller", text="hi", start_ms=0)
    store.add_turn("middle", speaker="assistant", text="hello", start_ms=10)
    store.end_call("middle", ended_at=T0 + timedelta(minutes=2), outcome="caller_hung_up")

    calls = store.list_calls()

    assert [c["id"] for c in calls] == ["newest", "middle", "old"]
    assert calls[1] == {
        "id": "middle", "channel": "twilio", "caller": "+15550100",
        "started_at": "2025-03-04T10:01:00+00:00", "ended_at": "2025-03-04T10:02:00+00:00",
        "outcome": "caller_hung_up", "turn_count": 2,
    }
    assert calls[0]["turn_count"] == 0


def test_ties_list_the_later_written_first_and_milliseconds_count(store: CallRepository) -> None:
    start(store, "a")
    start(store, "b")
    start(store, "later-by-a-millisecond", at=T0 + timedelta(milliseconds=1))
    assert [c["id"] for c in store.list_calls()] == ["later-by-a-millisecond", "b", "a"]


def test_list_calls_pages_with_limit_and_offset(store: CallRepository) -> None:
    for i in range(5):
        start(store, f"c{i}", at=T0 + timedelta(seconds=i))
    assert [c["id"] for c in store.list_calls(limit=2)] == ["c4", "c3"]
    assert [c["id"] for c in store.list_calls(limit=2, offset=2)] == ["c2", "c1"]
    assert [c["id"] for c in store.list_calls(limit=2, offset=4)] == ["c0"]
    assert store.list_calls(offset=5) == []


def test_an_unknown_call_id_reads_as_none(store: CallRepository) -> None:
    assert store.get_call("nope") is None
    assert store.get_call("no\x00pe") is None
    assert store.get_handoff("no\x00pe") is None


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.add_turn("nope", speaker="caller", text="hi", start_ms=0),
        lambda s: s.add_event("nope", type="dtmf", at_ms=0, digit="1"),
        lambda s: s.end_call("nope", ended_at=T0, outcome="completed"),
    ],
    ids=["add_turn", "add_event", "end_call"],
)
def test_writing_to_an_unknown_call_raises_unknown_call_error(store: CallRepository, write: Any) -> None:
    with pytest.raises(UnknownCallError, match="nope"):
        write(store)


def test_starting_a_call_twice_raises_duplicate_call_error_and_keeps_the_first(
    store: CallRepository,
) -> None:
    start(store, caller="+15550100")
    with pytest.raises(DuplicateCallError):
        start(store, caller="+15559999")
    call = store.get_call("CA1")
    assert call is not None and call["caller"] == "+15550100"


def test_updating_an_unknown_turn_or_an_unknown_field_raises(store: CallRepository) -> None:
    with pytest.raises(UnknownTurnError):
        store.update_turn(12345, text="x")
    start(store)
    turn_id = store.add_turn("CA1", speaker="caller", text="hi", start_ms=0)
    with pytest.raises(InvalidRecordError, match="colour"):
        store.update_turn(turn_id, colour="blue")


@pytest.mark.parametrize(
    "fields",
    [
        {"speaker": "robot"},
        {"text": None},
        {"start_ms": -1},
        {"start_ms": True},
        {"start_ms": 1.5},
        {"start_ms": 500, "end_ms": 499},
        {"confidence": 1.5},
        {"sentiment": float("nan")},
        {"latency_ms": -3},
        {"interrupted": 1},
        {"meta": {"text": "hides the text field"}},
        {"meta": {"when": datetime.now(UTC)}},
        {"text": "nul \x00 inside"},  # PostgreSQL cannot keep it, so neither store does
        {"meta": {"nested": ["\x00"]}},
        {"start_ms": 2**63},  # more than either database's integers hold
    ],
    ids=lambda fields: ",".join(fields),
)
def test_a_turn_that_cannot_be_recorded_raises_invalid_record_error(
    store: CallRepository, fields: dict[str, Any]
) -> None:
    start(store)
    turn: dict[str, Any] = {"speaker": "caller", "text": "hi", "start_ms": 0, **fields}
    with pytest.raises(InvalidRecordError):
        store.add_turn("CA1", **turn)
    call = store.get_call("CA1")
    assert call is not None and call["turns"] == []


def test_naive_datetimes_and_ends_before_starts_raise_invalid_record_error(
    store: CallRepository,
) -> None:
    with pytest.raises(InvalidRecordError, match="timezone"):
        start(store, at=datetime(2025, 1, 1, 12, 0))
    start(store)
    with pytest.raises(InvalidRecordError, match="timezone"):
        store.end_call("CA1", ended_at=datetime(2025, 1, 1, 12, 0), outcome="completed")
    with pytest.raises(InvalidRecordError, match="before it started"):
        store.end_call("CA1", ended_at=T0 - timedelta(seconds=1), outcome="completed")


def test_event_data_must_be_json(store: CallRepository) -> None:
    start(store)
    with pytest.raises(InvalidRecordError, match="JSON"):
        store.add_event("CA1", type="odd", at_ms=0, payload=object())
    with pytest.raises(InvalidRecordError, match="reserved"):
        store.add_event("CA1", type="odd", at_ms=0, id=7)


def test_every_store_error_shares_one_base_and_the_usual_builtin_meanings() -> None:
    for error in (DuplicateCallError, UnknownCallError, UnknownTurnError, InvalidRecordError):
        assert issubclass(error, StoreError)
    assert issubclass(UnknownCallError, LookupError) and issubclass(UnknownTurnError, LookupError)
    assert issubclass(InvalidRecordError, ValueError)


def test_a_closed_store_raises_store_error(
    open_repository: Callable[[], CallRepository],
) -> None:
    store = open_repository()
    store.close()
    store.close()  # twice is harmless
    with pytest.raises(StoreError, match="closed"):
        store.list_calls()


def test_an_interrupted_assistant_turn_is_updated_with_what_the_caller_heard(
    store: CallRepository,
) -> None:
    # The voice session's sequence: an empty turn when the answer starts, the latency at
    # the first audio byte, then the heard text when the caller barges in.
    start(store)
    planned = "Your order shipped on Monday and should arrive by Thursday."
    turn_id = store.add_turn("CA1", speaker="assistant", text="", start_ms=2000,
                             intent="order_status", confidence=0.9,
                             meta={"planned_text": planned})
    store.update_turn(turn_id, latency_ms=640)
    store.update_turn(turn_id, text="Your order shipped on Monday", end_ms=4100,
                      interrupted=True, meta={"heard_words": 5})

    call = store.get_call("CA1")

    assert call is not None
    assert [without_id(t) for t in call["turns"]] == [{
        "speaker": "assistant", "text": "Your order shipped on Monday", "start_ms": 2000,
        "end_ms": 4100, "intent": "order_status", "confidence": 0.9, "sentiment": None,
        "latency_ms": 640, "interrupted": True, "planned_text": planned, "heard_words": 5,
    }]


def test_an_update_that_cannot_be_recorded_leaves_the_turn_unchanged(store: CallRepository) -> None:
    start(store)
    turn_id = store.add_turn("CA1", speaker="assistant", text="Hello", start_ms=1000)
    with pytest.raises(InvalidRecordError):
        store.update_turn(turn_id, text="Hel", end_ms=999)
    call = store.get_call("CA1")
    assert call is not None
    assert (call["turns"][0]["text"], call["turns"][0]["end_ms"]) == ("Hello", None)


def test_ending_a_call_twice_keeps_the_first_end(store: CallRepository) -> None:
    start(store)
    store.end_call("CA1", ended_at=T0 + timedelta(seconds=30), outcome="transferred")
    store.end_call("CA1", ended_at=T0 + timedelta(seconds=31), outcome="caller_hung_up")
    call = store.get_call("CA1")
    assert call is not None
    assert (call["outcome"], call["ended_at"]) == ("transferred", "2025-03-04T10:00:30+00:00")


def test_a_record_survives_closing_and_reopening_the_store(
    open_repository: Callable[[], CallRepository],
) -> None:
    with open_repository() as store:
        start(store)
        store.add_turn("CA1", speaker="caller", text="hello", start_ms=0, end_ms=700)
        store.add_event("CA1", type="barge_in", at_ms=800, answer=1)
        before = store.get_call("CA1")
    with open_repository() as reopened:
        assert reopened.get_call("CA1") == before


def test_a_record_survives_a_process_that_dies_without_closing(
    open_repository: Callable[[], CallRepository], database_url: str | None, store_path: Path,
) -> None:
    child = textwrap.dedent(f"""
        import os, sys
        from datetime import datetime, UTC
        from pathlib import Path
        from review.repository import open_store
        store = open_store(sys.argv[1] or None, Path(sys.argv[2]))
        store.start_call(call_id="CA1", channel="twilio", caller=None,
                         started_at=datetime.fromisoformat({T0.isoformat()!r}))
        store.add_turn("CA1", speaker="caller", text="is anyone there", start_ms=0, end_ms=1200)
        store.add_event("CA1", type="dtmf", at_ms=1500, digit="0")
        os._exit(3)  # no close(), no commit at exit: a crash
    """)
    result = subprocess.run([sys.executable, "-c", child, database_url or "", str(store_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr

    with open_repository() as store:
        call = store.get_call("CA1")
        assert call is not None
        assert [t["text"] for t in call["turns"]] == ["is anyone there"]
        assert call["events"] == [{"type": "dtmf", "at_ms": 1500, "digit": "0"}]
        assert call["ended_at"] is None


def test_unfinished_calls_are_ended_at_their_last_known_moment_on_start_up(
    open_repository: Callable[[], CallRepository],
) -> None:
    with open_repository() as store:
        start(store, "cut-off")
        store.add_turn("cut-off", speaker="caller", text="hi", start_ms=100, end_ms=2500)
        store.add_event("cut-off", type="dtmf", at_ms=1800, digit="1")
        start(store, "silent")
        start(store, "finished")
        store.end_call("finished", ended_at=T0 + timedelta(seconds=9), outcome="completed")

    with open_repository() as store:
        assert store.mark_unfinished_calls() == 2
        assert store.mark_unfinished_calls() == 0
        calls = {c["id"]: c for c in store.list_calls()}

    assert calls["cut-off"]["outcome"] == "interrupted_by_restart"
    assert calls["cut-off"]["ended_at"] == "2025-03-04T10:00:02.500000+00:00"
    assert calls["silent"]["ended_at"] == calls["silent"]["started_at"]
    assert calls["finished"]["outcome"] == "completed"


def test_concurrent_writers_from_several_threads_lose_nothing(store: CallRepository) -> None:
    writers, turns_each = 8, 40
    start(store, "shared")

    def write(n: int) -> list[int]:
        start(store, f"own-{n}", at=T0 + timedelta(seconds=n))
        ids: list[int] = []
        for i in range(turns_each):
            own = store.add_turn(f"own-{n}", speaker="caller", text=f"{n}.{i}", start_ms=i)
            ids += [own, store.add_turn("shared", speaker="agent", text=f"{n}.{i}", start_ms=i)]
            store.add_event("shared", type="tick", at_ms=i, writer=n)
            store.update_turn(own, end_ms=i + 1)
            store.get_call("shared")  # readers interleave with the writers
        store.end_call(f"own-{n}", ended_at=T0 + timedelta(minutes=1), outcome="completed")
        return ids

    with ThreadPoolExecutor(max_workers=writers) as pool:  # map() re-raises a writer's error
        turn_ids = [turn_id for ids in pool.map(write, range(writers)) for turn_id in ids]

    assert len(set(turn_ids)) == len(turn_ids) == 2 * writers * turns_each
    shared = store.get_call("shared")
    assert shared is not None
    assert len(shared["turns"]) == len(shared["events"]) == writers * turns_each
    assert len(store.list_calls(limit=100)) == writers + 1
    for n in range(writers):
        own = store.get_call(f"own-{n}")
        assert own is not None and own["outcome"] == "completed"
        assert [t["end_ms"] for t in own["turns"]] == list(range(1, turns_each + 1))


def without_id(turn: dict) -> dict:
    """A turn as compared here: its id (a database counter) aside."""
    assert isinstance(turn.pop("id"), int)
    return turn
