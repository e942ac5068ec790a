"""Voice activity and end-of-turn models: Silero VAD and smart-turn v3, both ONNX files that ship
inside pipecat, loaded once per process.

The ONNX sessions are shared; each call gets its own ``SileroStream`` (the recurrent state and
the audio context of one caller). Both models are small enough to run inline: Silero takes
~0.1 ms per 32 ms window, smart-turn ~15-40 ms per decision on two cores.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

log = logging.getLogger("iva.vad")

SAMPLE_RATE = 16_000
WINDOW = 512  # Silero's window at 16 kHz: 32 ms
_CONTEXT = 64  # samples of the previous window Silero expects in front of each window


def _pipecat_model(package: str, name: str) -> Path:
    return Path(str(resources.files(package).joinpath(name)))


def _session(path: Path, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class SileroModel:
    """The shared Silero VAD session."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or _pipecat_model("pipecat.audio.vad.data", "silero_vad.onnx")
        self.session = _session(self.path)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def stream(self) -> SileroStream:
        return SileroStream(self)

    def run(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        prob, new_state = self.session.run(
            None, {"input": window[None, :], "state": state, "sr": self._sr}
        )
        return float(np.asarray(prob).reshape(-1)[0]), np.asarray(new_state)


class SileroStream:
    """One caller's VAD: feed 16 kHz PCM16 bytes, get one speech probability per 32 ms."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, pcm16: bytes) -> list[float]:
        samples = np.frombuffer(pcm16, dtype=np.int16).astype(np.float32) / 32768.0
        self._pending = np.concatenate((self._pending, samples))
        probs: list[float] = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            x = np.concatenate((self._context, window))
            prob, self._state = self._model.run(x, self._state)
            self._context = x[-_CONTEXT:]
            probs.append(prob)
        return probs


class SmartTurnModel:
    """pipecat's bundled smart-turn v3 end-of-turn model: P(the caller has finished)."""

    MAX_SECONDS = 8

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        from pipecat.audio.turn.smart_turn._whisper_features import (
            compute_whisper_log_mel_features,
        )

        self._features = compute_whisper_log_mel_features
        self.path = path or _pipecat_model(
            "pipecat.audio.turn.smart_turn.data", "smart-turn-v3.2-cpu.onnx"
        )
        self.session = _session(self.path, threads)

    def completion_probability(self, audio: np.ndarray) -> float:
        """``audio``: float32 16 kHz, the turn so far (the last 8 s are used)."""
        n = self.MAX_SECONDS * SAMPLE_RATE
        audio = np.asarray(audio, dtype=np.float32)[-n:]
        if len(audio) < n:
            audio = np.pad(audio, (n - len(audio), 0))
        features = self._features(audio, do_normalize=True)[None]
        (out,) = self.session.run(None, {"input_features": features.astype(np.float32)})[:1]
        return float(np.asarray(out).reshape(-1)[0])
