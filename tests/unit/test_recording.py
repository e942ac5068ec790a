"""Call recordings: caller and assistant tracks on the transcript's clock, barge-in cuts,
silenced intervals, the stereo WAV."""

import wave

import numpy as np
import pytest

from voice.recording import RECORDING_RATE, CallRecording

pytestmark = pytest.mark.unit


def tone(seconds: float, rate: int = 8000, level: int = 8000) -> bytes:
    return np.full(int(seconds * rate), level, dtype=np.int16).tobytes()


class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def test_tracks_line_up_with_the_call_clock_and_write_as_stereo(tmp_path):
    clock = Clock()
    recording = CallRecording(clock)
    recording.add_caller(tone(2.0, 16000), 16000)  # 0-2 s caller (16 kHz in)
    clock.ms = 2500
    recording.add_assistant(tone(0.5), 8000)  # 2.5-3.0 s
    recording.add_assistant(tone(0.5), 8000)  # straight on: 3.0-3.5 s
    path = recording.write(tmp_path / "CA1.wav")
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2)
    assert len(frames) == int(3.5 * RECORDING_RATE)
    caller, assistant = frames[:, 0], frames[:, 1]
    assert caller[200: 2 * 8000 - 200].min() > 5000 and caller[2 * 8000:].max() == 0
    assert assistant[: 2500 * 8].max() == 0 and assistant[2500 * 8:].min() > 7000


def test_a_barge_in_cuts_what_was_queued_but_not_played():
    clock = Clock()
    recording = CallRecording(clock)
    recording.add_assistant(tone(3.0), 8000)  # queued 0-3 s at once
    clock.ms = 1000
    recording.cut_assistant()
    assert recording.assistant[:8000].min() > 0 and recording.assistant[8000:24000].max() == 0
    recording.add_assistant(tone(0.5), 8000)  # the next answer starts now
    assert recording.assistant[8000:12000].min() > 0


def test_silenced_intervals_are_zero_and_the_rest_untouched():
    recording = CallRecording(Clock())
    recording.add_caller(tone(3.0), 8000)
    recording.silence_caller([(1.0, 1.5)], pad_s=0.0)
    track = recording.caller[: 3 * 8000]
    assert track[8000:12000].max() == 0
    assert track[:8000].min() > 0 and track[12000:].min() > 0


def test_caller_audio_between_transcript_times_is_float_at_16k():
    recording = CallRecording(Clock())
    recording.add_caller(tone(2.0), 8000)
    audio = recording.caller_audio(500, 1500)
    assert audio.dtype == np.float32 and abs(len(audio) - 16000) < 50


def test_frame_by_frame_caller_audio_has_no_seams():
    """20 ms frames at 16 kHz resampled as one stream: a clean sine stays clean at every seam."""
    recording = CallRecording(Clock())
    t = np.arange(16000) / 16000
    sine = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16).tobytes()
    for i in range(0, len(sine), 640):
        recording.add_caller(sine[i:i + 640], 16000)
    track = recording.caller[800:7000].astype(np.float64)
    # Sample-to-sample steps of a 440 Hz sine at 8 kHz stay below 2*pi*440/8000*10000 ≈ 3456.
    assert np.abs(np.diff(track)).max() < 3700
