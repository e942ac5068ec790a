"""How the caller feels, per call: the voice while they speak, the words of each turn, the
conversation so far, and the risk that the call needs a human.

:class:`CallMood` ties ``nlu.sentiment`` (words, voice, conversation signals) to
``nlu.escalation`` (the fitted, smoothed risk with its reasons) for one call. The listening side
feeds it the caller's audio during speech and tells it about barge-ins; the dialogue gives it
each finished turn and each reply, and acts on the decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kb.answers import DONT_KNOW
from nlu.assistant import DIDNT_CATCH, SAY_IT_DIFFERENTLY, STILL_UNSURE, Reply
from nlu.escalation import (
    EscalationDecision,
    EscalationModel,
    EscalationPredictor,
    EscalationSettings,
)
from nlu.prosody import VoiceTracker
from nlu.sentiment import SentimentTracker, TurnSentiment

__all__ = ["ESCALATION_ANNOUNCEMENT", "CallMood"]

ESCALATION_ANNOUNCEMENT = ("I'm sorry this has been frustrating. Let me bring in a specialist "
                           "who can sort this out for you.")
_FAILED_TEXTS = frozenset({DONT_KNOW, DIDNT_CATCH, STILL_UNSURE, SAY_IT_DIFFERENTLY})


class CallMood:
    """One call's sentiment and escalation risk (see the module docstring)."""

    def __init__(self, model: EscalationModel, settings: EscalationSettings, *,
                 baseline_seconds: float = 3.0, live_every_s: float = 2.0,
                 on_live: Callable[[TurnSentiment], None] | None = None) -> None:
        self.tracker = SentimentTracker(voice=VoiceTracker(baseline_seconds=baseline_seconds))
        self.predictor = EscalationPredictor(model, settings=settings)
        self._on_live = on_live
        self._live_every = int(live_every_s * 32000)  # bytes of 16 kHz int16 speech
        self._since_live = 0

    # --- the caller's voice (from the listening side) -------------------------------------------

    def speech_started(self) -> None:
        self._since_live = 0
        self.tracker.voice.speech_started()

    def feed(self, pcm16k: bytes) -> None:
        """Caller audio during speech; every ``live_every_s`` of it, a provisional reading of
        how the caller sounds goes to ``on_live`` (while they are still speaking)."""
        self.tracker.voice.feed(pcm16k)
        self._since_live += len(pcm16k)
        if self._on_live is not None and self._since_live >= self._live_every:
            self._since_live = 0
            self._on_live(self.tracker.live())

    def speech_stopped(self) -> None:
        self.tracker.voice.speech_stopped()

    def barge_in(self) -> None:
        self.tracker.barge_in()

    # --- turns (from the dialogue) ----------------------------------------------------------------

    def caller_turn(self, text: str, intent: str | None) -> tuple[TurnSentiment, EscalationDecision]:
        """A finished caller turn and the intent the assistant acted on (None when unsure)."""
        turn = self.tracker.caller_turn(text, intent)
        return turn, self.predictor.update(turn, self.tracker.signals, intent)

    def assistant_reply(self, reply: Reply) -> None:
        failed = reply.text in _FAILED_TEXTS or reply.intent in ("unclear", "empty")
        self.tracker.assistant_reply(reply.intent, failed)

    def summary(self) -> dict[str, Any]:
        return dict(self.tracker.summary())
