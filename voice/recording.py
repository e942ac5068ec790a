"""Call recordings: one stereo WAV per call, caller on the left, assistant (and agent) on the
right, on the same clock as the transcript's ``start_ms``/``end_ms``.

Two taps in the pipeline feed a :class:`CallRecording`: one right after the bridge's input (the
caller's audio, placed by media time: the number of samples received so far) and one right
before its output (the assistant's audio, placed when it is sent: a reply that follows straight
on from the previous chunk continues it; one after a gap starts at the current time; a barge-in
cuts whatever had been queued but not yet played). At the end of the call, the words the
redactor removed from the transcript are silenced in the audio too, and the WAV is written.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from telephony.audio import Resampler, resample

__all__ = ["RECORDING_RATE", "CallRecording", "CallerAudioTap", "AssistantAudioTap"]

log = logging.getLogger("iva.recording")

RECORDING_RATE = 8000  # phone quality; the caller's audio never had more


class CallRecording:
    """Two tracks of int16 samples at 8 kHz, growing as the call goes."""

    def __init__(self, now_ms: Callable[[], int], *, max_seconds: int = 4 * 3600) -> None:
        self._now_ms = now_ms
        self._max = max_seconds * RECORDING_RATE
        self.caller = np.zeros(0, dtype=np.int16)
        self.assistant = np.zeros(0, dtype=np.int16)
        self._caller_len = 0
        self._assistant_end = 0  # where the next assistant chunk goes, in samples
        # Streaming resamplers, one per track and input rate: a one-shot resample of each
        # 20 ms frame would click at every seam and redo the filter set-up 50 times a second.
        self._resamplers: dict[tuple[str, int], Resampler] = {}

    def _at_rate(self, track: str, pcm: bytes, sample_rate: int) -> np.ndarray:
        if sample_rate != RECORDING_RATE:
            key = (track, sample_rate)
            if key not in self._resamplers:
                self._resamplers[key] = Resampler(sample_rate, RECORDING_RATE)
            pcm = self._resamplers[key].process(pcm)
        return np.frombuffer(pcm, dtype=np.int16)

    def _grow(self, track: np.ndarray, size: int) -> np.ndarray:
        if size <= len(track):
            return track
        bigger = np.zeros(max(size, len(track) * 2, RECORDING_RATE * 10), dtype=np.int16)
        bigger[: len(track)] = track
        return bigger

    def add_caller(self, pcm: bytes, sample_rate: int) -> None:
        samples = self._at_rate("caller", pcm, sample_rate)
        end = min(self._caller_len + len(samples), self._max)
        self.caller = self._grow(self.caller, end)
        self.caller[self._caller_len:end] = samples[: end - self._caller_len]
        self._caller_len = end

    def add_assistant(self, pcm: bytes, sample_rate: int) -> None:
        samples = self._at_rate("assistant", pcm, sample_rate)
        now = self._now_ms() * RECORDING_RATE // 1000
        start = max(now, self._assistant_end)
        end = min(start + len(samples), self._max)
        if end <= start:
            return
        self.assistant = self._grow(self.assistant, end)
        self.assistant[start:end] = samples[: end - start]
        self._assistant_end = end

    def cut_assistant(self) -> None:
        """A barge-in: what was queued after now was never played."""
        now = self._now_ms() * RECORDING_RATE // 1000
        if self._assistant_end > now:
            self.assistant[now:self._assistant_end] = 0
            self._assistant_end = now

    def silence_caller(self, intervals_s: Iterable[tuple[float, float]], *,
                       pad_s: float = 0.05) -> None:
        """Silence the caller's track over these intervals (seconds from the call's start)."""
        for start, end in intervals_s:
            a = max(0, int((start - pad_s) * RECORDING_RATE))
            b = min(self._caller_len, int((end + pad_s) * RECORDING_RATE))
            if b > a:
                self.caller[a:b] = 0

    def caller_audio(self, start_ms: int, end_ms: int) -> np.ndarray:
        """The caller's audio between two transcript times, as float32 at 16 kHz (for the ASR)."""
        a, b = start_ms * RECORDING_RATE // 1000, end_ms * RECORDING_RATE // 1000
        pcm = self.caller[max(0, a):max(0, min(b, self._caller_len))].tobytes()
        return np.frombuffer(resample(pcm, RECORDING_RATE, 16000),
                             dtype=np.int16).astype(np.float32) / 32768

    def write(self, path: Path) -> Path:
        """The stereo WAV (caller left, assistant right); returns ``path``."""
        length = max(self._caller_len, self._assistant_end)
        stereo = np.zeros((length, 2), dtype=np.int16)
        stereo[: self._caller_len, 0] = self.caller[: self._caller_len]
        stereo[: self._assistant_end, 1] = self.assistant[: self._assistant_end]
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with wave.open(str(partial), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(RECORDING_RATE)
            out.writeframes(stereo.tobytes())
        partial.replace(path)
        return path


class CallerAudioTap(FrameProcessor):
    """Right after the bridge's input: copies the caller's audio into the recording."""

    def __init__(self, recording: CallRecording, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._recording = recording

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._recording.add_caller(frame.audio, frame.sample_rate)
        await self.push_frame(frame, direction)


class AssistantAudioTap(FrameProcessor):
    """Right before the bridge's output: copies what the caller will hear into the recording."""

    def __init__(self, recording: CallRecording, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._recording = recording

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            self._recording.add_assistant(frame.audio, frame.sample_rate)
        elif isinstance(frame, InterruptionFrame):
            self._recording.cut_assistant()
        await self.push_frame(frame, direction)
