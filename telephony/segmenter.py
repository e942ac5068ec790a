"""Cutting one audio track into utterances by voice activity (transport-neutral).

Every bridge that transcribes a track it does not converse on uses this: the Twilio monitor
stream after a transfer, the agent's leg of a browser call, a SIP call's agent leg.
:class:`TrackSegmenter` is pure: 16 kHz PCM and a :class:`VadStream` in, finished
:class:`Utterance` objects out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

__all__ = ["TrackSegmenter", "Utterance", "VadStream"]


@dataclass
class Utterance:
    """One finished utterance: who spoke, when (ms since the track began) and the audio."""

    speaker: str
    start_ms: int
    end_ms: int
    audio: np.ndarray  # float32 16 kHz


class VadStream(Protocol):
    """One track's voice activity: a speech probability per 512-sample window fed so far."""

    def feed(self, pcm: bytes) -> list[float]: ...


@dataclass
class TrackSegmenter:
    """Cuts one track (16 kHz PCM in) into utterances with a VAD stream (one probability per
    512-sample window): speech opens after ``start_ms``, closes after ``end_silence_ms``."""

    speaker: str
    vad: VadStream
    threshold: float = 0.5
    start_ms: int = 96
    end_silence_ms: int = 700
    max_ms: int = 20_000
    _t_ms: int = 0
    _speech_ms: int = 0
    _silence_ms: int = 0
    _open_at: int | None = None
    _buffer: list[bytes] = field(default_factory=list)

    def feed(self, pcm16k: bytes) -> list[Utterance]:
        """Feed audio; returns the utterances that ended in it."""
        done: list[Utterance] = []
        self._buffer.append(pcm16k)
        for prob in self.vad.feed(pcm16k):
            self._t_ms += 32
            if prob >= self.threshold:
                self._speech_ms += 32
                self._silence_ms = 0
                if self._open_at is None and self._speech_ms >= self.start_ms:
                    self._open_at = self._t_ms - self._speech_ms
            else:
                self._silence_ms += 32
                if self._open_at is None:
                    self._speech_ms = 0
            if self._open_at is not None and (self._silence_ms >= self.end_silence_ms or
                                              self._t_ms - self._open_at >= self.max_ms):
                done.append(self._close())
        if self._open_at is None and self._speech_ms == 0 and len(self._buffer) > 10:
            del self._buffer[:-10]  # 200 ms of pre-roll, so first syllables are kept
        return done

    def flush(self) -> list[Utterance]:
        return [self._close()] if self._open_at is not None else []

    def _close(self) -> Utterance:
        audio = np.frombuffer(b"".join(self._buffer), dtype=np.int16).astype(np.float32) / 32768
        utterance = Utterance(self.speaker, self._open_at or 0, self._t_ms - self._silence_ms,
                              audio)
        self._open_at, self._speech_ms, self._silence_ms, self._buffer = None, 0, 0, []
        return utterance
