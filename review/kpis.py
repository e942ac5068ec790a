"""Contact-center KPIs over call records: pure functions, no I/O.

``compute_kpis(records, since=..., until=...)`` reads call records in the
``GET /api/calls/{id}`` shape (``CallRepository.iter_calls`` yields them) and returns a
``KpiReport``: the figures over the whole date range and for each day of it.
``review.kpi_api`` serves the report as ``GET /api/kpis`` and draws it on ``/review/kpis``.

Which calls count
    A call belongs to the UTC date it started on. The figures cover the calls started on the
    days ``since`` .. ``until`` (both included) that have ended ("calls"); calls still running
    are only counted (``in_progress``), so that no figure changes meaning while a call goes
    on. Records from outside the range are used only to find repeat calls. A rate whose
    denominator is 0 is None.

Definitions (``DEFINITIONS`` holds the same words, for the page and the API)
    containment     contained / calls. Contained: handled end to end by the assistant: ended
                    "completed" or "caller_hung_up", at least one caller turn, not transferred,
                    no "handoff", "escalation" or "ticket" event, and not abandoned.
    transfer rate   transferred / calls. Transferred: outcome "transferred" or a "transfer"
                    event.
    abandonment     abandoned / calls. Abandoned: the caller left before being helped: ended
                    "completed" or "caller_hung_up", not transferred, no "ticket" event, and
                    (a) a "handoff" event: they hung up waiting for an agent, or after none
                    came; or (b) no caller turn at all; or (c) outcome "caller_hung_up" and no
                    assistant turn after the caller's last turn was heard (its recorded text,
                    what the caller heard, is empty, or there is none). Caller turns kept
                    from the moment the call ended ("unanswered") count in none of these.
    handle time     the mean of ended_at - started_at over the calls, in seconds.
    repeat calls    repeats / calls with a caller ID. A repeat: the same caller ID started
                    another call (of any state, even after ``until``) within 7 days after this
                    one started. Calls without a caller ID, or with an anonymous one
                    (``ANONYMOUS_CALLERS``), are in neither count. A proxy for first-contact
                    resolution (FCR ~ 1 - repeat rate). The calls of the last 7 days before
                    now have not had their whole window yet: their rate can only grow.
    latency         p50 and p95 of ``latency_ms`` of the assistant turns (the caller's end of
                    speech to the first audio of the answer); nearest-rank percentiles, so
                    each is a measured value. Turns without a latency (the greeting) are out.
    barge-in rate   barge-ins / assistant turns. A barge-in is a "barge_in" event (the caller
                    spoke over an answer and it stopped), at most one per assistant turn. An
                    answer cut short because the call ended is not a barge-in, although its
                    turn is marked ``interrupted``.
    sentiment mix   the shares of caller turns whose sentiment is <= -0.25 (negative),
                    >= 0.25 (positive) or in between (neutral); turns without one are out.

Contained, transferred and abandoned calls are disjoint, but need not add up to all calls:
tickets (callbacks, messages), errors, restarts and escalations without a handoff are none
of them.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

__all__ = [
    "ANONYMOUS_CALLERS",
    "DEFINITIONS",
    "NEGATIVE_AT_MOST",
    "POSITIVE_AT_LEAST",
    "REPEAT_WINDOW",
    "DayKpis",
    "KpiReport",
    "Kpis",
    "compute_kpis",
    "nearest_rank",
]

REPEAT_WINDOW: Final = timedelta(days=7)
NEGATIVE_AT_MOST: Final = -0.25
POSITIVE_AT_LEAST: Final = 0.25
# What carriers put in the caller ID when the number is withheld (Twilio's "+266696687" too):
# counting those as one caller would make every anonymous call look like a repeat.
ANONYMOUS_CALLERS: Final = frozenset({"anonymous", "restricted", "unavailable", "unknown",
                                      "private", "+266696687"})
_HELPED_OUTCOMES: Final = frozenset({"completed", "caller_hung_up"})

DEFINITIONS: Final[Mapping[str, str]] = {
    "calls": "Calls started on the day (UTC) that have ended; calls still running are only"
             " counted as in progress.",
    "containment": "Calls handled end to end by the assistant: ended completed or"
                   " caller_hung_up, at least one caller turn, not transferred, no handoff,"
                   " escalation or ticket, and not abandoned.",
    "transfer_rate": "Calls with outcome transferred or a transfer event.",
    "abandonment": "Calls the caller left before being helped (ended completed or"
                   " caller_hung_up, not transferred, no ticket): hung up after a handoff"
                   " (waiting for an agent, or none came), or never said anything, or the"
                   " stream dropped (caller_hung_up) before any answer to their last turn was"
                   " heard.",
    "aht": "Average handle time: mean of ended_at - started_at, in seconds.",
    "repeat": "Calls whose caller ID called again within 7 days after; calls without a"
              " caller ID (or an anonymous one) are left out. A first-contact-resolution"
              " proxy. For calls of the last 7 days, repeats may still come.",
    "latency": "p50 / p95 (nearest rank) of the assistant turns' latency: the caller's end"
               " of speech to the first audio of the answer. The greeting has none.",
    "barge_in": "Assistant turns the caller spoke over (barge_in events, at most one per"
                " turn) / all assistant turns. Answers cut off by a hang-up do not count.",
    "sentiment": "Caller turns by sentiment: negative <= -0.25, positive >= 0.25, neutral in"
                 " between; turns without a sentiment are left out.",
}


@dataclass(frozen=True, slots=True)
class Kpis:
    """The figures over one set of calls: counts, and the rates derived from them."""

    calls: int = 0
    in_progress: int = 0
    contained: int = 0
    transferred: int = 0
    abandoned: int = 0
    handle_time_s: float = 0.0  # summed over the calls
    repeat_eligible: int = 0  # calls with a caller ID
    repeat_calls: int = 0
    latency_samples: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    answers: int = 0  # assistant turns
    barge_ins: int = 0
    sentiment_negative: int = 0
    sentiment_neutral: int = 0
    sentiment_positive: int = 0

    @property
    def containment_rate(self) -> float | None:
        return _share(self.contained, self.calls)

    @property
    def transfer_rate(self) -> float | None:
        return _share(self.transferred, self.calls)

    @property
    def abandonment_rate(self) -> float | None:
        return _share(self.abandoned, self.calls)

    @property
    def average_handle_time_s(self) -> float | None:
        return self.handle_time_s / self.calls if self.calls else None

    @property
    def repeat_rate(self) -> float | None:
        return _share(self.repeat_calls, self.repeat_eligible)

    @property
    def barge_in_rate(self) -> float | None:
        return _share(self.barge_ins, self.answers)

    @property
    def sentiment_turns(self) -> int:
        return self.sentiment_negative + self.sentiment_neutral + self.sentiment_positive

    @property
    def sentiment_mix(self) -> dict[str, float] | None:
        """Shares of negative, neutral and positive caller turns; None without any."""
        turns = self.sentiment_turns
        if not turns:
            return None
        return {"negative": self.sentiment_negative / turns,
                "neutral": self.sentiment_neutral / turns,
                "positive": self.sentiment_positive / turns}

    def to_json(self) -> dict[str, Any]:
        mix = self.sentiment_mix
        return {
            "calls": self.calls, "in_progress": self.in_progress,
            "contained": self.contained, "containment_rate": _round(self.containment_rate),
            "transferred": self.transferred, "transfer_rate": _round(self.transfer_rate),
            "abandoned": self.abandoned, "abandonment_rate": _round(self.abandonment_rate),
            "average_handle_time_s": _round(self.average_handle_time_s, 3),
            "repeat_eligible": self.repeat_eligible, "repeat_calls": self.repeat_calls,
            "repeat_rate": _round(self.repeat_rate),
            "latency_samples": self.latency_samples,
            "latency_p50_ms": self.latency_p50_ms, "latency_p95_ms": self.latency_p95_ms,
            "answers": self.answers, "barge_ins": self.barge_ins,
            "barge_in_rate": _round(self.barge_in_rate),
            "sentiment_turns": self.sentiment_turns,
            "sentiment": None if mix is None else {k: _round(v) for k, v in mix.items()},
        }


@dataclass(frozen=True, slots=True)
class DayKpis:
    """The figures over the calls started on one UTC date."""

    day: date
    kpis: Kpis

    def to_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), **self.kpis.to_json()}


@dataclass(frozen=True, slots=True)
class KpiReport:
    """The figures over ``since`` .. ``until`` (both included), overall and for every day."""

    since: date
    until: date
    overall: Kpis
    days: list[DayKpis]

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(),
                "overall": self.overall.to_json(), "days": [d.to_json() for d in self.days],
                "definitions": dict(DEFINITIONS)}


def compute_kpis(records: Iterable[Mapping[str, Any]], *, since: date,
                 until: date) -> KpiReport:
    """The KPIs of the calls started on ``since`` .. ``until`` (UTC dates, both included).

    ``records`` may also hold calls from outside the range (they are read once, in any
    order): the ones after it tell which calls in it were repeated. See the module docstring
    for the definitions. ValueError if ``until`` is before ``since``.
    """
    if until < since:
        raise ValueError(f"until ({until}) is before since ({since})")
    facts: list[_CallFacts] = []
    calls_by_caller: dict[str, list[datetime]] = defaultdict(list)
    for record in records:
        started = _moment(record["started_at"])
        caller = _caller_id(record.get("caller"))
        if caller is not None:
            calls_by_caller[caller].append(started)
        if since <= started.date() <= until:
            facts.append(_CallFacts.of(record, started, caller))
    for times in calls_by_caller.values():
        times.sort()

    overall = _Tally()
    days = {since + timedelta(days=n): _Tally() for n in range((until - since).days + 1)}
    for call in facts:
        if call.caller is not None:
            times = calls_by_caller[call.caller]
            later = bisect_right(times, call.started)
            call.repeated = later < len(times) and times[later] <= call.started + REPEAT_WINDOW
        overall.add(call)
        days[call.started.date()].add(call)
    return KpiReport(since=since, until=until, overall=overall.kpis(),
                     days=[DayKpis(day, tally.kpis()) for day, tally in days.items()])


def nearest_rank(values: list[float], percent: float) -> float | None:
    """The nearest-rank percentile: the smallest value with ``percent`` % of ``values`` at or
    below it (None for no values). Unlike interpolation, it is always a measured value."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


# ---------------------------------------------------------------------- one call
@dataclass(slots=True)
class _CallFacts:
    """What the KPIs need to know of one call, read once from its record."""

    started: datetime
    caller: str | None
    ended: bool
    handle_time_s: float = 0.0
    contained: bool = False
    transferred: bool = False
    abandoned: bool = False
    latencies: list[float] = field(default_factory=list)
    answers: int = 0
    barge_ins: int = 0
    sentiments: list[float] = field(default_factory=list)
    repeated: bool = False

    @classmethod
    def of(cls, record: Mapping[str, Any], started: datetime,
           caller: str | None) -> _CallFacts:
        ended_at = record.get("ended_at")
        facts = cls(started=started, caller=caller, ended=ended_at is not None)
        if ended_at is None:
            return facts
        facts.handle_time_s = (_moment(ended_at) - started).total_seconds()
        turns = sorted(record.get("turns") or (), key=lambda t: t.get("start_ms") or 0)
        events = {event.get("type") for event in record.get("events") or ()}
        outcome = record.get("outcome")
        # Words kept from after the call ended ("unanswered") were never a turn the assistant
        # could answer: "thanks, bye" cut off by the hang-up does not make a call abandoned.
        caller_turns = [i for i, t in enumerate(turns)
                        if t.get("speaker") == "caller" and not t.get("unanswered")]
        assistant_turns = [t for t in turns if t.get("speaker") == "assistant"]

        facts.transferred = outcome == "transferred" or "transfer" in events
        if outcome in _HELPED_OUTCOMES and not facts.transferred and "ticket" not in events:
            facts.abandoned = ("handoff" in events or not caller_turns
                               or (outcome == "caller_hung_up"
                                   and not _answer_heard_after(turns, caller_turns[-1])))
            facts.contained = (not facts.abandoned and bool(caller_turns)
                               and not events & {"handoff", "escalation"})
        facts.latencies = [t["latency_ms"] for t in assistant_turns
                           if _number(t.get("latency_ms"))]
        facts.answers = len(assistant_turns)
        barge_ins = sum(1 for e in record.get("events") or () if e.get("type") == "barge_in")
        facts.barge_ins = min(barge_ins, facts.answers)
        facts.sentiments = [turns[i]["sentiment"] for i in caller_turns
                            if _number(turns[i].get("sentiment"))]
        return facts


def _answer_heard_after(turns: list[Mapping[str, Any]], index: int) -> bool:
    """Whether the caller heard some of an assistant turn after ``turns[index]``."""
    return any(t.get("speaker") == "assistant" and str(t.get("text") or "").strip()
               for t in turns[index + 1:])


# ---------------------------------------------------------------------- adding up
class _Tally:
    """Counts kept while calls are added; ``kpis()`` turns them into figures."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.handle_time_s = 0.0
        self.latencies: list[float] = []

    def add(self, call: _CallFacts) -> None:
        counts = self.counts
        if not call.ended:
            counts["in_progress"] += 1
            return
        counts["calls"] += 1
        counts["contained"] += call.contained
        counts["transferred"] += call.transferred
        counts["abandoned"] += call.abandoned
        self.handle_time_s += call.handle_time_s
        if call.caller is not None:
            counts["repeat_eligible"] += 1
            counts["repeat_calls"] += call.repeated
        self.latencies.extend(call.latencies)
        counts["answers"] += call.answers
        counts["barge_ins"] += call.barge_ins
        for score in call.sentiments:
            mood = ("negative" if score <= NEGATIVE_AT_MOST
                    else "positive" if score >= POSITIVE_AT_LEAST else "neutral")
            counts[f"sentiment_{mood}"] += 1

    def kpis(self) -> Kpis:
        return Kpis(**self.counts, handle_time_s=self.handle_time_s,
                    latency_samples=len(self.latencies),
                    latency_p50_ms=nearest_rank(self.latencies, 50),
                    latency_p95_ms=nearest_rank(self.latencies, 95))


# ---------------------------------------------------------------------- reading fields
def _moment(value: str | datetime) -> datetime:
    """A record's time as an aware UTC datetime (a time without a zone is taken as UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _caller_id(value: object) -> str | None:
    """The caller ID that identifies a caller, or None (missing, blank or anonymous)."""
    if not isinstance(value, str) or not value.strip():
        return None
    caller = value.strip()
    return None if caller.lower() in ANONYMOUS_CALLERS else caller


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
