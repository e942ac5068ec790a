"""KPIs: review.kpis.compute_kpis on seeded calls with hand-computed answers, and
GET /api/kpis and /review/kpis on a tiny app over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from review.kpi_api import kpi_router
from review.kpis import DEFINITIONS, Kpis, compute_kpis, nearest_rank
from review.repository import CallRepository, open_store

pytestmark = pytest.mark.unit

DAY1, DAY2, DAY3 = date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)
TILE_IDS = ("kpi-containment", "kpi-transfer-rate", "kpi-abandonment", "kpi-aht", "kpi-repeat",
            "kpi-latency-p50", "kpi-latency-p95", "kpi-barge-in", "kpi-sentiment")


# ---------------------------------------------------------------------- building records
def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def said(start_ms: int, sentiment: float | None = None, text: str = "words") -> dict[str, Any]:
    return {"speaker": "caller", "text": text, "start_ms": start_ms, "end_ms": start_ms + 900,
            "intent": None, "confidence": None, "sentiment": sentiment, "latency_ms": None,
            "interrupted": False}


def answer(start_ms: int, latency_ms: int | None = None, *, text: str = "an answer",
           interrupted: bool = False) -> dict[str, Any]:
    return {"speaker": "assistant", "text": text, "start_ms": start_ms,
            "end_ms": start_ms + 1500, "intent": None, "confidence": None, "sentiment": None,
            "latency_ms": latency_ms, "interrupted": interrupted}


def greeting() -> dict[str, Any]:
    return answer(0, None, text="Hello, how can I help?")


def call(call_id: str, caller: str | None, started: datetime, seconds: float | None,
         outcome: str | None, turns: Iterable[dict[str, Any]] = (),
         events: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record in the GET /api/calls/{id} shape; ``seconds`` None: still in progress."""
    ended = None if seconds is None else (started + timedelta(seconds=seconds)).isoformat()
    return {"id": call_id, "channel": "twilio", "caller": caller,
            "started_at": started.isoformat(), "ended_at": ended, "outcome": outcome,
            "turns": list(turns), "events": [{"type": e, "at_ms": 5000 + i * 10}
                                             for i, e in enumerate(events)]}


def seeded_calls() -> list[dict[str, Any]]:
    """Two busy days and a quiet one; the comments say what each call counts as."""
    return [
        # Before the range: left out (and it is no repeat of anything in it).
        call("Z", "+15550001", at(date(2025, 3, 2), 23, 59, 59), 10, "completed",
             [greeting(), said(2000, -0.9), answer(4000, 300)]),
        # --- DAY1
        # contained; latencies 800, 1200; sentiment negative, neutral; repeated by D
        call("A", "+15550001", at(DAY1, 10), 120, "completed",
             [greeting(), said(2000, -0.5), answer(4000, 800), said(7000, 0.0),
              answer(9000, 1200)]),
        # transferred (escalation, handoff, transfer); sentiment negative; repeated by E
        call("B", "+15550002", at(DAY1, 11), 300, "transferred",
             [greeting(), said(2000, -0.8), answer(4000, 600, text="Connecting you.")],
             ("escalation", "handoff", "transfer")),
        # abandoned: the caller never said anything; no caller ID
        call("C", None, at(DAY1, 12), 30, "caller_hung_up", [greeting()]),
        # contained; one barge-in; latencies 1000, 400; sentiment positive, positive (0.25)
        call("D", "+15550001", at(DAY1, 15), 60, "completed",
             [greeting(), said(2000, 0.5), answer(4000, 1000, interrupted=True),
              said(5000, 0.25), answer(7000, 400)], ("barge_in",)),
        # --- DAY2
        # abandoned: hung up before any of the answer was heard (interrupted by the hang-up,
        # which is no barge-in); latency 2000; sentiment negative (-0.25)
        call("E", "+15550002", at(DAY2, 9), 90, "caller_hung_up",
             [greeting(), said(2000, -0.25), answer(4000, 2000, text="", interrupted=True)]),
        # abandoned: waited for an agent, none came, hung up; latency 900; no sentiment;
        # repeated by I (still in progress)
        call("F", "+15550003", at(DAY2, 10), 200, "completed",
             [greeting(), said(2000, None), answer(4000, 900)],
             ("escalation", "handoff", "handoff_no_agent")),
        # a ticket: neither contained nor abandoned; latency 700; positive; repeated by J
        call("G", "+15550004", at(DAY2, 11), 150, "completed",
             [greeting(), said(2000, 0.9), answer(4000, 700)],
             ("escalation", "handoff", "handoff_no_agent", "ticket")),
        # an error: neither; neutral; K is one second too late to make it a repeat
        call("H", "+15550005", at(DAY2, 12), 45, "error", [greeting(), said(2000, -0.1)]),
        # still in progress: only counted as such
        call("I", "+15550003", at(DAY2, 13), None, None, [greeting(), said(2000, -1.0)]),
        # --- after the range: only there to make repeats
        call("J", "+15550004", at(date(2025, 3, 11), 10, 59), 20, "completed"),
        call("K", "+15550005", at(date(2025, 3, 11), 12, 0, 1), 20, "completed"),
    ]


# ---------------------------------------------------------------------- the seeded answers
@pytest.fixture
def report() -> Any:
    return compute_kpis(seeded_calls(), since=DAY1, until=DAY3)


def test_every_day_of_the_range_has_its_figures_even_without_calls(report: Any) -> None:
    assert [d.day for d in report.days] == [DAY1, DAY2, DAY3]
    assert report.days[2].kpis == Kpis()


def test_counts_cover_ended_calls_of_the_range(report: Any) -> None:
    overall, day1, day2 = report.overall, report.days[0].kpis, report.days[1].kpis
    assert (overall.calls, overall.in_progress) == (8, 1)
    assert (day1.calls, day1.in_progress) == (4, 0)
    assert (day2.calls, day2.in_progress) == (4, 1)


def test_containment(report: Any) -> None:
    assert report.overall.contained == 2  # A, D
    assert report.overall.containment_rate == pytest.approx(2 / 8)
    assert report.days[0].kpis.containment_rate == pytest.approx(2 / 4)
    assert report.days[1].kpis.containment_rate == 0.0
    assert report.days[2].kpis.containment_rate is None


def test_transfer_rate(report: Any) -> None:
    assert report.overall.transferred == 1  # B
    assert report.overall.transfer_rate == pytest.approx(1 / 8)
    assert report.days[0].kpis.transfer_rate == pytest.approx(1 / 4)
    assert report.days[1].kpis.transfer_rate == 0.0


def test_abandonment(report: Any) -> None:
    assert report.overall.abandoned == 3  # C silent, E unanswered, F waited
    assert report.overall.abandonment_rate == pytest.approx(3 / 8)
    assert report.days[0].kpis.abandonment_rate == pytest.approx(1 / 4)
    assert report.days[1].kpis.abandonment_rate == pytest.approx(2 / 4)


def test_average_handle_time(report: Any) -> None:
    assert report.overall.average_handle_time_s == pytest.approx(995 / 8)
    assert report.days[0].kpis.average_handle_time_s == pytest.approx(510 / 4)
    assert report.days[1].kpis.average_handle_time_s == pytest.approx(485 / 4)
    assert report.days[2].kpis.average_handle_time_s is None


def test_repeat_calls_within_seven_days(report: Any) -> None:
    overall, day1, day2 = report.overall, report.days[0].kpis, report.days[1].kpis
    # A (by D), B (by E), F (by I, in progress), G (by J, after the range); not H (K too late)
    assert (overall.repeat_calls, overall.repeat_eligible) == (4, 7)  # C has no caller ID
    assert overall.repeat_rate == pytest.approx(4 / 7)
    assert (day1.repeat_calls, day1.repeat_eligible) == (2, 3)
    assert (day2.repeat_calls, day2.repeat_eligible) == (2, 4)


def test_latency_percentiles_are_nearest_rank(report: Any) -> None:
    overall, day1, day2 = report.overall, report.days[0].kpis, report.days[1].kpis
    # overall: 400 600 700 800 900 1000 1200 2000
    assert (overall.latency_samples, overall.latency_p50_ms, overall.latency_p95_ms) == \
        (8, 800, 2000)
    # DAY1: 400 600 800 1000 1200; DAY2: 700 900 2000
    assert (day1.latency_p50_ms, day1.latency_p95_ms) == (800, 1200)
    assert (day2.latency_p50_ms, day2.latency_p95_ms) == (900, 2000)
    assert report.days[2].kpis.latency_p50_ms is None


def test_barge_in_rate_counts_barge_ins_not_answers_cut_off_by_a_hang_up(report: Any) -> None:
    overall, day1, day2 = report.overall, report.days[0].kpis, report.days[1].kpis
    assert (overall.barge_ins, overall.answers) == (1, 16)
    assert overall.barge_in_rate == pytest.approx(1 / 16)
    assert day1.barge_in_rate == pytest.approx(1 / 9)
    assert day2.barge_in_rate == 0.0


def test_sentiment_mix(report: Any) -> None:
    overall, day1, day2 = report.overall, report.days[0].kpis, report.days[1].kpis
    assert overall.sentiment_mix == pytest.approx(
        {"negative": 3 / 8, "neutral": 2 / 8, "positive": 3 / 8})
    assert day1.sentiment_mix == pytest.approx(
        {"negative": 2 / 5, "neutral": 1 / 5, "positive": 2 / 5})
    assert day2.sentiment_mix == pytest.approx(
        {"negative": 1 / 3, "neutral": 1 / 3, "positive": 1 / 3})
    assert report.days[2].kpis.sentiment_mix is None


def test_the_report_serializes_with_dates_rates_and_definitions(report: Any) -> None:
    body = report.to_json()
    assert (body["since"], body["until"]) == ("2025-03-03", "2025-03-05")
    assert [d["date"] for d in body["days"]] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    assert body["overall"]["containment_rate"] == 0.25
    assert body["overall"]["repeat_rate"] == 0.5714
    assert body["overall"]["sentiment"] == {"negative": 0.375, "neutral": 0.25,
                                            "positive": 0.375}
    assert body["days"][2]["sentiment"] is None
    assert body["definitions"] == dict(DEFINITIONS)


# ---------------------------------------------------------------------- edge cases
def test_no_calls_give_zero_counts_and_no_rates() -> None:
    report = compute_kpis([], since=DAY1, until=DAY1)
    assert report.overall == Kpis()
    body = report.overall.to_json()
    for name in ("containment_rate", "transfer_rate", "abandonment_rate",
                 "average_handle_time_s", "repeat_rate", "latency_p50_ms", "latency_p95_ms",
                 "barge_in_rate", "sentiment"):
        assert body[name] is None, name


def test_calls_without_latencies_have_no_percentiles() -> None:
    records = [call("A", "+1555", at(DAY1, 9), 30, "completed", [greeting(), said(1000)])]
    kpis = compute_kpis(records, since=DAY1, until=DAY1).overall
    assert (kpis.latency_samples, kpis.latency_p50_ms, kpis.latency_p95_ms) == (0, None, None)
    assert kpis.answers == 1


@pytest.mark.parametrize("caller", [None, "", "  ", "anonymous", "Restricted", "+266696687"])
def test_calls_without_a_caller_id_are_left_out_of_repeats(caller: str | None) -> None:
    records = [call(f"c{i}", caller, at(DAY1, 9 + i), 30, "completed") for i in range(3)]
    kpis = compute_kpis(records, since=DAY1, until=DAY1).overall
    assert (kpis.calls, kpis.repeat_eligible, kpis.repeat_calls, kpis.repeat_rate) == \
        (3, 0, 0, None)


def test_a_repeat_is_a_later_call_within_seven_days_of_the_start() -> None:
    start = at(DAY1, 9)
    records = [call("first", "+1555", start, 30, "completed"),
               call("exactly-7-days", "+1555", start + timedelta(days=7), 30, "completed"),
               call("other-caller", "+1666", start + timedelta(hours=1), 30, "completed")]
    report = compute_kpis(records, since=DAY1, until=DAY1 + timedelta(days=7))
    assert (report.overall.repeat_calls, report.overall.repeat_eligible) == (1, 3)
    assert report.days[0].kpis.repeat_calls == 1


def test_records_may_come_in_any_order() -> None:
    forward = compute_kpis(seeded_calls(), since=DAY1, until=DAY3)
    backward = compute_kpis(reversed(seeded_calls()), since=DAY1, until=DAY3)
    assert forward == backward


def test_a_call_belongs_to_the_utc_date_it_started_on() -> None:
    late = call("A", None, datetime(2025, 3, 4, 1, 0, tzinfo=UTC), 30, "completed")
    late["started_at"] = "2025-03-04T01:00:00+02:00"  # 23:00 UTC the day before
    late["ended_at"] = "2025-03-04T01:00:30+02:00"
    report = compute_kpis([late], since=DAY1, until=DAY2)
    assert [d.kpis.calls for d in report.days] == [1, 0]


def test_a_hang_up_after_the_answer_was_heard_is_contained() -> None:
    heard = call("A", None, at(DAY1, 9), 30, "caller_hung_up",
                 [greeting(), said(1000), answer(3000, 500, text="Your order ships today",
                                                 interrupted=True)])
    kpis = compute_kpis([heard], since=DAY1, until=DAY1).overall
    assert (kpis.contained, kpis.abandoned) == (1, 0)


def test_words_kept_from_a_hang_up_count_as_no_turn() -> None:
    cut_off = {**said(6000, text="ok thanks bye"), "unanswered": "call ended"}
    helped = call("A", None, at(DAY1, 9), 30, "caller_hung_up",
                  [greeting(), said(1000), answer(3000, 500), cut_off])
    unheard = {**said(1000, text="where is my order"), "unanswered": "call ended"}
    left = call("B", None, at(DAY1, 10), 10, "caller_hung_up", [greeting(), unheard])
    kpis = compute_kpis([helped, left], since=DAY1, until=DAY1).overall
    assert (kpis.contained, kpis.abandoned) == (1, 1)


def test_an_escalation_without_a_handoff_is_not_contained_nor_abandoned() -> None:
    escalated = call("A", None, at(DAY1, 9), 30, "completed",
                     [greeting(), said(1000), answer(3000, 500)], ("escalation",))
    kpis = compute_kpis([escalated], since=DAY1, until=DAY1).overall
    assert (kpis.contained, kpis.abandoned, kpis.transferred) == (0, 0, 0)


def test_a_transfer_event_counts_as_transferred_whatever_the_outcome() -> None:
    record = call("A", None, at(DAY1, 9), 30, "completed", [greeting(), said(1000)],
                  ("handoff", "transfer"))
    kpis = compute_kpis([record], since=DAY1, until=DAY1).overall
    assert (kpis.transferred, kpis.abandoned, kpis.contained) == (1, 0, 0)


def test_barge_ins_count_at_most_once_per_assistant_turn() -> None:
    record = call("A", None, at(DAY1, 9), 30, "completed", [greeting(), said(1000)],
                  ("barge_in", "barge_in"))
    kpis = compute_kpis([record], since=DAY1, until=DAY1).overall
    assert (kpis.barge_ins, kpis.answers, kpis.barge_in_rate) == (1, 1, 1.0)


def test_a_backwards_range_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        compute_kpis([], since=DAY2, until=DAY1)


@pytest.mark.parametrize(("percent", "expected"), [(0, 1), (50, 2), (95, 4), (100, 4)])
def test_nearest_rank(percent: float, expected: int) -> None:
    assert nearest_rank([4, 1, 3, 2], percent) == expected


# ---------------------------------------------------------------------- the API and page
def supervisor() -> str:
    return "supervisor"


def nobody() -> str:
    raise HTTPException(status_code=403, detail="the supervisor role is required")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CallRepository]:
    with open_store(None, tmp_path / "calls.sqlite3") as store:
        yield store


def make_client(store: CallRepository, *, principal: Any = supervisor,
                today: date = DAY2) -> TestClient:
    app = FastAPI()
    app.include_router(kpi_router(store, principal_page=principal, principal_api=principal,
                                  today=lambda: today))
    return TestClient(app)


@pytest.fixture
def client(store: CallRepository) -> Iterator[TestClient]:
    with make_client(store) as client:
        yield client


def record_call(store: CallRepository, call_id: str, caller: str | None, started: datetime,
                seconds: float, outcome: str, turns: list[dict[str, Any]],
                events: tuple[str, ...] = ()) -> None:
    store.start_call(call_id=call_id, channel="twilio", caller=caller, started_at=started)
    for turn in turns:
        store.add_turn(call_id, **turn)
    for i, event in enumerate(events):
        store.add_event(call_id, type=event, at_ms=5000 + i)
    store.end_call(call_id, ended_at=started + timedelta(seconds=seconds), outcome=outcome)


def seed_store(store: CallRepository) -> None:
    record_call(store, "A", "+15550001", at(DAY1, 10), 120, "completed",
                [greeting(), said(2000, -0.5), answer(4000, 800), said(7000, 0.0),
                 answer(9000, 1200)])
    record_call(store, "B", "+15550002", at(DAY1, 11), 300, "transferred",
                [greeting(), said(2000, -0.8), answer(4000, 600)],
                ("escalation", "handoff", "transfer"))
    record_call(store, "C", None, at(DAY2, 12), 30, "caller_hung_up", [greeting()])
    record_call(store, "D", "+15550001", at(DAY2, 15), 60, "completed",
                [greeting(), said(2000, 0.5), answer(4000, 1000, interrupted=True),
                 said(5000, 0.25), answer(7000, 400)], ("barge_in",))
    # B's caller again, after the range asked for: B still counts as repeated
    record_call(store, "E", "+15550002", at(DAY2 + timedelta(days=2), 9), 30, "completed", [])


def test_the_api_computes_the_kpis_of_the_stored_calls(store: CallRepository,
                                                       client: TestClient) -> None:
    seed_store(store)
    response = client.get("/api/kpis", params={"since": "2025-03-03", "until": "2025-03-04"})
    assert response.status_code == 200
    body = response.json()
    overall = body["overall"]
    assert {k: overall[k] for k in ("calls", "contained", "transferred", "abandoned",
                                    "repeat_calls", "repeat_eligible", "latency_p50_ms",
                                    "latency_p95_ms", "barge_ins", "answers")} == {
        "calls": 4, "contained": 2, "transferred": 1, "abandoned": 1,
        "repeat_calls": 2, "repeat_eligible": 3, "latency_p50_ms": 800,
        "latency_p95_ms": 1200, "barge_ins": 1, "answers": 9}
    assert overall["average_handle_time_s"] == pytest.approx(510 / 4)
    assert overall["sentiment"] == {"negative": 0.4, "neutral": 0.2, "positive": 0.4}
    assert [(d["date"], d["calls"], d["containment_rate"]) for d in body["days"]] == [
        ("2025-03-03", 2, 0.5), ("2025-03-04", 2, 0.5)]
    assert body["days"][0]["repeat_rate"] == 1.0  # A by D, B by E
    assert body["days"][1]["repeat_rate"] == 0.0


def test_the_default_range_is_the_last_thirty_days(store: CallRepository) -> None:
    seed_store(store)
    with make_client(store, today=DAY2 + timedelta(days=1)) as client:
        body = client.get("/api/kpis").json()
    assert (body["since"], body["until"]) == ("2025-02-04", "2025-03-05")
    assert len(body["days"]) == 30
    assert body["overall"]["calls"] == 4


def test_since_alone_runs_to_today_and_until_alone_covers_thirty_days(
        client: TestClient) -> None:
    assert client.get("/api/kpis", params={"since": "2025-03-01"}).json()["until"] == \
        "2025-03-04"
    assert client.get("/api/kpis", params={"until": "2025-01-30"}).json()["since"] == \
        "2025-01-01"


def test_a_range_of_366_days_is_the_longest(client: TestClient) -> None:
    ok = client.get("/api/kpis", params={"since": "2024-03-04", "until": "2025-03-04"})
    assert ok.status_code == 200
    assert len(ok.json()["days"]) == 366
    too_long = client.get("/api/kpis", params={"since": "2024-03-03", "until": "2025-03-04"})
    assert too_long.status_code == 422
    assert "366" in too_long.json()["detail"]


@pytest.mark.parametrize("params", [
    {"since": "2025-13-01"}, {"since": "2025-02-30"}, {"until": "yesterday"},
    {"since": "20250301"}, {"since": "2025-03-01T00:00"}, {"since": "1741000000"},
    {"since": "2025-03-05", "until": "2025-03-04"},
], ids=["month-13", "feb-30", "word", "basic-format", "datetime", "timestamp", "backwards"])
def test_bad_dates_are_422(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/api/kpis", params=params)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_the_kpis_need_the_principal(store: CallRepository) -> None:
    with make_client(store, principal=nobody) as client:
        assert client.get("/api/kpis").status_code == 403
        assert client.get("/review/kpis").status_code == 403


def test_the_page_is_served_with_its_tiles(client: TestClient) -> None:
    response = client.get("/review/kpis")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for testid in TILE_IDS:
        assert f'data-testid="{testid}"' in page, testid
    assert "/api/kpis" in page
    assert "<script src=" not in page  # no CDN, no build step: everything is inline
