"""The conversation's own frames (between listening, dialogue and speaking).

``DataFrame`` on purpose: a barge-in drops a reply that has not been spoken yet. The frames a
bridge exchanges with the pipeline are in ``telephony.frames``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import DataFrame


@dataclass
class CallerTurnFrame(DataFrame):
    """A finished caller turn, transcribed. Times are media ms since the call started."""

    text: str
    start_ms: int
    end_ms: int
    speech_end_at: float  # time.monotonic() when the caller's last speech arrived
    dtmf: str = ""
    timings: dict[str, int] = field(default_factory=dict)  # asr_ms, endpoint_ms
    # The recogniser's hypotheses, (text, log-probability per token) best first; () for one.
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass
class AssistantReplyFrame(DataFrame):
    """What the assistant decided to say, before synthesis."""

    text: str
    intent: str | None = None
    confidence: float | None = None
    speech_end_at: float | None = None  # caller's end of speech this answers, if any
    passage_ids: list[str] = field(default_factory=list)
    end_call: bool = False
    escalate: str | None = None  # a human must take over: why
    ticket: dict[str, Any] | None = None  # the caller chose a callback or left a message
