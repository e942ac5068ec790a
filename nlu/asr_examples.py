"""The training lines as the recogniser hears them: ``nlu/data/intents_train_asr.jsonl``.

Callers reach the classifier through the telephone band and Whisper, which hears "plus" as
"last" or "class" and "track my package" as "drag my package". A model trained on written
lines alone has never seen such slips. This module speaks every line of ``intents_train.jsonl`` with
training voices, sends the audio down the same 8 kHz μ-law line as ``iva eval nlu --speech``
(:func:`nlu.report.over_phone_line`), cuts it as the service's listening would
(:func:`nlu.report.service_segmenter`), transcribes it with the service's recogniser and settings
(no slot hint: an intent turn answers no question), and writes each new transcript with the
line's gold intent. :meth:`nlu.classifier.IntentClassifier.default` trains on both files.

The evaluation stays honest: the training voices are piper's joe (the assistant's own voice,
which the evaluation never uses) and festival's kal and ked diphone voices, each at two
speeds; the evaluation voices, espeak-ng and flite, are refused. Held-out lines are read only to drop a transcript
that happens to equal one, as the held-out rule in ``nlu/data/README.md`` requires.

    python -m nlu.asr_examples [--voices piper,festival-ked,...] [--extend]
                               [--limit N] [--out FILE]

Every voice takes 10 to 15 minutes for the 1,261 training lines on a busy 2-core machine.

Whisper decodes greedily, but piper draws its own noise, so a new run gives a similar file,
not the same one. Errors: :class:`TrainingVoiceError` (a voice that cannot speak).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from nlu.classifier import (
    ASR_TRAIN_FILE,
    EVAL_FILE,
    TRAIN_FILE,
    Example,
    load_examples,
    normalize_utterance,
)

__all__ = [
    "EVAL_VOICES", "TRAINING_VOICES", "FestivalSpeaker", "HeardExample", "PiperSpeaker",
    "Speaker", "TrainingVoiceError", "heard_examples", "main", "new_words",
    "read_heard_examples", "write_heard_examples",
]

log = logging.getLogger(__name__)

EVAL_VOICES: Final = frozenset({"espeak", "espeak-ng", "flite"})  # never for training


class TrainingVoiceError(RuntimeError):
    """A training voice is not installed, is an evaluation voice, or failed to speak."""


class Speaker(Protocol):
    """A voice: 16-bit mono PCM and its sample rate for one utterance."""

    def speak(self, text: str) -> tuple[bytes, int]: ...


class PiperSpeaker:
    """The assistant's piper voice; ``length_scale`` above 1 is slower, ``noise_scale`` and
    ``noise_w_scale`` vary the delivery (piper's defaults: 0.667 and 0.8)."""

    def __init__(self, *, length_scale: float = 1.0, noise_scale: float = 0.667,
                 noise_w_scale: float = 0.8) -> None:
        from piper import PiperVoice as Piper
        from piper import SynthesisConfig

        from voice.tts import default_voice

        self._voice = Piper.load(default_voice())
        self._config = SynthesisConfig(length_scale=length_scale, noise_scale=noise_scale,
                                       noise_w_scale=noise_w_scale)

    def speak(self, text: str) -> tuple[bytes, int]:
        chunks = self._voice.synthesize(text, syn_config=self._config)
        return b"".join(c.audio_int16_bytes for c in chunks), int(self._voice.config.sample_rate)


class FestivalSpeaker:
    """A festival diphone voice through ``text2wave``: ``kal`` (package festvox-kallpc16k,
    festival's default) or ``ked`` (festvox-kdlpc16k); ``stretch`` above 1 is slower
    (festival's ``Duration_Stretch``)."""

    def __init__(self, voice: str = "kal", *, stretch: float = 1.0) -> None:
        binary = shutil.which("text2wave")
        if binary is None:
            raise TrainingVoiceError("the festival voices need text2wave: apt-get install "
                                     "festival festvox-kallpc16k festvox-kdlpc16k")
        self._binary, self._voice, self._stretch = binary, voice, stretch

    def speak(self, text: str) -> tuple[bytes, int]:
        from telephony.audio import read_wav

        with tempfile.TemporaryDirectory(prefix="iva-festival-") as tmp:
            script, wav = Path(tmp) / "line.txt", Path(tmp) / "line.wav"
            script.write_text(text + "\n", encoding="utf-8")
            done = subprocess.run(
                [self._binary, "-o", str(wav), "-eval", f"(voice_{self._voice}_diphone)",
                 "-eval", f"(Parameter.set 'Duration_Stretch {self._stretch})", str(script)],
                capture_output=True, timeout=60, check=False)
            if done.returncode or not wav.exists():
                raise TrainingVoiceError(f"text2wave failed on {text!r}: "
                                         f"{done.stderr.decode(errors='replace').strip()}")
            return read_wav(wav)


TRAINING_VOICES: Final[dict[str, Callable[[], Speaker]]] = {
    "piper": PiperSpeaker,
    "piper-fast": lambda: PiperSpeaker(length_scale=0.8, noise_scale=1.0, noise_w_scale=1.0),
    "festival": FestivalSpeaker,
    "festival-fast": lambda: FestivalSpeaker(stretch=0.85),
    "festival-ked": lambda: FestivalSpeaker("ked"),
    "festival-ked-fast": lambda: FestivalSpeaker("ked", stretch=0.85),
}


@dataclass(frozen=True, slots=True)
class HeardExample:
    """A training line as one voice said it and the recogniser heard it."""

    text: str  # what the recogniser heard
    intent: str  # the gold intent of the training line
    said: str  # the training line
    voice: str

    def to_json(self) -> str:
        return json.dumps({"text": self.text, "intent": self.intent, "said": self.said,
                           "voice": self.voice})


def heard_examples(
    training: Sequence[Example], *, voices: Sequence[str], hear: Callable[[str, str], str],
    held_out: Iterable[Example] = (), earlier: Sequence[HeardExample] = (),
    progress: Callable[[int, int], None] | None = None,
) -> list[HeardExample]:
    """Each training line said by each voice and heard by ``hear(voice, text)``, after the
    ``earlier`` transcripts (of other voices), kept as :func:`new_words` says."""
    for voice in voices:
        if voice in EVAL_VOICES or voice not in TRAINING_VOICES:
            raise TrainingVoiceError(f"{voice!r} is not a training voice; choose from "
                                     f"{', '.join(TRAINING_VOICES)}")
    heard = list(earlier)
    total = len(training) * len(voices)
    for voice in voices:
        for example in training:
            heard.append(HeardExample(hear(voice, example.text).strip(), example.intent,
                                      example.text, voice))
            if progress is not None:
                progress(len(heard) - len(earlier), total)
    return new_words(heard, known=[*training, *held_out])


def new_words(heard: Iterable[HeardExample], *, known: Iterable[Example]) -> list[HeardExample]:
    """The transcripts that bring new words, first one first.

    A transcript is dropped when it is empty once normalised, equals a ``known`` line (the
    training lines and the held-out ones), or repeats an earlier transcript; one heard for
    two different intents is dropped everywhere (it teaches nothing but doubt).
    """
    seen = {normalize_utterance(e.text) for e in known}
    kept: dict[str, HeardExample] = {}
    intents_of: dict[str, set[str]] = {}
    for example in heard:
        key = normalize_utterance(example.text)
        if key and key not in seen:
            intents_of.setdefault(key, set()).add(example.intent)
            kept.setdefault(key, example)
    return [e for key, e in kept.items() if len(intents_of[key]) == 1]


def read_heard_examples(path: Path) -> list[HeardExample]:
    """The examples of a file written by :func:`write_heard_examples`."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    return [HeardExample(r["text"], r["intent"], r["said"], r["voice"]) for r in rows]


def write_heard_examples(examples: Sequence[HeardExample], path: Path) -> None:
    """Write the examples as JSON lines, replacing ``path`` in one step."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(e.to_json() + "\n" for e in examples)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the file; 0 written, 1 a voice or the recogniser could not be used."""
    parser = argparse.ArgumentParser(prog="python -m nlu.asr_examples",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", default=",".join(TRAINING_VOICES),
                        help=f"comma-separated training voices (default: all of "
                             f"{', '.join(TRAINING_VOICES)})")
    parser.add_argument("--limit", type=int, default=None, help="only the first N training lines")
    parser.add_argument("--train", type=Path, default=TRAIN_FILE)
    parser.add_argument("--out", type=Path, default=ASR_TRAIN_FILE)
    parser.add_argument("--extend", action="store_true",
                        help="keep the transcripts already in --out and add these voices' ones")
    args = parser.parse_args(argv)
    voices = [v.strip() for v in args.voices.split(",") if v.strip()]

    from nlu.report import over_phone_line, service_segmenter, service_transcriber
    from voice.settings import load_settings

    started = time.perf_counter()
    try:
        speakers = {}
        for voice in voices:
            if voice in EVAL_VOICES or voice not in TRAINING_VOICES:
                raise TrainingVoiceError(f"{voice!r} is not a training voice; choose from "
                                         f"{', '.join(TRAINING_VOICES)}")
            speakers[voice] = TRAINING_VOICES[voice]()
        transcriber = service_transcriber(load_settings())
        segment = service_segmenter()
    except (RuntimeError, OSError, ValueError) as exc:  # RuntimeError: voice or ASR model
        sys.stderr.write(f"nlu.asr_examples: {exc}\n")
        return 1

    def hear(voice: str, text: str) -> str:
        audio = segment(over_phone_line(*speakers[voice].speak(text)))
        return str(transcriber.transcribe(audio).text)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            sys.stderr.write(f"{done}/{total} lines heard ({time.perf_counter() - started:.0f} s)\n")

    training = load_examples(args.train)[:args.limit]
    earlier = read_heard_examples(args.out) if args.extend and args.out.exists() else []
    try:
        examples = heard_examples(training, voices=voices, hear=hear, earlier=earlier,
                                  held_out=load_examples(EVAL_FILE), progress=progress)
    except TrainingVoiceError as exc:
        sys.stderr.write(f"nlu.asr_examples: {exc}\n")
        return 1
    write_heard_examples(examples, args.out)
    per_voice = {v: sum(e.voice == v for e in examples) for v in dict.fromkeys(
        [*(e.voice for e in earlier), *voices])}
    sys.stdout.write(f"{args.out}: {len(examples)} transcripts from {len(training)} lines × "
                     f"{len(voices)} voices {per_voice}, {time.perf_counter() - started:.0f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
