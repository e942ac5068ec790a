"""Turn-taking as a pure state machine over VAD probabilities (no audio, no asyncio).

Feed one speech probability per VAD window with its media time; get events back:

    QUIET ──speech ≥ start_ms──▶ SPEAKING ──silence ≥ pause_ms──▶ PAUSED
      ▲                            ▲   │                          │  │
      │                            └───┼──────speech again────────┘  │
      └──────── end_turn() (the owner decided the turn is over) ─────┘

``SpeechStarted`` opens a caller segment, ``SpeechHesitated`` says the caller has been silent
for ``hesitation_ms`` (time to start speculative work), ``SpeechPaused`` for ``pause_ms`` (the owner then asks the turn model, or waits for ``SilenceTimeout`` after
``timeout_ms``), ``SpeechResumed`` cancels a pending decision. Hysteresis: speech needs
``p ≥ threshold``, silence ``p < threshold - 0.15``, as Silero's authors recommend.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TurnState(Enum):
    QUIET = "quiet"
    SPEAKING = "speaking"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechHesitated:
    end_ms: int  # a short silence: worth starting the (discardable) ASR and turn model now


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    end_ms: int  # media time of the end of the last speech window


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    at_ms: int


@dataclass(frozen=True, slots=True)
class SilenceTimeout:
    end_ms: int


TurnEvent = SpeechStarted | SpeechHesitated | SpeechPaused | SpeechResumed | SilenceTimeout


class TurnDetector:
    """VAD hysteresis and silence accounting for one caller."""

    def __init__(
        self,
        *,
        window_ms: int = 32,
        threshold: float = 0.5,
        start_ms: int = 60,
        hesitation_ms: int = 120,
        pause_ms: int = 200,
        timeout_ms: int = 800,
    ) -> None:
        self.window_ms = window_ms
        self.threshold = threshold
        self.low_threshold = max(0.01, threshold - 0.15)
        self.start_ms = start_ms
        self.pause_ms = pause_ms
        self.hesitation_ms = min(hesitation_ms, pause_ms)
        self._hesitation_sent = False
        self.timeout_ms = timeout_ms
        self.state = TurnState.QUIET
        self.segment_start_ms: int | None = None
        self.last_speech_end_ms = 0
        self._speech_run_ms = 0
        self._silence_run_ms = 0
        self._timeout_sent = False

    @property
    def current_speech_ms(self) -> int:
        """Length of the ongoing run of speech (0 when the caller is silent)."""
        return self._speech_run_ms if self._silence_run_ms == 0 else 0

    def push(self, t_ms: int, prob: float) -> list[TurnEvent]:
        """One VAD window ending at media time ``t_ms``."""
        events: list[TurnEvent] = []
        is_speech = prob >= self.threshold
        is_silence = prob < self.low_threshold
        if self.state is TurnState.QUIET:
            if is_speech:
                self._speech_run_ms += self.window_ms
                if self._speech_run_ms >= self.start_ms:
                    self.state = TurnState.SPEAKING
                    self.segment_start_ms = t_ms - self._speech_run_ms
                    self._silence_run_ms = 0
                    events.append(SpeechStarted(self.segment_start_ms))
            elif is_silence:
                self._speech_run_ms = 0
            return events

        if is_speech or not is_silence:
            # Speech (or the undecided band just after it) keeps the segment open.
            if self.state is TurnState.PAUSED and is_speech:
                self.state = TurnState.SPEAKING
                self._timeout_sent = False
                self._hesitation_sent = False
                events.append(SpeechResumed(t_ms))
            if is_speech:
                if self._silence_run_ms:
                    self._speech_run_ms = 0
                    if self._hesitation_sent and self.state is TurnState.SPEAKING:
                        events.append(SpeechResumed(t_ms))
                    self._hesitation_sent = False
                self._silence_run_ms = 0
                self._speech_run_ms += self.window_ms
                self.last_speech_end_ms = t_ms
            return events

        self._silence_run_ms += self.window_ms
        if (self.state is TurnState.SPEAKING and not self._hesitation_sent
                and self._silence_run_ms >= self.hesitation_ms):
            self._hesitation_sent = True
            events.append(SpeechHesitated(self.last_speech_end_ms))
        if self.state is TurnState.SPEAKING and self._silence_run_ms >= self.pause_ms:
            self.state = TurnState.PAUSED
            events.append(SpeechPaused(self.last_speech_end_ms))
        if (
            self.state is TurnState.PAUSED
            and not self._timeout_sent
            and self._silence_run_ms >= self.timeout_ms
        ):
            self._timeout_sent = True
            events.append(SilenceTimeout(self.last_speech_end_ms))
        return events

    def wait_longer(self, timeout_ms: int) -> bool:
        """Let the current pause run to ``timeout_ms`` of silence before ``SilenceTimeout``
        (sent again if it was already sent for a shorter timeout). False when the silence is
        already that long: the turn should end now."""
        self.timeout_ms = timeout_ms
        if self._silence_run_ms >= timeout_ms:
            return False
        self._timeout_sent = False
        return True

    def end_turn(self) -> None:
        """The owner has closed the caller's turn; the next speech opens a new one."""
        self.state = TurnState.QUIET
        self._hesitation_sent = False
        self.segment_start_ms = None
        self._speech_run_ms = 0
        self._timeout_sent = False
