"""Fakes for the speech models, driven by scripted timelines (no model files, no threads).

Caller audio in the fake world is synthetic: a 20 ms frame whose samples are all ``SPEECH``
counts as speech for ``FakeVad``; a frame of zeros is silence. ``speech(ms)`` and
``silence(ms)`` build such audio so a test reads like a timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from voice.asr import Transcript

SPEECH = 3000
RATE = 16_000


def speech(ms: int) -> bytes:
    return np.full(RATE * ms // 1000, SPEECH, dtype=np.int16).tobytes()


def silence(ms: int) -> bytes:
    return np.zeros(RATE * ms // 1000, dtype=np.int16).tobytes()


class FakeVadStream:
    """One probability per 512-sample window: 1.0 when the window is mostly 'speech'."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, pcm: bytes) -> list[float]:
        self._pending = np.concatenate((self._pending, np.frombuffer(pcm, dtype=np.int16)))
        probs = []
        while len(self._pending) >= 512:
            window, self._pending = self._pending[:512], self._pending[512:]
            probs.append(1.0 if np.mean(window == SPEECH) > 0.5 else 0.0)
        return probs


class FakeVad:
    def stream(self) -> FakeVadStream:
        return FakeVadStream()


@dataclass
class FakeAsr:
    """Answers each transcription with the next scripted text (or a function of the audio)."""

    texts: list[str] = field(default_factory=list)
    by_audio: Callable[[np.ndarray], str] | None = None
    calls: list[float] = field(default_factory=list)

    hints: list[str] = field(default_factory=list)

    def transcribe(self, audio: np.ndarray, *, window_s: float | None = None,
                   hint: str = "") -> Transcript:
        self.calls.append(len(audio) / RATE)
        self.hints.append(hint)
        if self.by_audio is not None:
            return Transcript(self.by_audio(audio), len(audio) / RATE, 0.0)
        text = self.texts.pop(0) if self.texts else ""
        return Transcript(text, len(audio) / RATE, 0.0)


@dataclass
class FakeTurnModel:
    probability: float = 0.9

    def completion_probability(self, audio: np.ndarray) -> float:
        return self.probability


@dataclass
class MemoryRecorder:
    """An in-memory call store with the same methods the session uses."""

    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    turns: dict[int, dict[str, Any]] = field(default_factory=dict)

    def start_call(self, *, call_id: str, channel: str, caller: str | None,
                   started_at: datetime, meta: dict[str, Any] | None = None) -> None:
        self.calls[call_id] = {"channel": channel, "caller": caller, "events": [],
                               "outcome": None}

    def add_turn(self, call_id: str, **fields: Any) -> int:
        turn_id = len(self.turns) + 1
        self.turns[turn_id] = {"call_id": call_id, **fields}
        return turn_id

    def update_turn(self, turn_id: int, **fields: Any) -> None:
        self.turns[turn_id].update(fields)

    def add_event(self, call_id: str, *, type: str, at_ms: int, **data: Any) -> None:
        self.calls[call_id]["events"].append({"type": type, "at_ms": at_ms, **data})

    def end_call(self, call_id: str, *, ended_at: datetime, outcome: str) -> None:
        self.calls[call_id]["outcome"] = outcome

    def events(self, call_id: str) -> list[str]:
        return [e["type"] for e in self.calls[call_id]["events"]]

    def turns_of(self, speaker: str) -> list[dict[str, Any]]:
        return [t for t in self.turns.values() if t["speaker"] == speaker]
