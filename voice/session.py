"""One call's state and its record: turns, timings, what the caller actually heard.

The session is the single writer of the call record. Every turn and event is written to the
store as it happens, so a crash loses at most the turn in flight. It is plain Python (no
pipecat), shared by the processors of one call and by its bridge.

Timing model: ``at_ms`` values are milliseconds since the call started (the bridge's ``start``);
latency is measured on the monotonic clock from the caller's end of speech (when the last
speech audio arrived) to the moment the first audio message of the answer was sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from review.redaction import redact

log = logging.getLogger("iva.call")


class CallRecorder(Protocol):
    """What the session needs from the store (``review.store.CallStore`` provides it)."""

    def start_call(self, *, call_id: str, channel: str, caller: str | None, started_at: datetime,
                   meta: dict[str, Any] | None = None) -> None: ...
    def add_turn(self, call_id: str, **fields: Any) -> int: ...
    def update_turn(self, turn_id: int, **fields: Any) -> None: ...
    def add_event(self, call_id: str, *, type: str, at_ms: int, **data: Any) -> None: ...
    def end_call(self, call_id: str, *, ended_at: datetime, outcome: str) -> None: ...


@dataclass
class Sentence:
    text: str
    duration_ms: int
    mark: str
    played: bool = False


@dataclass
class AssistantTurn:
    """An answer being spoken; ``heard_text`` is what reached the caller's ear."""

    seq: int
    text: str
    start_ms: int
    intent: str | None
    confidence: float | None
    speech_end_at: float | None
    turn_id: int | None = None
    sentences: list[Sentence] = field(default_factory=list)
    first_audio_at: float | None = None
    last_played_at: float | None = None
    synthesis_done: bool = False
    interrupted: bool = False
    finished: bool = False
    end_call: bool = False

    def heard_text(self, *, now: float | None = None) -> str:
        """Sentences whose marks came back, plus the share of the next one played so far."""
        words: list[str] = []
        for sentence in self.sentences:
            if sentence.played:
                words.extend(sentence.text.split())
                continue
            if now is not None and self.interrupted:
                since = self.last_played_at or self.first_audio_at
                if since is not None and sentence.duration_ms > 0:
                    share = min(1.0, max(0.0, (now - since) * 1000 / sentence.duration_ms))
                    part = sentence.text.split()
                    words.extend(part[: int(len(part) * share)])
            break
        return " ".join(words)


class CallSession:
    """Bookkeeping for one call; methods are called from the call's event loop."""

    def __init__(self, recorder: CallRecorder, *, channel: str) -> None:
        self._recorder = recorder
        self.channel = channel
        self.call_id: str | None = None
        self.caller: str | None = None
        self._t0 = time.monotonic()
        self._seq = 0
        self.current: AssistantTurn | None = None
        self.ended = False
        self.dtmf_buffer = ""
        # The slot the assistant's last reply asked for ("order_number", "postcode", ...):
        # turn-taking waits longer while such a code is being dictated.
        self.expecting: str | None = None
        self.latencies_ms: list[int] = []
        # Set by the bridge: hang up once a closing answer ("goodbye") has been heard.
        self.on_goodbye_heard: Callable[[], None] | None = None
        # The conversation so far ({"speaker", "text", "start_ms", ...}), for a handoff, and
        # who wants each new turn as it is recorded (an agent's desk following the call).
        self.transcript: list[dict[str, Any]] = []
        self.turn_listeners: list[Callable[[dict[str, Any]], None]] = []
        # True while the caller waits on hold for an agent: the assistant does not answer.
        self.on_hold = False
        # How the call ended when the conversation knows better than the bridge ("transferred").
        self.final_outcome: str | None = None
        # The caller's mood so far ({"label", "trend"}), when the call measures it.
        self.mood_summary: Callable[[], dict[str, Any]] | None = None
        # Turns (start_ms, end_ms) whose words were redacted: the recording is silenced there.
        self.pii_spans_ms: list[tuple[int, int]] = []
        # Called once the call has ended (after its record is closed): recordings, the desk.
        self.on_end: list[Callable[[], None]] = []

    # ---------------------------------------------------------------- lifecycle
    @property
    def started(self) -> bool:
        return self.call_id is not None

    def now_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def begin(self, call_id: str, *, caller: str | None, meta: dict[str, Any] | None = None) -> None:
        self._t0 = time.monotonic()
        self.call_id = call_id
        self.caller = caller
        self._recorder.start_call(
            call_id=call_id, channel=self.channel, caller=caller,
            started_at=datetime.now(UTC), meta=meta,
        )
        log.info("call %s: started (%s, caller %s)", call_id, self.channel, _mask(caller))

    def end(self, outcome: str) -> None:
        if self.ended or self.call_id is None:
            return
        if self.current and not self.current.finished:
            self.current.interrupted = True  # the call ended before the answer was heard
            self._close_assistant_turn(self.current, interrupted=True)
        self.ended = True
        outcome = self.final_outcome or outcome
        self._recorder.end_call(self.call_id, ended_at=datetime.now(UTC), outcome=outcome)
        log.info("call %s: ended (%s)", self.call_id, outcome)
        for callback in self.on_end:
            try:
                callback()
            except Exception:
                log.exception("call %s: an end-of-call step failed", self.call_id)

    def event(self, type: str, **data: Any) -> None:
        if self.call_id is None or self.ended:
            return
        self._recorder.add_event(self.call_id, type=type, at_ms=self.now_ms(), **data)

    # ---------------------------------------------------------------- caller side
    def caller_turn(self, text: str, *, start_ms: int, end_ms: int, intent: str | None = None,
                    confidence: float | None = None, sentiment: float | None = None,
                    meta: dict[str, Any] | None = None) -> None:
        if self.call_id is None or self.ended:
            return
        text, meta = self._redacted(text, start_ms, end_ms, meta)
        self._recorder.add_turn(
            self.call_id, speaker="caller", text=text, start_ms=start_ms, end_ms=end_ms,
            intent=intent, confidence=confidence, sentiment=sentiment, meta=meta,
        )
        log.info("call %s: caller turn %d-%d ms (%d words)", self.call_id, start_ms, end_ms,
                 len(text.split()))
        self._add_to_transcript({"speaker": "caller", "text": text, "start_ms": start_ms,
                                 "end_ms": end_ms, "intent": intent, "confidence": confidence,
                                 "sentiment": sentiment})

    def agent_turn(self, text: str, *, start_ms: int, end_ms: int,
                   meta: dict[str, Any] | None = None) -> None:
        """A human agent's words, once the call has been handed over."""
        if self.call_id is None or self.ended:
            return
        text, meta = self._redacted(text, start_ms, end_ms, meta)
        self._recorder.add_turn(self.call_id, speaker="agent", text=text, start_ms=start_ms,
                                end_ms=end_ms, meta=meta)
        self._add_to_transcript({"speaker": "agent", "text": text, "start_ms": start_ms,
                                 "end_ms": end_ms})

    def _redacted(self, text: str, start_ms: int, end_ms: int,
                  meta: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
        """PII out before anything is stored: the text gets placeholders ("[card]"), the
        turn's span is remembered so the recording can be silenced there too."""
        redaction = redact(text)
        if not redaction.spans:
            return text, meta
        kinds = sorted({span.kind for span in redaction.spans})
        self.pii_spans_ms.append((start_ms, end_ms))
        log.info("call %s: %s redacted from a turn", self.call_id, ", ".join(kinds))
        return redaction.text, {**(meta or {}), "redacted": kinds}

    def sentiment_summary(self) -> dict[str, Any]:
        """How the caller has sounded so far: the label of the last turn and the trend of
        per-turn scores (empty until sentiment is measured)."""
        if self.mood_summary is not None:
            return self.mood_summary()
        scores = [t["sentiment"] for t in self.transcript
                  if t["speaker"] == "caller" and t.get("sentiment") is not None]
        if not scores:
            return {}
        last = scores[-1]
        label = "negative" if last <= -0.25 else "positive" if last >= 0.25 else "neutral"
        return {"label": label, "trend": [round(s, 2) for s in scores]}

    def _add_to_transcript(self, turn: dict[str, Any]) -> None:
        self.transcript.append(turn)
        for listener in list(self.turn_listeners):
            try:
                listener(turn)
            except Exception:
                log.exception("call %s: a transcript listener failed; dropped", self.call_id)
                self.turn_listeners.remove(listener)

    def dtmf(self, digit: str) -> None:
        self.event("dtmf", digit=digit)

    # ---------------------------------------------------------------- assistant side
    @property
    def assistant_speaking(self) -> bool:
        """True from the answer's first audio until the caller has heard its last sentence."""
        turn = self.current
        return bool(turn and turn.first_audio_at is not None and not turn.finished)

    @property
    def assistant_busy(self) -> bool:
        """An answer is being prepared or spoken."""
        return bool(self.current and not self.current.finished)

    def reply_started(self, text: str, *, intent: str | None, confidence: float | None,
                      speech_end_at: float | None, end_call: bool = False) -> AssistantTurn:
        if self.current and not self.current.finished:
            self._close_assistant_turn(self.current, interrupted=True)
        self._seq += 1
        turn = AssistantTurn(seq=self._seq, text=text, start_ms=self.now_ms(), intent=intent,
                             confidence=confidence, speech_end_at=speech_end_at, end_call=end_call)
        self.current = turn
        if self.call_id and not self.ended:
            turn.turn_id = self._recorder.add_turn(
                self.call_id, speaker="assistant", text="", start_ms=turn.start_ms,
                intent=intent, confidence=confidence, meta={"planned_text": text},
            )
        return turn

    def sentence_queued(self, turn: AssistantTurn, text: str, duration_ms: int) -> str:
        mark = f"r{turn.seq}.{len(turn.sentences) + 1}"
        turn.sentences.append(Sentence(text, duration_ms, mark))
        return mark

    def note(self, turn: AssistantTurn, **meta: Any) -> None:
        """Extra facts about an answer (timings), merged into its record."""
        if turn.turn_id is not None and not self.ended:
            self._recorder.update_turn(turn.turn_id, meta=meta)

    def synthesis_finished(self, turn: AssistantTurn) -> None:
        turn.synthesis_done = True
        self._maybe_finish(turn)

    def audio_sent(self) -> None:
        """The bridge sent an audio message of the current answer."""
        turn = self.current
        if turn is None or turn.first_audio_at is not None or turn.finished:
            return
        turn.first_audio_at = time.monotonic()
        latency_ms = None
        if turn.speech_end_at is not None:
            latency_ms = int((turn.first_audio_at - turn.speech_end_at) * 1000)
            self.latencies_ms.append(latency_ms)
        if turn.turn_id is not None and not self.ended:
            self._recorder.update_turn(turn.turn_id, latency_ms=latency_ms)
        log.info("call %s: answer %d first audio, latency %s ms", self.call_id, turn.seq,
                 latency_ms if latency_ms is not None else "-")

    def mark_played(self, name: str) -> None:
        turn = self.current
        if turn is None or turn.interrupted or turn.finished:
            return  # marks echoed after a clear were never heard
        for sentence in turn.sentences:
            if sentence.mark == name:
                sentence.played = True
                turn.last_played_at = time.monotonic()
        self._maybe_finish(turn)

    def interrupted(self, *, speech_onset_ms: int | None = None) -> AssistantTurn | None:
        """Barge-in: the caller spoke over the answer; keep what they heard."""
        turn = self.current
        if turn is None or turn.finished:
            return None
        turn.interrupted = True
        heard = turn.heard_text(now=time.monotonic())
        self.event("barge_in", answer=turn.seq, heard_words=len(heard.split()),
                   speech_onset_ms=speech_onset_ms)
        self._close_assistant_turn(turn, interrupted=True)
        return turn

    def _maybe_finish(self, turn: AssistantTurn) -> None:
        if turn.synthesis_done and all(s.played for s in turn.sentences) and not turn.finished:
            self._close_assistant_turn(turn, interrupted=False)

    def _close_assistant_turn(self, turn: AssistantTurn, *, interrupted: bool) -> None:
        turn.finished = True
        turn.interrupted = turn.interrupted or interrupted
        text = turn.heard_text(now=time.monotonic()) if turn.interrupted else turn.text
        if turn.turn_id is not None and not self.ended:
            self._recorder.update_turn(
                turn.turn_id, text=text, end_ms=self.now_ms(), interrupted=turn.interrupted,
            )
        if text:
            self._add_to_transcript({"speaker": "assistant", "text": text,
                                     "start_ms": turn.start_ms, "end_ms": self.now_ms(),
                                     "intent": turn.intent, "interrupted": turn.interrupted})
        if turn.end_call and not turn.interrupted and self.on_goodbye_heard is not None:
            self.on_goodbye_heard()


def _mask(number: str | None) -> str:
    """Caller IDs in logs keep only their last two digits."""
    if not number:
        return "unknown"
    return "*" * max(0, len(number) - 2) + number[-2:]
