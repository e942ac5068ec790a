"""What the review pages, the KPIs and retention ask of the call repository, on both backends:
search with filters and full text, iteration over whole records, labels, deletion by age."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from review.repository import CallRepository, open_store
from review.retention import apply_retention, retain_daily
from review.store import InvalidRecordError, UnknownTurnError

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def store(open_repository: Callable[[], CallRepository]) -> Iterator[CallRepository]:
    with open_repository() as store:
        yield store


def record_calls(store: CallRepository) -> None:
    """Four calls an hour apart: a refund, two transfers (by outcome, by event), one live."""
    store.start_call(call_id="refund", channel="twilio", caller="+15550100", started_at=T0)
    store.add_turn("refund", speaker="caller", text="I want a refund for my broken kettle",
                   start_ms=0, end_ms=2000, intent="refund", confidence=0.9, sentiment=-0.6)
    store.add_turn("refund", speaker="assistant", text="I can help with refunds.",
                   start_ms=2700, intent="refund", latency_ms=700)
    store.add_turn("refund", speaker="caller", text="Also, where is my order?", start_ms=5000,
                   intent="order_status", sentiment=0.1)
    store.end_call("refund", ended_at=T0 + timedelta(seconds=90, milliseconds=250),
                   outcome="completed")

    store.start_call(call_id="to-agent", channel="asterisk", caller=None, started_at=T0 + HOUR)
    store.add_turn("to-agent", speaker="caller", text="Let me talk to a person",
                   start_ms=0, intent="agent", sentiment=-0.2)
    store.add_turn("to-agent", speaker="assistant", text="Connecting you now.", start_ms=900,
                   latency_ms=300)
    store.end_call("to-agent", ended_at=T0 + HOUR + timedelta(seconds=30), outcome="transferred")

    store.start_call(call_id="hung-up", channel="twilio", caller=None, started_at=T0 + 2 * HOUR)
    store.add_turn("hung-up", speaker="caller", text="Operator, please", start_ms=0,
                   intent="agent")
    store.add_event("hung-up", type="transfer", at_ms=1200, target="+15550199")
    store.end_call("hung-up", ended_at=T0 + 2 * HOUR + timedelta(seconds=4),
                   outcome="caller_hung_up")

    store.start_call(call_id="live", channel="webrtc", caller=None, started_at=T0 + 3 * HOUR)
    store.add_turn("live", speaker="caller", text="Hello?", start_ms=0, sentiment=0.5)
    store.add_turn("live", speaker="assistant", text="Hi, how can I help?", start_ms=800,
                   latency_ms=1500)


def ids(calls: Iterable[dict[str, Any]]) -> list[str]:
    return [call["id"] for call in calls]


def values(labels: list[dict[str, Any]]) -> list[str]:
    return [label["value"] for label in labels]


# ---------------------------------------------------------------------- search_calls
def test_search_without_filters_lists_every_call_newest_first_with_its_figures(
    store: CallRepository,
) -> None:
    record_calls(store)
    calls = store.search_calls()
    assert ids(calls) == ["live", "hung-up", "to-agent", "refund"]
    assert calls[3] == {
        "id": "refund", "channel": "twilio", "caller": "+15550100",
        "started_at": "2025-03-04T10:00:00+00:00", "ended_at": "2025-03-04T10:01:30.250000+00:00",
        "outcome": "completed", "turn_count": 3, "duration_s": 90.25,
        "intents": ["refund", "order_status"], "min_sentiment": -0.6, "max_latency_ms": 700,
        "transferred": False,
    }
    assert calls[0] == {
        "id": "live", "channel": "webrtc", "caller": None,
        "started_at": "2025-03-04T13:00:00+00:00", "ended_at": None, "outcome": None,
        "turn_count": 2, "duration_s": None, "intents": [], "min_sentiment": 0.5,
        "max_latency_ms": 1500, "transferred": False,
    }
    assert [c["transferred"] for c in calls] == [False, True, True, False]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"since": T0 + HOUR}, ["live", "hung-up", "to-agent"]),  # since is included
        ({"until": T0 + HOUR}, ["refund"]),  # until is not
        ({"since": T0 + HOUR, "until": T0 + 3 * HOUR}, ["hung-up", "to-agent"]),
        ({"outcome": "transferred"}, ["to-agent"]),
        ({"outcome": "nothing-like-it"}, []),
        ({"channel": "twilio"}, ["hung-up", "refund"]),
        ({"intent": "agent"}, ["hung-up", "to-agent"]),
        ({"intent": "order_status"}, ["refund"]),
        ({"transferred": True}, ["hung-up", "to-agent"]),
        ({"transferred": False}, ["live", "refund"]),
        ({"sentiment_below": 0.0}, ["to-agent", "refund"]),
        ({"sentiment_below": -0.6}, []),  # strictly below
        ({"latency_above_ms": 500}, ["live", "refund"]),
        ({"latency_above_ms": 1500}, []),  # strictly above
        ({"channel": "twilio", "transferred": True}, ["hung-up"]),
        ({"intent": "agent", "sentiment_below": 0.0, "channel": "asterisk"}, ["to-agent"]),
    ],
)
def test_each_filter_narrows_the_search_and_filters_combine(
    store: CallRepository, filters: dict[str, Any], expected: list[str],
) -> None:
    record_calls(store)
    assert ids(store.search_calls(**filters)) == expected
    assert store.count_calls(**filters) == len(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refund", ["refund"]),
        ("REFUNDED kettles", ["refund"]),  # stemmed, any case
        ("broken kettle", ["refund"]),
        ("kettle order", []),  # the words must be in one turn
        ("where is my order", ["refund"]),  # stop words do not count...
        ("where is my", []),  # ...and a search of only stop words finds nothing
        ("person", ["to-agent"]),
        ("operator", ["hung-up"]),
        ("help", ["live", "refund"]),
        ('"refund" AND (kettle*', ["refund"]),  # no query syntax: only the words count
        ("   ", ["live", "hung-up", "to-agent", "refund"]),  # blank: no filter
    ],
)
def test_full_text_search_finds_calls_by_the_words_of_a_turn(
    store: CallRepository, text: str, expected: list[str],
) -> None:
    record_calls(store)
    assert ids(store.search_calls(text=text)) == expected
    assert store.count_calls(text=text) == len(expected)


def test_text_search_follows_turn_updates_and_combines_with_other_filters(
    store: CallRepository,
) -> None:
    record_calls(store)
    turn_id = store.add_turn("live", speaker="caller", text="", start_ms=3000)
    store.update_turn(turn_id, text="my kettle is broken too")
    assert ids(store.search_calls(text="broken kettle")) == ["live", "refund"]
    assert ids(store.search_calls(text="broken kettle", channel="webrtc")) == ["live"]
    store.update_turn(turn_id, text="never mind")
    assert ids(store.search_calls(text="broken kettle")) == ["refund"]


def test_search_pages_with_limit_and_offset(store: CallRepository) -> None:
    record_calls(store)
    assert ids(store.search_calls(limit=2)) == ["live", "hung-up"]
    assert ids(store.search_calls(limit=2, offset=2)) == ["to-agent", "refund"]
    assert store.search_calls(offset=4) == []
    assert store.count_calls() == 4


@pytest.mark.parametrize(
    "filters",
    [{"since": datetime(2025, 1, 1)}, {"sentiment_below": float("nan")},
     {"latency_above_ms": -1}, {"limit": -1}, {"transferred": "yes"}, {"text": 42}],
    ids=["naive-since", "nan", "negative-latency", "negative-limit", "str-bool", "int-text"],
)
def test_a_filter_that_makes_no_sense_raises_invalid_record_error(
    store: CallRepository, filters: dict[str, Any],
) -> None:
    with pytest.raises(InvalidRecordError):
        store.search_calls(**filters)


# ---------------------------------------------------------------------- iter_calls
def test_iter_calls_yields_whole_records_oldest_first(store: CallRepository) -> None:
    record_calls(store)
    records = list(store.iter_calls())
    assert ids(records) == ["refund", "to-agent", "hung-up", "live"]
    assert records == [store.get_call(call_id) for call_id in ids(records)]
    assert ids(store.iter_calls(T0 + HOUR, T0 + 3 * HOUR)) == ["to-agent", "hung-up"]
    assert ids(store.iter_calls(since=T0 + 3 * HOUR)) == ["live"]


def test_iter_calls_reads_in_batches_without_losing_calls_that_started_together(
    store: CallRepository,
) -> None:
    for n in range(7):  # three calls share each start time but the last
        store.start_call(call_id=f"c{n}", channel="twilio", caller=None,
                         started_at=T0 + timedelta(seconds=n // 3))
        store.add_turn(f"c{n}", speaker="caller", text=f"turn of c{n}", start_ms=0)
    for batch_size in (1, 2, 3, 7, 100):
        records = list(store.iter_calls(batch_size=batch_size))
        assert ids(records) == [f"c{n}" for n in range(7)]
        assert [r["turns"][0]["text"] for r in records] == [f"turn of c{n}" for n in range(7)]


def test_iter_calls_does_not_hold_the_store_between_batches(store: CallRepository) -> None:
    record_calls(store)
    calls = store.iter_calls(batch_size=1)
    assert next(calls)["id"] == "refund"
    store.add_event("live", type="dtmf", at_ms=4000, digit="9")  # would block if held
    assert ids(calls) == ["to-agent", "hung-up", "live"]


# ---------------------------------------------------------------------- labels
def test_labels_come_back_with_their_turn_for_retraining(store: CallRepository) -> None:
    record_calls(store)
    first = store.add_turn("refund", speaker="caller", text="It arrived broken", start_ms=9000,
                           intent="order_status", confidence=0.55)
    label_id = store.add_label(first, kind="intent", value="refund", by="ana",
                               at=T0 + timedelta(days=1))
    note_id = store.add_label(first, kind="note", value="ASR heard 'arrived' right", by="bo",
                              at=T0 + timedelta(days=2))
    assert label_id != note_id

    labels = store.labels()

    assert labels == [
        {"id": label_id, "call_id": "refund", "turn_id": first, "kind": "intent",
         "value": "refund", "by": "ana", "at": "2025-03-05T10:00:00+00:00", "speaker": "caller",
         "text": "It arrived broken", "turn_intent": "order_status", "turn_confidence": 0.55},
        {"id": note_id, "call_id": "refund", "turn_id": first, "kind": "note",
         "value": "ASR heard 'arrived' right", "by": "bo", "at": "2025-03-06T10:00:00+00:00",
         "speaker": "caller", "text": "It arrived broken", "turn_intent": "order_status",
         "turn_confidence": 0.55},
    ]


def test_labels_are_filtered_by_call_time_and_kind(store: CallRepository) -> None:
    record_calls(store)
    refund_turn = store.add_turn("refund", speaker="caller", text="x", start_ms=9000)
    agent_turn = store.add_turn("to-agent", speaker="caller", text="y", start_ms=9000)
    store.add_label(refund_turn, kind="intent", value="refund", by="ana", at=T0)
    store.add_label(agent_turn, kind="answer", value="Transfer at once", by="ana", at=T0 + HOUR)
    store.add_label(agent_turn, kind="note", value="angry", by="bo")  # now
    assert values(store.labels(call_id="to-agent")) == ["Transfer at once", "angry"]
    assert values(store.labels(since=T0 + HOUR)) == ["Transfer at once", "angry"]
    assert values(store.labels(kind="intent")) == ["refund"]
    assert store.labels(call_id="nope") == []


def test_a_label_needs_a_known_turn_a_known_kind_a_value_and_an_author(
    store: CallRepository,
) -> None:
    record_calls(store)
    turn_id = store.add_turn("refund", speaker="caller", text="x", start_ms=9000)
    with pytest.raises(UnknownTurnError):
        store.add_label(turn_id + 1000, kind="intent", value="refund", by="ana")
    with pytest.raises(UnknownTurnError):
        store.add_label("1", kind="intent", value="refund", by="ana")  # type: ignore[arg-type]
    for bad in ({"kind": "mood"}, {"value": ""}, {"by": ""}, {"at": datetime(2025, 1, 1)}):
        label: dict[str, Any] = {"kind": "intent", "value": "refund", "by": "ana", **bad}
        with pytest.raises(InvalidRecordError):
            store.add_label(turn_id, **label)
    assert store.labels() == []


# ---------------------------------------------------------------------- retention
def test_deleting_old_calls_takes_everything_recorded_about_them(store: CallRepository) -> None:
    record_calls(store)
    refund_turn = store.add_turn("refund", speaker="caller", text="x", start_ms=9000)
    store.add_label(refund_turn, kind="note", value="old", by="ana")
    store.save_handoff({"id": "H1", "call_id": "to-agent", "status": "connected",
                        "created_at": "2025-03-04T11:00:10+00:00",
                        "updated_at": "2025-03-04T11:00:20+00:00", "reason": "asked"})
    store.save_handoff({"id": "H2", "call_id": "live", "status": "waiting",
                        "created_at": "2025-03-04T13:00:10+00:00",
                        "updated_at": "2025-03-04T13:00:10+00:00", "reason": "asked"})

    deleted = store.delete_older_than(T0 + 3 * HOUR + timedelta(days=1))

    assert deleted == ["refund", "to-agent", "hung-up"]  # oldest first; the live call stays
    assert ids(store.list_calls()) == ["live"]
    assert all(store.get_call(call_id) is None for call_id in deleted)
    assert ids(store.search_calls(text="refund")) == []
    assert store.labels() == []
    assert [h["id"] for h in store.list_handoffs()] == ["H2"]
    assert store.delete_older_than(T0 + timedelta(days=30)) == []
    new_turn = store.add_turn("live", speaker="caller", text="still here", start_ms=9000)
    assert new_turn > refund_turn  # turn ids are never reused: labels may refer to them


def test_calls_started_on_or_after_the_cutoff_are_kept(store: CallRepository) -> None:
    record_calls(store)
    assert store.delete_older_than(T0 + HOUR) == ["refund"]
    assert ids(store.list_calls()) == ["live", "hung-up", "to-agent"]


def test_retention_deletes_old_records_and_their_recordings(
    store: CallRepository, tmp_path: Path,
) -> None:
    record_calls(store)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for name in ("refund.wav", "refund.caller.wav", "to-agent.wav", "live.wav",
                 "refunded.wav", "refund", "notes.txt"):
        (recordings / name).write_bytes(b"RIFF")
    now = T0 + timedelta(days=10, minutes=30)  # refund started 10 days 30 minutes ago

    assert apply_retention(store, 10, recordings, now=now) == 1
    assert sorted(p.name for p in recordings.iterdir()) == [
        "live.wav", "notes.txt", "refund", "refunded.wav", "to-agent.wav"]
    assert ids(store.list_calls()) == ["live", "hung-up", "to-agent"]

    assert apply_retention(store, 0, recordings, now=now + timedelta(days=999)) == 0  # forever
    assert apply_retention(store, 9, None, now=now) == 2  # no folder: records only
    with pytest.raises(ValueError):
        apply_retention(store, -1, recordings)


async def test_retention_runs_at_once_and_then_every_period_until_cancelled(
    store: CallRepository,
) -> None:
    record_calls(store)  # long ago: every ended call is more than a day old
    retention = asyncio.create_task(retain_daily(store, 1, None, every_s=0.05))
    try:
        await wait_for(lambda: ids(store.list_calls()) == ["live"])
        store.start_call(call_id="later", channel="twilio", caller=None, started_at=T0)
        store.end_call("later", ended_at=T0 + HOUR, outcome="completed")
        await wait_for(lambda: store.get_call("later") is None)  # the next round took it
    finally:
        retention.cancel()
    await asyncio.gather(retention, return_exceptions=True)
    await retain_daily(store, 0, None)  # zero days: returns at once, deletes nothing


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "retention did not run"
        await asyncio.sleep(0.01)


def test_a_call_id_cannot_lead_retention_outside_the_recordings_folder(
    store: CallRepository, tmp_path: Path,
) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"keep")
    (recordings / "[ab].wav").write_bytes(b"old")
    (recordings / "a.wav").write_bytes(b"keep")
    for call_id in ("../secret", "[ab]"):
        store.start_call(call_id=call_id, channel="twilio", caller=None, started_at=T0)
        store.end_call(call_id, ended_at=T0 + HOUR, outcome="completed")
    assert apply_retention(store, 1, recordings, now=T0 + timedelta(days=2)) == 2
    assert (tmp_path / "secret.wav").exists() and (recordings / "a.wav").exists()
    assert not (recordings / "[ab].wav").exists()


# ---------------------------------------------------------------------- both stores agree
@pytest.mark.postgres
def test_sqlite_and_postgres_give_the_same_answers(tmp_path: Path, postgres_url: str) -> None:
    answers = []
    for url in (None, postgres_url):
        with open_store(url, tmp_path / "calls.sqlite3") as store:
            record_calls(store)
            turn_id = store.add_turn("refund", speaker="agent", text="Refund sent", start_ms=9000,
                                     meta={"z": 1, "a": [1.5, "é"], "nested": {"b": None}})
            store.update_turn(turn_id, end_ms=9500, meta={"heard": True})
            store.add_label(turn_id, kind="answer", value="Refund sent", by="ana", at=T0)
            store.save_handoff({"id": "H1", "call_id": "to-agent", "status": "waiting",
                                "created_at": "2025-03-04T11:00:10+00:00",
                                "updated_at": "2025-03-04T11:00:10+00:00", "summary": {"x": 1}})
            store.mark_unfinished_calls()
            answers.append({
                "calls": [store.get_call(c) for c in ("refund", "to-agent", "hung-up", "live")],
                "list": store.list_calls(), "search": store.search_calls(),
                "text": store.search_calls(text="refund sent"), "iter": list(store.iter_calls()),
                "labels": [{**label, "id": None, "turn_id": None} for label in store.labels()],
                "handoffs": store.list_handoffs(),
            })
    assert answers[0] == answers[1]
