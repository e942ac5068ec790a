"""``iva eval nlu``: how well the assistant understands callers, as text and through speech.

Three held-out sets, none of them used for training or tuning:

* ``nlu/data/intents_eval.jsonl``: intent accuracy (:func:`nlu.evaluation.evaluate_intents`),
  and how many out-of-scope turns were confidently taken for an in-scope intent;
* ``nlu/data/slots_eval.jsonl``: slot accuracy (see below);
* ``kb/data/answers_eval.jsonl``: answer correctness through the whole :class:`Assistant`
  (a fresh one per question, over the demo backend): an in-scope question is answered correctly
  when the reply contains every ``expect`` substring (case-insensitive), and a miss says how it
  was missed ("I don't know", a clarifying question, a task flow started, an agent, a wrong
  answer); an out-of-scope one is handled correctly when nothing is invented. An **invented answer** is an out-of-scope question whose reply cites
  KB passages or states a number (a price, a count of days) the question did not contain.

Each set is run once as text and, with ``--speech``, once more as a caller would say it:
synthesised by a voice that is not the assistant's (espeak-ng or flite), passed through a phone
line (8 kHz G.711 μ-law and back to 16 kHz) and transcribed by the service's recogniser with the
service's settings. As on a call, the intent is read from all the recogniser's hypotheses
(:class:`Heard`), slots and the KB question from the best one. The ASR word error rate against
the written text is reported too.

Slot lines are ``{"text", "slots", "check"?, "asked"?}``. ``slots`` holds the expected values of
the five kinds (:data:`SLOT_KINDS`): ``order_number`` "ORD-1001", ``postcode`` "43004",
``yes_no`` true/false, ``months`` 2, ``date`` "2026-05-08" (relative to
:data:`kb.backend.DEMO_TODAY`); an absent key means nothing should be found. ``check`` lists the
kinds the line tests (default: all five); a line is correct when every checked extractor gives
exactly the expected value. Per kind, a line counts when it is *about* that kind: its ``check``
names it, or, without ``check``, it expects a value of it. Negatives therefore carry a ``check``
of the kinds they tempt (``{"text": "it was 19.99", "slots": {}, "check": ["order_number"]}``).
``asked`` is the slot the assistant has just asked for, as in a call: the recogniser gets the
service's hint for it, and a bare number answers "how many months?".
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Final, NamedTuple, Protocol

import numpy as np

from kb.answers import DONT_KNOW
from kb.backend import DEMO_TODAY, Backend
from kb.evaluation import ANSWERS_EVAL_FILE, AnswerExample, load_answer_examples
from nlu.assistant import Answerer, Assistant, IntentModel, Reply, normalize
from nlu.classifier import DATA_DIR, EVAL_FILE, Example, load_examples
from nlu.evaluation import CONFIDENT, IntentReport, evaluate_intents
from nlu.flows import FlowContext
from nlu.flows.membership_pause import months_in
from nlu.slots import extract_date, extract_order_number, extract_postcode, extract_yes_no
from nlu.slots.spoken import number_runs, tokenize

__all__ = [
    "SLOTS_EVAL_FILE", "SLOT_KINDS", "TARGETS", "CallerVoice", "ConditionReport", "Heard", "Hearing",
    "NluReport", "PhoneCaller", "ReplyReport", "SlotExample", "SlotReport", "VoiceUnavailableError",
    "evaluate_condition", "evaluate_nlu", "format_nlu_report", "invented_numbers",
    "load_slot_examples", "main_eval_nlu", "over_phone_line", "read_slots",
    "service_segmenter", "service_transcriber", "word_error_rate",
]

SLOTS_EVAL_FILE: Final = DATA_DIR / "slots_eval.jsonl"
SLOT_KINDS: Final = ("order_number", "postcode", "yes_no", "months", "date")
TARGETS: Final = {"intent_accuracy_text": 0.95, "intent_accuracy_speech": 0.90, "invented": 0}
DEMO_CALLER: Final = "+15550100"  # Jamie Rivera in the demo backend: flows meet a known caller


class VoiceUnavailableError(RuntimeError):
    """The caller voice's program (espeak-ng, flite) is not installed or failed."""


class Heard(NamedTuple):
    """What the recogniser made of an utterance: its best transcript and, when it returned
    more than one, all its hypotheses as ``(text, log-probability per token)``, best first."""

    text: str
    alternatives: tuple[tuple[str, float], ...] = ()


class Hearing(Protocol):
    """What the assistant gets from a caller who says ``text``; ``asked`` is the slot it has
    just asked for. Text evaluation hears exactly what was written. A plain string is a
    transcript without alternatives."""

    def __call__(self, text: str, *, asked: str | None = None) -> str | Heard: ...


def _as_written(text: str, *, asked: str | None = None) -> str:
    return text


# --- slots --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SlotExample:
    """One held-out slot line (see the module docstring)."""

    text: str
    slots: Mapping[str, Any]
    check: tuple[str, ...] | None = None
    asked: str | None = None

    @property
    def checked(self) -> tuple[str, ...]:
        return self.check or SLOT_KINDS

    @property
    def about(self) -> tuple[str, ...]:
        return self.check or tuple(k for k in SLOT_KINDS if k in self.slots)


def load_slot_examples(path: str | Path = SLOTS_EVAL_FILE) -> list[SlotExample]:
    """The lines of a slots file; ``ValueError`` names the first bad line."""
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            check = tuple(row["check"]) if "check" in row else None
            example = SlotExample(str(row["text"]), dict(row["slots"]), check, row.get("asked"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a slot example: {exc}") from exc
        unknown = {*example.slots, *example.checked, example.asked or SLOT_KINDS[0]} - {*SLOT_KINDS}
        if unknown or not set(example.slots) <= set(example.checked):
            raise ValueError(f"{path}:{number}: unknown or unchecked slot kinds "
                             f"{sorted(unknown or set(example.slots) - set(example.checked))}")
        examples.append(example)
    return examples


def read_slots(text: str, *, asked: str | None = None, today: date = DEMO_TODAY) -> dict[str, Any]:
    """What every extractor finds in ``text`` (None when nothing), dates as ISO strings."""
    found = extract_date(text, today=today)
    return {"order_number": extract_order_number(text), "postcode": extract_postcode(text),
            "yes_no": extract_yes_no(text), "months": months_in(text, bare=asked == "months"),
            "date": found.isoformat() if found else None}


@dataclass(frozen=True, slots=True)
class SlotMistake:
    text: str
    heard: str
    expected: dict[str, Any]  # the checked kinds that came out wrong, and what they should be
    got: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlotReport:
    total: int
    correct: int
    per_kind: dict[str, tuple[int, int]]  # kind -> (correct, lines about it)
    mistakes: list[SlotMistake]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def _evaluate_slots(examples: Sequence[SlotExample], hear: Callable[..., Heard],
                    today: date) -> SlotReport:
    correct = 0
    per_kind = {kind: [0, 0] for kind in SLOT_KINDS}
    mistakes = []
    for example in examples:
        heard = hear(example.text, asked=example.asked).text
        got = read_slots(heard, asked=example.asked, today=today)
        wrong = [k for k in example.checked if got[k] != example.slots.get(k)]
        correct += not wrong
        for kind in example.about:
            per_kind[kind][0] += kind not in wrong
            per_kind[kind][1] += 1
        if wrong:
            mistakes.append(SlotMistake(example.text, heard,
                                        {k: example.slots.get(k) for k in wrong},
                                        {k: got[k] for k in wrong}))
    return SlotReport(len(examples), correct, {k: (c, n) for k, (c, n) in per_kind.items()},
                      mistakes)


# --- answers through the assistant --------------------------------------------------------------

def _numbers_said(text: str) -> set[str]:
    numbers = set()
    tokens = tokenize(text)
    for token in tokens:
        if token.kind in ("digits", "decimal"):
            numbers |= {token.text, token.text.replace(".", "")}
    for run in number_runs(tokens):
        numbers |= {run.digits, *run.chunks}
    return numbers


def invented_numbers(reply: str, question: str) -> list[str]:
    """The numbers (prices, days, times) in ``reply`` that the caller's ``question`` did not
    contain, in digits or in words."""
    said = _numbers_said(question)
    stated = re.findall(r"\d+(?:[.,:]\d+)*", reply)
    return [n for n in stated if n not in said and re.sub(r"\D", "", n) not in said]


@dataclass(frozen=True, slots=True)
class ReplyMistake:
    question: str
    heard: str
    kind: str  # "invented" (out of scope), or how an in-scope question was missed (_MISSES)
    reply: str
    intent: str
    passage_ids: list[str]


@dataclass(frozen=True, slots=True)
class ReplyReport:
    in_scope: int
    in_scope_correct: int
    out_of_scope: int
    out_of_scope_correct: int  # nothing invented
    invented: int
    missed: dict[str, int]  # in-scope misses by how they were missed (_MISSES)
    mistakes: list[ReplyMistake]

    @property
    def correctness(self) -> float:
        return self.in_scope_correct / self.in_scope if self.in_scope else 0.0

    @property
    def honesty(self) -> float:
        return self.out_of_scope_correct / self.out_of_scope if self.out_of_scope else 1.0


# How an in-scope question can be missed: the honest "I don't know", a clarifying question, a
# task flow started instead (it asks for an order number or the postcode), the transfer to an
# agent, or a KB answer without an expected substring.
_MISSES: Final = ("declined", "clarified", "flow", "agent", "wrong")


def _how_missed(reply: Reply) -> str:
    if reply.text == DONT_KNOW:
        return "declined"
    if reply.intent == "unclear":
        return "clarified"
    if reply.flow:
        return "flow"
    if reply.escalate:
        return "agent"
    return "wrong"


def _evaluate_replies(examples: Sequence[AnswerExample], hear: Callable[..., Heard],
                      new_assistant: Callable[[int], Assistant]) -> ReplyReport:
    counts = dict.fromkeys(("in", "in_ok", "out", "invented", *_MISSES), 0)
    mistakes = []
    for n, example in enumerate(examples):
        heard, alternatives = hear(example.question)
        reply = new_assistant(n).respond(heard, alternatives=alternatives)
        if example.in_scope:
            counts["in"] += 1
            said = reply.text.casefold()
            if all(e.casefold() in said for e in example.expect):
                counts["in_ok"] += 1
                continue
            kind = _how_missed(reply)
            counts[kind] += 1
        else:
            counts["out"] += 1
            if not reply.passage_ids and not invented_numbers(reply.text, heard):
                continue
            counts["invented"] += 1
            kind = "invented"
        mistakes.append(ReplyMistake(example.question, heard, kind, reply.text, reply.intent,
                                     list(reply.passage_ids)))
    return ReplyReport(counts["in"], counts["in_ok"], counts["out"],
                       counts["out"] - counts["invented"], counts["invented"],
                       {k: counts[k] for k in _MISSES}, mistakes)


# --- one condition (text or speech) and the whole run -------------------------------------------

@dataclass(frozen=True, slots=True)
class IntentMistake:
    text: str
    heard: str
    expected: str
    predicted: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ConditionReport:
    """The figures of one way of hearing the callers: ``"text"`` or ``"speech"``."""

    name: str
    intents: IntentReport
    intent_mistakes: list[IntentMistake]
    slots: SlotReport
    replies: ReplyReport
    word_error_rate: float | None = None  # of the recogniser, over every utterance
    intent_word_error_rate: float | None = None  # over the intent set only (few numbers)
    transcripts: list[tuple[str, str]] = field(default_factory=list)  # (said, heard)


def word_error_rate(pairs: Sequence[tuple[str, str]]) -> float:
    """Word-level edit distance over reference words, after :func:`normalize` (so "1001" for
    "ten oh one" counts as errors: a digit format is not a misrecognition, but is counted)."""
    edits = words = 0
    for reference, hypothesis in pairs:
        ref, hyp = normalize(reference).split(), normalize(hypothesis).split()
        row = list(range(len(hyp) + 1))
        for i, r in enumerate(ref, 1):
            previous, row[0] = row[0], i
            for j, h in enumerate(hyp, 1):
                previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
        edits += row[-1]
        words += len(ref)
    return edits / words if words else 0.0


def evaluate_condition(
    name: str, *, hear: Hearing, classifier: IntentModel, answerer: Answerer, backend: Backend,
    intents: Sequence[Example], slots: Sequence[SlotExample], answers: Sequence[AnswerExample],
    threshold: float = CONFIDENT, today: date = DEMO_TODAY, caller_phone: str | None = DEMO_CALLER,
) -> ConditionReport:
    """Intent, slot and answer figures with the callers' words as ``hear`` delivers them."""
    heard_log: list[tuple[str, str]] = []

    def logged(text: str, *, asked: str | None = None) -> Heard:
        heard = hear(text, asked=asked)
        heard = Heard(heard) if isinstance(heard, str) else heard
        heard_log.append((text, heard.text))
        return heard

    heard = [logged(e.text) for e in intents]
    heard_intents = [Example(h.text, e.intent) for h, e in zip(heard, intents, strict=True)]
    predictions = [classifier.predict_heard(h.alternatives) if len(h.alternatives) > 1
                   else classifier.predict(h.text) for h in heard]
    intent_report = evaluate_intents(classifier, heard_intents, threshold=threshold,
                                     predictions=predictions)
    intent_mistakes = [IntentMistake(e.text, h.text, e.intent, p.intent, p.confidence)
                       for e, h, p in zip(intents, heard_intents, predictions, strict=True)
                       if p.intent != e.intent]
    intent_wer = word_error_rate(heard_log)
    slot_report = _evaluate_slots(slots, logged, today)

    def new_assistant(n: int) -> Assistant:
        context = FlowContext(backend, call_id=f"eval-{name}-{n}", caller_phone=caller_phone,
                              today=today)
        return Assistant(classifier=classifier, answerer=answerer, context=context,
                         threshold=threshold)

    reply_report = _evaluate_replies(answers, logged, new_assistant)
    spoken = name != "text"
    return ConditionReport(name, intent_report, intent_mistakes, slot_report, reply_report,
                           word_error_rate(heard_log) if spoken else None,
                           intent_wer if spoken else None, heard_log if spoken else [])


@dataclass(frozen=True, slots=True)
class NluReport:
    text: ConditionReport
    speech: ConditionReport | None = None
    voice: str | None = None
    seconds: float = 0.0

    def conditions(self) -> list[ConditionReport]:
        return [c for c in (self.text, self.speech) if c is not None]

    def to_json(self) -> dict[str, Any]:
        """The figures and every mistake, for ``--json``."""
        def condition(c: ConditionReport) -> dict[str, Any]:
            figures = _figures(c)
            return {**figures, "per_intent": {k: asdict(v) for k, v in c.intents.per_intent.items()},
                    "intent_confusions": c.intents.confusions,
                    "intent_mistakes": [asdict(m) for m in c.intent_mistakes],
                    "slot_mistakes": [asdict(m) for m in c.slots.mistakes],
                    "answer_mistakes": [asdict(m) for m in c.replies.mistakes],
                    "transcripts": [{"said": s, "heard": h} for s, h in c.transcripts]}
        return {"voice": self.voice, "seconds": round(self.seconds, 1), "targets": TARGETS,
                "text": condition(self.text),
                "speech": condition(self.speech) if self.speech else None}


def evaluate_nlu(
    *, classifier: IntentModel, answerer: Answerer, backend: Backend,
    intents: Sequence[Example], slots: Sequence[SlotExample], answers: Sequence[AnswerExample],
    speech: Hearing | None = None, voice: str | None = None, threshold: float = CONFIDENT,
    today: date = DEMO_TODAY,
) -> NluReport:
    """Every figure as text and, when ``speech`` is given, as heard through it."""
    started = time.perf_counter()
    common = dict(classifier=classifier, answerer=answerer, backend=backend, intents=intents,
                  slots=slots, answers=answers, threshold=threshold, today=today)
    text = evaluate_condition("text", hear=_as_written, **common)  # type: ignore[arg-type]
    spoken = (evaluate_condition("speech", hear=speech, **common)  # type: ignore[arg-type]
              if speech is not None else None)
    return NluReport(text, spoken, voice if speech is not None else None,
                     time.perf_counter() - started)


# --- the report ---------------------------------------------------------------------------------

def _figures(c: ConditionReport) -> dict[str, Any]:
    i, s, r = c.intents, c.slots, c.replies
    return {
        "intent_accuracy": i.accuracy, "intent_correct": i.correct, "intent_total": i.total,
        "out_of_scope_confidently_wrong": i.out_of_scope_confidently_wrong,
        "out_of_scope_total": i.out_of_scope_total,
        "slot_accuracy": s.accuracy, "slot_correct": s.correct, "slot_total": s.total,
        "slot_per_kind": {k: {"correct": ok, "total": n} for k, (ok, n) in s.per_kind.items()},
        "answers_in_scope_correct": r.in_scope_correct, "answers_in_scope": r.in_scope,
        "answers_missed": r.missed,
        "answers_out_of_scope_correct": r.out_of_scope_correct,
        "answers_out_of_scope": r.out_of_scope, "invented": r.invented,
        "word_error_rate": c.word_error_rate, "intent_word_error_rate": c.intent_word_error_rate,
    }


def _share(correct: int, total: int) -> str:
    return f"{correct / total:.1%} ({correct}/{total})" if total else "-"


def _rows(c: ConditionReport) -> list[str]:
    i, s, r = c.intents, c.slots, c.replies
    rows = [_share(i.correct, i.total),
            f"{i.out_of_scope_confidently_wrong}/{i.out_of_scope_total}",
            _share(s.correct, s.total)]
    rows += [_share(*s.per_kind[k]) for k in SLOT_KINDS]
    rows += [_share(r.in_scope_correct, r.in_scope), " / ".join(str(r.missed[k]) for k in _MISSES),
             _share(r.out_of_scope_correct, r.out_of_scope), str(r.invented)]
    rows += ["-" if c.word_error_rate is None else f"{c.word_error_rate:.1%}",
             "-" if c.intent_word_error_rate is None else f"{c.intent_word_error_rate:.1%}"]
    return rows


_MEASURES: Final = (
    ("intent accuracy", "≥ 95 % text, ≥ 90 % speech"),
    ("out-of-scope taken in scope at ≥ threshold", ""),
    ("slot lines all correct", ""),
    *((f"  {kind}", "") for kind in SLOT_KINDS),
    ("answers correct (in scope)", ""),
    ("  missed: declined / clarified / flow / agent / wrong", ""),
    ("out-of-scope answered honestly", ""),
    ("invented answers", "0"),
    ("ASR word error rate, all utterances", ""),
    ("ASR word error rate, intent set", ""),
)


def format_nlu_report(report: NluReport, *, mistakes: int = 12) -> str:
    """A Markdown table (measure | text | speech | target) and the first ``mistakes`` of each
    kind, most telling first."""
    text = _rows(report.text)
    speech = _rows(report.speech) if report.speech else ["-"] * len(text)
    voice = f" ({report.voice})" if report.voice else ""
    lines = [f"| measure | text | speech{voice} | target |", "|---|---|---|---|"]
    lines += [f"| {m} | {t} | {s} | {target} |"
              for (m, target), t, s in zip(_MEASURES, text, speech, strict=True)]
    for c in report.conditions():
        lines += ["", f"## {c.name}: intent confusions (expected -> predicted: count)"]
        lines += [f"  {a} -> {b}: {n}" for a, b, n in c.intents.confusions[:mistakes]] or ["  none"]
        if c.intent_mistakes:
            lines += ["", f"## {c.name}: intent mistakes"]
            lines += [f"  {m.expected} -> {m.predicted} ({m.confidence:.2f}): {_said(m.text, m.heard)}"
                      for m in sorted(c.intent_mistakes, key=lambda m: -m.confidence)[:mistakes]]
        if c.slots.mistakes:
            lines += ["", f"## {c.name}: slot mistakes"]
            lines += [f"  {_said(m.text, m.heard)}: expected {m.expected}, got {m.got}"
                      for m in c.slots.mistakes[:mistakes]]
        if c.replies.mistakes:
            lines += ["", f"## {c.name}: answer mistakes"]
            lines += [f"  {m.kind}: {_said(m.question, m.heard)} -> [{m.intent}] {m.reply!r}"
                      for m in c.replies.mistakes[:mistakes]]
    lines += ["", f"{report.seconds:.0f} s"]
    return "\n".join(lines) + "\n"


def _said(text: str, heard: str) -> str:
    return repr(text) if text == heard else f"{text!r} heard as {heard!r}"


# --- caller speech over a phone line ------------------------------------------------------------

class CallerVoice:
    """A caller's voice from espeak-ng or flite (never the assistant's piper voice), as the
    service receives it from a phone: 8 kHz G.711 μ-law, back up to 16 kHz float32.

    Each text is synthesised once; the WAV files stay in ``folder``.
    """

    COMMANDS: Final = {
        "espeak": ("espeak-ng", ["-v", "en-us", "-s", "160", "-f", "{text}", "-w", "{wav}"]),
        "flite": ("flite", ["-voice", "slt", "-f", "{text}", "-o", "{wav}"]),
    }

    def __init__(self, voice: str, folder: Path) -> None:
        if voice not in self.COMMANDS:
            raise ValueError(f"unknown caller voice {voice!r}; choose {', '.join(self.COMMANDS)}")
        program, self._args = self.COMMANDS[voice]
        binary = shutil.which(program)
        if binary is None:
            raise VoiceUnavailableError(f"the {voice} caller voice needs {program}, which is not "
                                        f"installed (apt-get install {program})")
        self.voice, self._binary, self.folder = voice, binary, folder
        folder.mkdir(parents=True, exist_ok=True)
        self._wavs: dict[str, Path] = {}

    def wav(self, text: str) -> Path:
        """The WAV file of ``text`` spoken by this voice."""
        path = self._wavs.get(text)
        if path is None:
            n = len(self._wavs)
            path, script = self.folder / f"{n:05d}.wav", self.folder / f"{n:05d}.txt"
            script.write_text(text + "\n", encoding="utf-8")
            args = [a.format(text=script, wav=path) for a in self._args]
            done = subprocess.run([self._binary, *args], capture_output=True, timeout=60)
            if done.returncode or not path.exists():
                raise VoiceUnavailableError(f"{self._binary} failed on {text!r}: "
                                            f"{done.stderr.decode(errors='replace').strip()}")
            self._wavs[text] = path
        return path

    def phone_audio(self, text: str) -> np.ndarray:
        """``text`` spoken and sent over a phone line: float32 mono 16 kHz."""
        from telephony.audio import read_wav

        return over_phone_line(*read_wav(self.wav(text)))


def over_phone_line(pcm: bytes, rate: int) -> np.ndarray:
    """16-bit mono PCM at ``rate`` as the service receives it from a phone: down to 8 kHz
    G.711 μ-law and back up to 16 kHz, as float32 in [-1, 1]."""
    from telephony.audio import pcm16_to_ulaw, resample, ulaw_to_pcm16

    line = ulaw_to_pcm16(pcm16_to_ulaw(resample(pcm, rate, 8000)))
    return np.frombuffer(resample(line, 8000, 16000), dtype="<i2").astype(np.float32) / 32768


def service_segmenter() -> Callable[[np.ndarray], np.ndarray]:
    """What the service's listening hands the recogniser for a caller who says one utterance
    after silence: :func:`voice.listening.turn_segment` with the service's VAD, so the
    recogniser hears the same silence around the words as on a live call (about 0.2 s before
    them from the pre-roll and 0.12–0.25 s after), not whatever the voice put there (espeak-ng
    starts speaking on the first sample). Float32 16 kHz in and out; empty when no speech."""
    from voice.listening import turn_segment
    from voice.vad import SileroModel

    vad = SileroModel()
    quiet = np.zeros(16_000, dtype=np.float32)  # a second of line silence either side

    def segment(audio: np.ndarray) -> np.ndarray:
        line = np.concatenate([quiet, np.asarray(audio, dtype=np.float32), quiet])
        pcm = (np.clip(line, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        return np.frombuffer(turn_segment(pcm, vad), dtype="<i2").astype(np.float32) / 32768

    return segment


class PhoneCaller:
    """:class:`Hearing` through speech: a :class:`CallerVoice` and the service's recogniser.

    ``hints`` are the service's recogniser hints per slot asked for; ``segment`` cuts the
    caller's audio as the service's listening would (:func:`service_segmenter`; none: the
    recording as it is); ``progress`` gets a line every ``every`` utterances.
    """

    def __init__(self, voice: CallerVoice, transcriber: Any, *, hints: Mapping[str, str],
                 segment: Callable[[np.ndarray], np.ndarray] | None = None,
                 progress: IO[str] | None = None, every: int = 50, total: int | None = None) -> None:
        self.voice, self.transcriber, self.hints = voice, transcriber, hints
        self.segment = segment
        self.progress, self.every, self.total = progress, every, total
        self.utterances = 0
        self.audio_s = self.compute_s = 0.0
        self._heard: dict[tuple[str, str], Heard] = {}
        self._started = time.perf_counter()

    def __call__(self, text: str, *, asked: str | None = None) -> Heard:
        hint = self.hints.get(asked or "", "")
        heard = self._heard.get((text, hint))
        if heard is None:
            audio = self.voice.phone_audio(text)
            if self.segment is not None:
                audio = self.segment(audio)
            transcript = self.transcriber.transcribe(audio, hint=hint)
            heard = self._heard[(text, hint)] = Heard(
                transcript.text, tuple(transcript.alternatives))
            self.audio_s += transcript.audio_s
            self.compute_s += transcript.compute_s
        self.utterances += 1
        if self.progress is not None and self.utterances % self.every == 0:
            of = f"/{self.total}" if self.total else ""
            self.progress.write(f"speech: {self.utterances}{of} utterances "
                                f"({time.perf_counter() - self._started:.0f} s)\n")
            self.progress.flush()
        return heard


# --- the command --------------------------------------------------------------------------------

def main_eval_nlu(args: argparse.Namespace) -> int:
    """``iva eval nlu``: print the report, write ``--json``; 1 only when it cannot run (a data
    file unreadable, the caller voice or the ASR model missing)."""
    from kb.backend import SqliteBackend
    from nlu.classifier import IntentClassifier
    from voice.engine import load_knowledge
    from voice.settings import load_settings

    limit = None if args.limit is None else max(0, args.limit)
    with tempfile.TemporaryDirectory(prefix="iva-eval-nlu-") as tmp:
        try:
            settings = load_settings()
            intents = load_examples(EVAL_FILE)[:limit]
            slots = load_slot_examples()[:limit]
            answers = load_answer_examples(ANSWERS_EVAL_FILE)[:limit]
            speech = (_phone_caller(args.voice, Path(tmp) / "voices", settings,
                                    total=len(intents) + len(slots) + len(answers))
                      if args.speech else None)
        except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: voice or ASR model
            sys.stderr.write(f"iva eval nlu: {exc}\n")
            return 1
        classifier = IntentClassifier.default()
        _, answerer = load_knowledge(settings)
        backend = SqliteBackend(Path(tmp) / "backend.sqlite3", today=DEMO_TODAY)
        try:
            report = evaluate_nlu(classifier=classifier, answerer=answerer, backend=backend,
                                  intents=intents, slots=slots, answers=answers, speech=speech,
                                  voice=args.voice, threshold=settings.intent_confidence)
        except VoiceUnavailableError as exc:
            sys.stderr.write(f"iva eval nlu: {exc}\n")
            return 1
        finally:
            backend.close()
    sys.stdout.write(format_nlu_report(report))
    if speech is not None and speech.audio_s:
        sys.stdout.write(f"ASR: {speech.compute_s / speech.audio_s:.2f} s of compute per second "
                         f"of audio ({speech.utterances} utterances)\n")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report.to_json(), indent=2) + "\n",
                                        encoding="utf-8")
    return 0


def service_transcriber(settings: Any) -> Any:
    """The recogniser with the service's settings (model, threads, beam, window, vocabulary)."""
    from voice.asr import WhisperTranscriber

    return WhisperTranscriber.from_settings(settings)


def _phone_caller(voice: str, folder: Path, settings: Any, *, total: int) -> PhoneCaller:
    from voice.listening import ASR_HINTS  # the hints the service gives the recogniser

    caller_voice = CallerVoice(voice, folder)  # first: a missing binary fails before the model
    return PhoneCaller(caller_voice, service_transcriber(settings), hints=ASR_HINTS,
                       segment=service_segmenter(),
                       progress=sys.stderr, total=total)
