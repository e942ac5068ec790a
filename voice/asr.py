"""Speech recognition with faster-whisper, tuned for short telephone turns.

Whisper encodes a fixed 30 s window, which costs ~0.5 s on two CPU cores even for a two-second
question. CTranslate2 accepts a shorter mel window, so a caller turn is encoded in a window
just long enough for it (``window_s``, rounded up to whole seconds, at least ``min_window_s``):
about 0.1 s instead of 0.5 s for a typical turn. Turns longer than the largest window fall back
to faster-whisper's own ``transcribe`` with the 30 s windows it was trained on.

On the short path the beam search also returns its other finished hypotheses
(``Transcript.alternatives``, at most ``hypotheses`` of them, each with its length-normalised
log-probability): the intent classifier weighs them all (:meth:`nlu.IntentClassifier.predict_heard`),
so a word the best hypothesis garbled can still be heard in the next one, and hypotheses that
disagree lower the confidence instead of leaving it at the best one's.

One ``WhisperTranscriber`` is loaded per process and shared by every call; ``transcribe`` is
thread-safe and blocking, so callers run it in an executor.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from voice.asr_models import ModelNotFoundError, resolve_asr_model

__all__ = ["Hypothesis", "ModelNotFoundError", "Transcript", "TimedWord", "WhisperTranscriber"]

log = logging.getLogger("iva.asr")

SAMPLE_RATE = 16_000
_FRAMES_PER_SECOND = 100  # whisper mel frames per second of audio
_TOKENS_PER_SECOND = 4.5  # upper bound on telephone speech rate, in tokens; stops loops early


class Hypothesis(NamedTuple):
    """One of the beam's transcripts, and its log-probability per token (0 is certain): the
    ``(text, score)`` pairs :meth:`nlu.IntentClassifier.predict_heard` takes."""

    text: str
    score: float


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    audio_s: float
    compute_s: float
    no_speech_prob: float = 0.0
    # The beam's hypotheses, best first (the first is ``text``); empty when only one was asked for.
    alternatives: tuple[Hypothesis, ...] = ()


@dataclass(frozen=True, slots=True)
class TimedWord:
    text: str
    start_s: float
    end_s: float


class WhisperTranscriber:
    """Shared faster-whisper model with a short-window fast path for telephone turns."""

    def __init__(
        self,
        model: str | None = None,
        *,
        threads: int = 2,
        beam_size: int = 1,
        hypotheses: int = 1,
        language: str = "en",
        min_window_s: float = 10.0,
        max_window_s: float = 20.0,
        vocabulary: str = "",
        data_dir: Path | str = "var",
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        model_ref = resolve_asr_model(model, data_dir=data_dir)
        started = time.perf_counter()
        try:
            self._model = WhisperModel(
                model_ref, device="cpu", compute_type="int8", cpu_threads=threads,
                local_files_only=True,
            )
        except Exception as exc:
            raise ModelNotFoundError(
                f"could not load the ASR model {model_ref!r} ({exc}); set IVA_ASR_MODEL to a "
                "faster-whisper model directory (nothing is downloaded at run time)"
            ) from exc
        multilingual = self._model.model.is_multilingual
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, multilingual, task="transcribe",
            language=language if multilingual else "en",
        )
        self._vocabulary = vocabulary.strip()
        self._prompts: dict[str, list[int]] = {}
        self._prompt = self._prompt_for("")
        self._beam_size = beam_size
        self._hypotheses = max(1, min(hypotheses, beam_size))  # the beam holds no more
        self._language = language
        self._min_window_s = min_window_s
        self._max_window_s = max_window_s
        self._lock = threading.Lock()
        log.info("ASR model %s loaded in %.2f s", model_ref, time.perf_counter() - started)

    @classmethod
    def from_settings(cls, settings: Any) -> WhisperTranscriber:
        """The recogniser a :class:`voice.settings.Settings` describes (model, threads, beam,
        hypotheses, language, window, vocabulary)."""
        return cls(settings.asr_model, threads=settings.asr_threads,
                   beam_size=settings.asr_beam_size, hypotheses=settings.asr_hypotheses,
                   language=settings.asr_language, min_window_s=settings.asr_window_s,
                   vocabulary=settings.asr_vocabulary, data_dir=settings.data_dir)

    def _prompt_for(self, hint: str) -> list[int]:
        """The decoder prompt: Whisper's "previous text" slot primes it with the words callers
        will use (the vocabulary) and with what the assistant has just asked for (``hint``,
        e.g. "My order number is 1001." so spoken digits come out as digits)."""
        prompt = self._prompts.get(hint)
        if prompt is None:
            prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
            previous = " ".join(p for p in (self._vocabulary, hint.strip()) if p)
            if previous:
                tokens = self._tokenizer.encode(" " + previous)[-120:]
                prompt = [self._tokenizer.sot_prev, *tokens, *prompt]
            self._prompts[hint] = prompt
        return prompt

    def transcribe(self, audio: np.ndarray, *, window_s: float | None = None,
                   hint: str = "") -> Transcript:
        """Transcribe float32 mono audio at 16 kHz (values in [-1, 1]). ``window_s`` overrides
        the shortest window, e.g. a quick look at half a second of speech; ``hint`` is text the
        caller is likely to say now (see :meth:`_prompt_for`)."""
        audio = np.asarray(audio, dtype=np.float32)
        audio_s = len(audio) / SAMPLE_RATE
        started = time.perf_counter()
        if audio_s < 0.1:
            return Transcript("", audio_s, 0.0)
        with self._lock:
            if audio_s + 1.0 <= self._max_window_s:
                heard, no_speech = self._transcribe_short(audio, audio_s, window_s,
                                                          self._prompt_for(hint))
            else:
                heard, no_speech = [(self._transcribe_long(audio), 0.0)], 0.0
        alternatives = tuple(Hypothesis(_clean(text), score) for text, score in heard)
        return Transcript(alternatives[0].text, audio_s, time.perf_counter() - started, no_speech,
                          alternatives if len(alternatives) > 1 else ())

    def words(self, audio: np.ndarray) -> list[TimedWord]:
        """The words of ``audio`` (float32 16 kHz) with their start and end in seconds: the
        full decoder with word timestamps, for redacting recordings after a call.

        One greedy pass at temperature 0: faster-whisper's default falls back to sampling at
        five more temperatures when a segment looks repetitive, and a card number read out
        ("one one one one ...") always does, which took 26 s for 5 s of audio while holding
        the lock every call's turns wait for. The words only place the silences over what the
        turn's own transcript already redacted, so the first pass is enough."""
        audio = np.asarray(audio, dtype=np.float32)
        if len(audio) < SAMPLE_RATE // 10:
            return []
        with self._lock:
            segments, _info = self._model.transcribe(
                audio, language=self._language if self._model.model.is_multilingual else None,
                beam_size=1, temperature=0.0, word_timestamps=True,
                condition_on_previous_text=False, vad_filter=False,
                # a decoding loop ("41, 41, 41, ...") stops where speech that long would
                max_new_tokens=int(min(len(audio) / SAMPLE_RATE, 30.0) * 2 * _TOKENS_PER_SECOND) + 16,
            )
            return [TimedWord(w.word, float(w.start), float(w.end))
                    for segment in segments for w in (segment.words or [])]

    def _transcribe_short(self, audio: np.ndarray, audio_s: float, min_window_s: float | None,
                          prompt: list[int]) -> tuple[list[tuple[str, float]], float]:
        """The beam's hypotheses (text, log-probability per token), best first, and the
        probability that the window holds no speech."""
        import ctranslate2

        window_s = max(min_window_s or self._min_window_s, float(math.ceil(audio_s + 1.0)))
        n_samples = int(window_s * SAMPLE_RATE)
        padded = np.zeros(n_samples, dtype=np.float32)
        padded[: len(audio)] = audio[:n_samples]
        n_frames = int(window_s * _FRAMES_PER_SECOND)
        features = self._model.feature_extractor(padded)[:, :n_frames]
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
            to_cpu=False,
        )
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=self._beam_size,
            max_length=len(prompt) + int(audio_s * _TOKENS_PER_SECOND) + 8,
            no_repeat_ngram_size=3,
            repetition_penalty=1.1,
            return_no_speech_prob=True,
            suppress_blank=True,
            num_hypotheses=self._hypotheses,
            return_scores=self._hypotheses > 1,
        )[0]
        scores = result.scores or [0.0]
        heard = [(self._tokenizer.decode([t for t in ids if t < self._tokenizer.eot]), float(score))
                 for ids, score in zip(result.sequences_ids, scores, strict=False)]
        return heard, float(result.no_speech_prob)

    def _transcribe_long(self, audio: np.ndarray) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language=self._language if self._model.model.is_multilingual else None,
            beam_size=self._beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(segment.text for segment in segments)


def _clean(text: str) -> str:
    """Whisper's habits on short windows: bracketed sound tags, and a sentence said twice."""
    words = [w for w in text.replace("\n", " ").split()
             if not (w.startswith(("[", "(")) and w.endswith(("]", ")")))]
    text = " ".join(words).strip()
    kept: list[str] = []
    for sentence in (s for s in _SENTENCES.split(text) if s):
        if any(_similar(sentence, earlier) for earlier in kept):
            break  # a decoding loop: the rest repeats what was already said
        kept.append(sentence)
    return " ".join(kept)


_SENTENCES = re.compile(r"(?<=[.?!])\s+")


def _similar(a: str, b: str) -> bool:
    wa, wb = set(re.findall(r"[a-z']+", a.lower())), set(re.findall(r"[a-z']+", b.lower()))
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= 0.4
