"""The caller simulator's vocabulary and its handset: what a turn is, what came back, and
the phone's playback buffer (audio and marks drained in real time, as Twilio plays them)."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from telephony.twilio import protocol as tw

log = logging.getLogger("iva.caller")


FRAME_S = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law, what Twilio sends per media message
SILENCE = b"\xff" * FRAME_BYTES  # μ-law digital silence
DTMF_GAP_S = 0.25
SPEECH_RMS_FLOOR = 120.0  # a 20 ms frame below this RMS (about -49 dBFS) is silence...
SPEECH_RMS_RELATIVE = 1 / 30  # ...and so is one 30 dB below the file's loudest frame
MAX_ANSWER_S = 120.0  # an answer still playing after this long is not waited for


class CallError(Exception):
    """The call could not be placed: bad URL, connection refused, handshake rejected."""


@dataclass
class CallerTurn:
    """Speak ``wav`` or type ``dtmf`` digits; ``barge_in_after_s`` speaks over the answer."""

    wav: Path | None = None
    dtmf: str | None = None
    barge_in_after_s: float | None = None

    def __post_init__(self) -> None:
        if (self.wav is None) == (self.dtmf is None):
            raise ValueError("a turn is either a WAV file or DTMF digits")
        if self.dtmf is not None and (not self.dtmf or set(self.dtmf) - tw.DTMF_DIGITS):
            raise ValueError(f"{self.dtmf!r}: DTMF digits are 0-9, *, #, A-D")
        if self.barge_in_after_s is not None and self.barge_in_after_s < 0:
            raise ValueError("barge_in_after_s must be >= 0")

    def describe(self) -> str:
        return f"dtmf:{self.dtmf}" if self.dtmf is not None else str(self.wav)


@dataclass
class AssistantSpeech:
    """One answer as the caller heard it: ``audio_pcm8k`` is what played (clears applied)."""

    started_at: float  # first audible media arrived
    ended_at: float  # its last audio played (or was cleared)
    audio_pcm8k: bytes
    marks: list[str]
    cleared: bool

    @property
    def seconds(self) -> float:
        return len(self.audio_pcm8k) / 16000


@dataclass
class TurnResult:
    turn: CallerTurn
    speech_end_at: float | None
    answer: AssistantSpeech | None
    latency_s: float | None
    clear_received_at: float | None
    speech_start_at: float | None = None


@dataclass
class CallResult:
    call_sid: str
    greeting: AssistantSpeech | None
    turns: list[TurnResult]  # one per turn performed (fewer if the server hung up first)
    assistant_audio_pcm8k: bytes = b""  # everything that played, in order, gaps left out
    closed_by_server: bool = False


# ------------------------------------------------------------------------------ the handset
@dataclass(eq=False)
class _Speech:
    started_at: float
    audible_end: float  # when its audible audio will have played, as far as known yet
    played: bytearray = field(default_factory=bytearray)
    heard: int = 0  # bytes of ``played`` up to its last audible chunk (trailing silence cut)
    marks: list[str] = field(default_factory=list)
    cleared: bool = False
    ended_at: float | None = None


class _Playback:
    """The phone's output buffer: audio and marks in arrival order, drained in real time."""

    def __init__(self) -> None:
        # (speech, audio, audible) or (speech, mark name, None)
        self._queue: deque[tuple[_Speech | None, bytes | str, bool | None]] = deque()
        self.pending_bytes = 0
        self.recording = bytearray()

    def add_audio(self, speech: _Speech | None, ulaw: bytes, audible: bool) -> None:
        self._queue.append((speech, ulaw, audible))
        self.pending_bytes += len(ulaw)

    def add_mark(self, speech: _Speech | None, name: str) -> list[str]:
        """Marks to echo now: this one if nothing is left to play before it."""
        if self._queue:
            self._queue.append((speech, name, None))
            return []
        return [_echoed(speech, name)]

    def play(self, budget: int, now: float) -> list[str]:
        """Play up to ``budget`` bytes; returns the marks reached."""
        echoed: list[str] = []
        while self._queue:
            speech, item, audible = self._queue[0]
            if isinstance(item, str):
                echoed.append(_echoed(speech, item))
            elif budget <= 0:
                break
            else:
                played, rest = item[:budget], item[budget:]
                budget -= len(played)
                self.pending_bytes -= len(played)
                self.recording += played
                if speech is not None:
                    speech.played += played
                    if audible:
                        speech.heard, speech.ended_at = len(speech.played), now + len(played) / 8000
                if rest:
                    self._queue[0] = (speech, rest, audible)
                    break
            self._queue.popleft()
        return echoed

    def clear(self, now: float) -> tuple[list[str], set[_Speech]]:
        """Drop the buffer: (marks to echo at once, speeches that lost audible audio)."""
        marks = [_echoed(s, item) for s, item, _ in self._queue if isinstance(item, str)]
        cut = {s for s, _, audible in self._queue if s is not None and audible}
        self._queue.clear()
        self.pending_bytes = 0
        return marks, cut


def _echoed(speech: _Speech | None, name: str) -> str:
    if speech is not None:
        speech.marks.append(name)
    return name


