"""How the caller's voice changes over a call: loudness, pitch and speaking rate, from PCM frames.

:class:`VoiceTracker` is fed the caller's audio while they speak — 16 kHz, 16-bit mono PCM in
20 ms frames, between :meth:`~VoiceTracker.speech_started` and
:meth:`~VoiceTracker.speech_stopped` — and reports each turn as :class:`VoiceFeatures`: the
change against the caller's own first ~3 s of speech in the call (their baseline), so a naturally
loud or high voice reads as calm and only a change counts.

Per 20 ms frame it measures the RMS level (dBFS) and the pitch: YIN (de Cheveigné & Kawahara
2002) without its refinements, on a 40 ms window (the frame and the one before it), over lags
for 70–400 Hz; a frame is voiced when the cumulative-mean-normalised difference dips below
0.2. Per turn:

- ``energy_change_db``: level of the turn's louder frames (within 20 dB of its 95th
  percentile; pauses do not count) minus the baseline's, in dB;
- ``pitch_change_semitones``: median pitch of the voiced frames against the baseline's;
- ``rate_change_ratio``: speaking rate over the baseline's — words per second of speech when the
  recogniser's word count is given for both, otherwise syllable nuclei per second (peaks of the
  10 ms energy envelope, voiced, within 25 dB of the loudest, with a dip of at least 2 dB from
  the previous peak; after de Jong & Wempe 2009).

``arousal`` folds the rises into [0, 1] (:func:`arousal_of`); a quieter, lower or slower voice
gives 0. The work is done in numpy batches of up to half a second, so feeding a frame costs a
buffer append; one core processes audio hundreds of times faster than real time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FRAME_SAMPLES", "SAMPLE_RATE", "VoiceFeatures", "VoiceTracker", "arousal_of"]

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 320  # 20 ms
_HOP = 160  # the syllable envelope's 10 ms step
_MIN_HZ, _MAX_HZ = 70.0, 400.0
_TAU_MIN = int(SAMPLE_RATE / _MAX_HZ)  # 40 samples
_TAU_MAX = int(math.ceil(SAMPLE_RATE / _MIN_HZ))  # 229 samples
_WINDOW = 2 * FRAME_SAMPLES  # 40 ms analysed per frame
_INTEGRATION = _WINDOW - _TAU_MAX  # YIN's integration window (411 samples, ~26 ms)
_FFT = 1024  # ≥ _WINDOW + _INTEGRATION - 1 would alias; lags ≤ _TAU_MAX never wrap at 1024
_YIN_THRESHOLD = 0.2
_SILENCE_DB = -60.0  # frames quieter than this are not analysed for pitch
_BATCH_FRAMES = 25  # analyse every half second of pending audio
_MIN_VOICED = 5  # voiced frames needed before a pitch is reported
_DIP_DB = 2.0


def arousal_of(energy_change_db: float, pitch_change_semitones: float,
               rate_change_ratio: float) -> float:
    """Vocal arousal in [0, 1] from the three changes against the caller's baseline.

    Each rise is scaled to a z-like unit beyond a small dead zone (measurement noise): 4 dB of
    loudness, 2 semitones of pitch, a 25 % faster rate (counted half, the noisiest of the
    three); the sum goes through ``tanh(x / 2.5)``. Louder by 6 dB and higher by 3 semitones
    gives about 0.8; drops give nothing.
    """
    louder = max(0.0, energy_change_db - 1.0) / 4.0
    higher = max(0.0, pitch_change_semitones - 0.5) / 2.0
    faster = max(0.0, math.log(max(rate_change_ratio, 1e-3)) - math.log(1.05)) / math.log(1.25)
    return math.tanh((louder + higher + 0.5 * faster) / 2.5)


@dataclass(frozen=True, slots=True)
class VoiceFeatures:
    """One turn's voice against the caller's baseline (neutral values: 0 dB, 0 st, ratio 1)."""

    energy_change_db: float = 0.0
    pitch_change_semitones: float = 0.0
    rate_change_ratio: float = 1.0
    speech_seconds: float = 0.0
    level_db: float | None = None  # the turn's own level (dBFS), pitch (Hz) and rate (per s)
    pitch_hz: float | None = None
    rate: float | None = None
    against_baseline: bool = False  # False while the turn is itself (part of) the baseline

    @property
    def arousal(self) -> float:
        return arousal_of(self.energy_change_db, self.pitch_change_semitones,
                          self.rate_change_ratio)

    def describe(self) -> str:
        """What changed, in words: "louder and higher", "faster" or ""."""
        changes = [word for word, present in (
            ("louder", self.energy_change_db >= 3.0),
            ("higher", self.pitch_change_semitones >= 1.5),
            ("faster", self.rate_change_ratio >= 1.2)) if present]
        return " and ".join(changes) if len(changes) < 3 else "louder, higher and faster"


def _yin(windows: np.ndarray) -> np.ndarray:
    """Pitch in Hz of each 40 ms window (rows), NaN where unvoiced."""
    spectrum = np.fft.rfft(windows, _FFT)
    head = np.fft.rfft(windows[:, :_INTEGRATION], _FFT)
    corr = np.fft.irfft(np.conj(head) * spectrum, _FFT)[:, :_TAU_MAX + 1]
    energy = np.concatenate([np.zeros((len(windows), 1)), np.cumsum(windows ** 2, axis=1)], axis=1)
    lags = np.arange(_TAU_MAX + 1)
    sliding = energy[:, lags + _INTEGRATION] - energy[:, lags]  # Σ x² over each lagged window
    diff = np.maximum(sliding[:, :1] + sliding - 2.0 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running, 1e-12)
    inner = cmnd[:, _TAU_MIN:_TAU_MAX]
    dips = ((inner < _YIN_THRESHOLD) & (inner <= cmnd[:, _TAU_MIN - 1:_TAU_MAX - 1])
            & (inner <= cmnd[:, _TAU_MIN + 1:_TAU_MAX + 1]))
    voiced = dips.any(axis=1)
    tau = dips.argmax(axis=1) + _TAU_MIN
    rows = np.arange(len(windows))
    a, b, c = cmnd[rows, tau - 1], cmnd[rows, tau], cmnd[rows, tau + 1]
    bend = a - 2 * b + c
    shift = np.where(bend > 1e-9, 0.5 * (a - c) / np.where(bend > 1e-9, bend, 1.0), 0.0)
    f0 = SAMPLE_RATE / (tau + np.clip(shift, -1.0, 1.0))
    return np.where(voiced & (f0 >= _MIN_HZ) & (f0 <= _MAX_HZ), f0, np.nan)


def _nuclei(envelope: np.ndarray, voiced: np.ndarray) -> int:
    """Syllable nuclei in a 10 ms envelope (dB): voiced peaks separated by ≥ 2 dB dips."""
    if len(envelope) < 3:
        return 0
    smooth = np.convolve(envelope, np.full(3, 1 / 3), mode="same")
    smooth[0], smooth[-1] = envelope[0], envelope[-1]
    floor = max(float(np.percentile(smooth, 99)) - 25.0, _SILENCE_DB)
    peaks = np.flatnonzero((smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:])) + 1
    peaks = peaks[(smooth[peaks] >= floor) & voiced[peaks]]
    count, last = 0, -1
    for p in peaks.tolist():
        if last < 0:
            count, last = 1, p
        elif smooth[p] - smooth[last:p + 1].min() >= _DIP_DB:
            count, last = count + 1, p
        elif smooth[p] > smooth[last]:
            last = p  # the same syllable, louder here
    return count


@dataclass(slots=True)
class _Speech:
    """Frame measurements of some stretch of speech (a turn, or the baseline)."""

    level_db: list[np.ndarray] = field(default_factory=list)
    f0: list[np.ndarray] = field(default_factory=list)
    syllables: int = 0
    seconds: float = 0.0
    words: int = 0
    word_seconds: float = 0.0  # seconds of the turns whose word count is known

    def add(self, other: _Speech) -> None:
        self.level_db += other.level_db
        self.f0 += other.f0
        self.syllables += other.syllables
        self.seconds += other.seconds
        self.words += other.words
        self.word_seconds += other.word_seconds

    def level(self) -> float | None:
        db = np.concatenate(self.level_db) if self.level_db else np.zeros(0)
        if not len(db):
            return None
        loud = db[db >= np.percentile(db, 95) - 20.0]
        return float(10 * np.log10(np.mean(10 ** (loud / 10))))

    def pitch(self) -> float | None:
        f0 = np.concatenate(self.f0) if self.f0 else np.zeros(0)
        return float(np.median(f0)) if len(f0) >= _MIN_VOICED else None

    def rates(self) -> tuple[float | None, float | None]:
        """(words per second, syllables per second), None where unknown."""
        words = self.words / self.word_seconds if self.word_seconds > 0 and self.words else None
        syllables = self.syllables / self.seconds if self.seconds > 0 and self.syllables else None
        return words, syllables


class VoiceTracker:
    """Per-call voice measurement; see the module docstring. Not thread-safe (one per call)."""

    def __init__(self, *, baseline_seconds: float = 3.0) -> None:
        self.baseline_seconds = baseline_seconds
        self._baseline = _Speech()
        self._turn = _Speech()
        self._in_segment = False
        self._pending = bytearray()
        self._context = np.zeros(FRAME_SAMPLES, dtype=np.float32)  # the frame before
        self._envelope: list[np.ndarray] = []  # the open segment's 10 ms levels and voicing
        self._voicing: list[np.ndarray] = []

    @property
    def baseline_ready(self) -> bool:
        """Whether the caller's first ~3 s of speech have been measured."""
        return self._baseline.seconds >= self.baseline_seconds

    @property
    def has_audio(self) -> bool:
        """Whether the turn in progress has any caller audio yet."""
        return bool(self._turn.seconds or self._pending or self._envelope)

    def speech_started(self) -> None:
        """The caller started a speech segment (VAD onset)."""
        if self._in_segment:
            self.speech_stopped()
        self._in_segment = True
        self._context = np.zeros(FRAME_SAMPLES, dtype=np.float32)

    def feed(self, frame: bytes) -> None:
        """Caller audio inside a speech segment: 16 kHz int16 mono PCM (any length, 20 ms
        usual). Audio outside a segment is ignored."""
        if not self._in_segment:
            return
        self._pending += frame
        if len(self._pending) >= _BATCH_FRAMES * FRAME_SAMPLES * 2:
            self._analyse()

    def speech_stopped(self) -> None:
        """The speech segment ended (VAD offset): its syllables are counted."""
        if not self._in_segment:
            return
        self._analyse()
        self._pending.clear()  # a partial frame at the end is dropped
        self._turn.syllables += self._segment_syllables()
        self._envelope, self._voicing = [], []
        self._in_segment = False

    def live(self, *, words: int | None = None) -> VoiceFeatures:
        """The turn so far, while the caller is still speaking."""
        self._analyse()
        turn = _Speech()
        turn.add(self._turn)
        turn.syllables += self._segment_syllables()
        if words is not None:
            turn.words, turn.word_seconds = words, turn.seconds
        return self._compare(turn)

    def end_turn(self, *, words: int | None = None) -> VoiceFeatures:
        """Close the caller's turn (``words``: the transcript's word count, if known) and
        return its features; the first ~3 s of a call's speech become the baseline."""
        self.speech_stopped()
        turn, self._turn = self._turn, _Speech()
        if words is not None:
            turn.words, turn.word_seconds = words, turn.seconds
        features = self._compare(turn)
        if not self.baseline_ready and turn.seconds > 0:
            self._baseline.add(turn)
        return features

    # --- internals -------------------------------------------------------------------------

    def _analyse(self) -> None:
        usable = len(self._pending) // (FRAME_SAMPLES * 2) * FRAME_SAMPLES
        if not usable:
            return
        samples = np.frombuffer(bytes(self._pending[:usable * 2]), dtype="<i2")
        del self._pending[:usable * 2]
        x = samples.astype(np.float32) / 32768.0
        frames = x.reshape(-1, FRAME_SAMPLES)
        level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
        context = np.concatenate([self._context, x])
        self._context = x[-FRAME_SAMPLES:]
        windows = np.lib.stride_tricks.sliding_window_view(context, _WINDOW)[::FRAME_SAMPLES]
        f0 = np.full(len(frames), np.nan)
        loud = level > _SILENCE_DB
        if loud.any():
            f0[loud] = _yin(windows[loud].astype(np.float64))
        hop = 10 * np.log10(np.mean(x.reshape(-1, _HOP).astype(np.float64) ** 2, axis=1) + 1e-12)
        self._envelope.append(hop)
        self._voicing.append(np.repeat(~np.isnan(f0), FRAME_SAMPLES // _HOP))
        self._turn.level_db.append(level)
        self._turn.f0.append(f0[~np.isnan(f0)])
        self._turn.seconds += len(frames) * FRAME_SAMPLES / SAMPLE_RATE

    def _segment_syllables(self) -> int:
        if not self._envelope:
            return 0
        return _nuclei(np.concatenate(self._envelope), np.concatenate(self._voicing))

    def _compare(self, turn: _Speech) -> VoiceFeatures:
        against = self._baseline.seconds > 0
        reference = self._baseline if against else turn  # the first turn is its own reference
        level, base_level = turn.level(), reference.level()
        pitch, base_pitch = turn.pitch(), reference.pitch()
        (words, syllables), (base_words, base_syllables) = turn.rates(), reference.rates()
        if words and base_words:
            rate, ratio = words, words / base_words
        elif syllables and base_syllables:
            rate, ratio = syllables, syllables / base_syllables
        else:
            rate, ratio = words or syllables, 1.0
        return VoiceFeatures(
            energy_change_db=level - base_level if level is not None and base_level is not None
            else 0.0,
            pitch_change_semitones=12 * math.log2(pitch / base_pitch) if pitch and base_pitch
            else 0.0,
            rate_change_ratio=float(np.clip(ratio, 0.25, 4.0)),
            speech_seconds=turn.seconds, level_db=level, pitch_hz=pitch, rate=rate,
            against_baseline=against,
        )
