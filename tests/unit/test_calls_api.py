"""GET /api/calls and GET /api/calls/{call_id}, on a tiny app that mounts only the router."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from review import CallStore, calls_router

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
CALL_KEYS = {"id", "channel", "caller", "started_at", "ended_at", "outcome", "turns", "events"}
TURN_KEYS = {"speaker", "text", "start_ms", "end_ms", "intent", "confidence", "sentiment",
             "latency_ms", "interrupted"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CallStore]:
    with CallStore(tmp_path / "calls.sqlite3") as store:
        yield store


@pytest.fixture
def client(store: CallStore) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(calls_router(store))
    with TestClient(app) as client:
        yield client


def add_calls(store: CallStore, count: int) -> None:
    """Calls c0 (oldest) .. c{count-1} (newest), a second apart."""
    for i in range(count):
        store.start_call(call_id=f"c{i}", channel="twilio", caller=None,
                         started_at=T0 + timedelta(seconds=i))


def test_an_empty_store_lists_no_calls(client: TestClient) -> None:
    response = client.get("/api/calls")
    assert response.status_code == 200
    assert response.json() == {"calls": [], "total": 0}


def test_calls_are_listed_newest_first_as_summaries(store: CallStore, client: TestClient) -> None:
    add_calls(store, 3)
    store.add_turn("c1", speaker="caller", text="hi", start_ms=0)

    calls = client.get("/api/calls").json()["calls"]

    assert [c["id"] for c in calls] == ["c2", "c1", "c0"]
    assert {k: calls[1][k] for k in ("id", "channel", "caller", "started_at", "ended_at",
                                     "outcome", "turn_count")} == {
        "id": "c1", "channel": "twilio", "caller": None,
        "started_at": "2025-03-04T10:00:01+00:00", "ended_at": None, "outcome": None,
        "turn_count": 1}


def test_limit_and_offset_page_through_the_calls(store: CallStore, client: TestClient) -> None:
    add_calls(store, 5)
    pages = [client.get("/api/calls", params={"limit": 2, "offset": offset}).json()["calls"]
             for offset in (0, 2, 4)]
    assert [[c["id"] for c in page] for page in pages] == [["c4", "c3"], ["c2", "c1"], ["c0"]]


def test_the_default_page_holds_fifty_calls(store: CallStore, client: TestClient) -> None:
    add_calls(store, 51)
    assert len(client.get("/api/calls").json()["calls"]) == 50
    assert len(client.get("/api/calls", params={"limit": 500}).json()["calls"]) == 51


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"limit": "many"}, {"offset": -1}],
    ids=["limit-0", "limit-501", "limit-not-a-number", "offset-negative"],
)
def test_paging_out_of_range_is_rejected_with_422(
    client: TestClient, params: dict[str, object]
) -> None:
    assert client.get("/api/calls", params=params).status_code == 422


def test_a_call_is_served_in_the_architecture_shape(store: CallStore, client: TestClient) -> None:
    store.start_call(call_id="CA42", channel="asterisk", caller="+15550100", started_at=T0)
    store.add_turn("CA42", speaker="caller", text="cancel my subscription", start_ms=300,
                   end_ms=1800, intent="cancel_subscription", confidence=0.81, sentiment=-0.4)
    turn_id = store.add_turn("CA42", speaker="assistant", text="", start_ms=2200,
                             meta={"planned_text": "I can help with that. Which plan?"})
    store.update_turn(turn_id, text="I can help", end_ms=2900, latency_ms=400, interrupted=True)
    store.add_event("CA42", type="barge_in", at_ms=2900, answer=1, heard_words=4)
    store.end_call("CA42", ended_at=T0 + timedelta(seconds=12), outcome="transferred")

    response = client.get("/api/calls/CA42")

    assert response.status_code == 200
    call = response.json()
    assert set(call) == CALL_KEYS | {"handoffs"}
    assert {key: call[key] for key in CALL_KEYS - {"turns", "events"}} == {
        "id": "CA42", "channel": "asterisk", "caller": "+15550100",
        "started_at": "2025-03-04T10:00:00+00:00", "ended_at": "2025-03-04T10:00:12+00:00",
        "outcome": "transferred",
    }
    caller_turn, assistant_turn = call["turns"]
    assert set(caller_turn) == TURN_KEYS | {"id"}
    assert caller_turn["speaker"] == "caller" and caller_turn["confidence"] == 0.81
    assert set(assistant_turn) == TURN_KEYS | {"planned_text", "id"}
    assert assistant_turn["text"] == "I can help"
    assert assistant_turn["latency_ms"] == 400
    assert assistant_turn["interrupted"] is True
    assert call["events"] == [{"type": "barge_in", "at_ms": 2900, "answer": 1, "heard_words": 4}]


def test_an_unknown_call_id_is_404_with_a_json_detail(client: TestClient) -> None:
    response = client.get("/api/calls/CAdoesnotexist")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown call id: CAdoesnotexist"}


def test_a_store_that_fails_answers_503_not_a_traceback(
    store: CallStore, client: TestClient
) -> None:
    store.close()
    for path in ("/api/calls", "/api/calls/CA1"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json() == {"detail": "call store unavailable"}


def test_filters_and_full_text_search_narrow_the_list(store: CallStore, client: TestClient) -> None:
    add_calls(store, 3)
    store.add_turn("c0", speaker="caller", text="my kettle arrived broken", start_ms=0,
                   intent="returns_refunds", sentiment=-0.6)
    store.add_turn("c2", speaker="caller", text="where is my order", start_ms=0,
                   intent="order_status", sentiment=0.1)
    store.end_call("c2", ended_at=T0 + timedelta(minutes=2), outcome="transferred")

    def ids(**params: object) -> list[str]:
        return [c["id"] for c in client.get("/api/calls", params=params).json()["calls"]]

    assert ids(q="kettle") == ["c0"]
    assert ids(intent="order_status") == ["c2"]
    assert ids(transferred="true") == ["c2"]
    assert ids(sentiment_below=-0.5) == ["c0"]
    assert ids(since="2025-03-04T10:00:01", until="2025-03-04T10:00:02") == ["c1"]
    assert client.get("/api/calls", params={"sentiment_below": 5}).status_code == 422


def test_an_agent_sees_only_the_calls_they_took(store: CallStore) -> None:
    from types import SimpleNamespace

    from fastapi import FastAPI

    add_calls(store, 2)
    store.save_handoff({"id": "H1", "call_id": "c1", "status": "connected",
                        "created_at": "2025-03-04T10:00:05+00:00",
                        "updated_at": "2025-03-04T10:00:05+00:00", "accepted_by": "ana"})
    agent = SimpleNamespace(name="ana", is_supervisor=False)
    app = FastAPI()
    app.include_router(calls_router(store, principal=lambda: agent))
    with TestClient(app) as client:
        assert [c["id"] for c in client.get("/api/calls").json()["calls"]] == ["c1"]
        assert client.get("/api/calls/c0").status_code == 404
        assert client.get("/api/calls/c1").json()["handoffs"][0]["accepted_by"] == "ana"
