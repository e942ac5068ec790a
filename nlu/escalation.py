"""When should a person take over? A per-call escalation risk with hysteresis and reasons.

After every caller turn, :meth:`EscalationPredictor.update` turns the turn's
:class:`~nlu.sentiment.TurnSentiment` and the call's
:class:`~nlu.sentiment.ConversationSignals` into an :class:`EscalationDecision`: a risk in
[0, 1], whether to escalate now, and the reasons in words (for the call's events and the agent).

**The model** is logistic regression over a small named feature vector (:data:`FEATURES`): the
turn's word score, the lowest and the recent mean score of the call, how many turns read
negative, vocal arousal now and over the last two turns, repeated questions, failed answers
(all and in a row), barge-ins, profanity and threats. (Not the turn number: with "yes" labels
only on last turns it would learn "late in a snippet", not "unhappy".) Its weights live in
``nlu/data/escalation_model.json``, fitted by ``python -m nlu.escalation fit`` (Newton's method,
L2, balanced classes, standardised features, each weight kept to its sensible sign) on
``escalation_train.jsonl``: every turn of a snippet a supervisor would leave with the assistant
is a "no", the last turn of one they would take over is a "yes" (the turns before it are
unlabelled). The file records the digests of the training snippets and of the lexicon; if
either changed, :meth:`EscalationModel.default` refits on load (a tenth of a second) rather than
use stale weights. A change to the pattern code is not caught by a digest: refit after one (a
test compares the file with a refit).

**Hysteresis.** The model's probability ``p`` is smoothed across turns,
``risk = smoothing · previous + (1 − smoothing) · p``, starting from a calm ``prior``, and:

- the call escalates when ``risk ≥ threshold`` (default 0.7), or when ``risk ≥ threshold −
  margin`` (default 0.55) on two consecutive turns — sustained trouble, not a spike;
- with the default smoothing of 0.3 (chosen by 5-fold cross-validation on the training
  snippets: 0.35 and up lose recall, 0.25 and down weaken the guard) one turn on a calm call
  moves the risk at most 70 % of the way up, so it escalates alone only when the model is about
  96 % sure — shouting with several strong cues, or a legal threat. A sharp word or an annoyed
  remark stays far below; two clearly unhappy turns in a row escalate;
- an explicit request for a person (``intent == "agent"``, or :func:`~nlu.sentiment.
  asks_for_human` on the words) escalates at once, whatever the risk, with the reason
  "caller asked for a person";
- once escalated the decision stays escalated (the transfer is under way).

``level`` is "calm", "watch" (risk in the margin band) or "escalate"; ``changed`` is true on the
turn the level changes — the turns worth recording as events (:meth:`EscalationDecision.
event_data`).

**Snippets** (``escalation_train.jsonl``, ``escalation_eval.jsonl``) are JSON lines, one short
dialogue each, labelled with what a good supervisor would want by its end::

    {"turns": [{"caller": "...", "intent": "order_status", "assistant_failed": false,
                "barge_in": false, "voice": {"energy_change_db": 0.0,
                "pitch_change_semitones": 0.0, "rate_change_ratio": 1.0}}, ...],
     "escalate": false, "note": "calm order check"}

``assistant_failed`` is about the reply to that turn; ``barge_in`` means the turn began by
interrupting the assistant; ``voice`` is the turn against the caller's baseline (the first turn
is the baseline: zeros). Write evaluation snippets apart from training ones, never moved across.

``python -m nlu.escalation eval`` replays the held-out snippets (``escalation_eval.jsonl``, never
used in fitting) turn by turn, as live, and prints precision and recall
(:func:`main_eval_escalation` backs ``iva eval escalation``; ``--classifier`` takes the intents
from the intent classifier instead of the labels).

Errors::

    ValueError
     └── EscalationDataError   a snippets or model file is unusable
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from nlu.sentiment import (
    LEXICON_FILE,
    ConversationSignals,
    SentimentTracker,
    TurnSentiment,
    VoiceFeatures,
)

__all__ = [
    "EVAL_FILE", "FEATURES", "MODEL_FILE", "TRAIN_FILE", "EscalationDataError",
    "EscalationDecision", "EscalationModel", "EscalationPredictor", "EscalationReport",
    "EscalationSettings", "Snippet", "SnippetTurn", "evaluate_escalation", "format_report",
    "fit_snippets", "load_snippets", "main", "main_eval_escalation", "replay", "training_rows",
]

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
TRAIN_FILE = DATA_DIR / "escalation_train.jsonl"
EVAL_FILE = DATA_DIR / "escalation_eval.jsonl"
MODEL_FILE = DATA_DIR / "escalation_model.json"

_FORMAT_VERSION = 1
ASKED_FOR_PERSON = "caller asked for a person"

FEATURES: tuple[str, ...] = (
    "text_score",          # this turn's words, −1…1
    "text_min",            # the lowest word score so far
    "mood",                # mean combined score of the last three turns
    "negative_turns",      # turns labelled negative so far (≤ 4)
    "voice_arousal",       # this turn's vocal arousal, 0…1
    "arousal_recent",      # mean arousal of the last two turns
    "repeated_questions",  # ≤ 3
    "failed_answers",      # ≤ 4
    "failed_in_a_row",     # failed answers since the last good one (≤ 3)
    "barge_ins",           # ≤ 3
    "profanity",           # ≤ 3
    "threats",             # turns with a threat (≤ 2)
)


class EscalationDataError(ValueError):
    """A snippets file or model file cannot be used."""


@dataclass(frozen=True, slots=True)
class EscalationSettings:
    """What the service settings decide (``IVA_ESCALATION_*``)."""

    threshold: float = 0.7
    margin: float = 0.15
    smoothing: float = 0.3  # weight of the previous risk
    prior: float = 0.1  # the risk before the first turn: callers start calm
    weights_path: Path | None = None  # None: the shipped model file


# --- the model --------------------------------------------------------------------------------

# Which way each feature may push the risk: +1 up, −1 down (higher scores are happier).
_DIRECTION = {
    "text_score": -1.0, "text_min": -1.0, "mood": -1.0, "negative_turns": 1.0,
    "voice_arousal": 1.0, "arousal_recent": 1.0, "repeated_questions": 1.0,
    "failed_answers": 1.0, "failed_in_a_row": 1.0, "barge_ins": 1.0, "profanity": 1.0,
    "threats": 1.0,
}

def _sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))


def _newton(x: np.ndarray, labels: np.ndarray, weight: np.ndarray, l2: float,
            iterations: int) -> np.ndarray:
    """Weights (bias last, not shrunk) minimising weighted log-loss + ``l2/2 · |w|²``."""
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = _sigmoid(x @ w)
        gradient = x.T @ (weight * (p - labels)) + penalty * w
        hessian = (x.T * (weight * p * (1 - p))) @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise EscalationDataError(f"cannot read {path}: {exc}") from exc


@dataclass(frozen=True)
class EscalationModel:
    """Fitted logistic weights over standardised :data:`FEATURES`; shared by all calls."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    training_digest: str = ""
    lexicon_digest: str = ""
    l2: float = 1.0

    def logit(self, x: np.ndarray) -> float:
        return float(self.bias + ((x - self.mean) / self.scale) @ self.weights)

    def probability(self, x: np.ndarray) -> float:
        return float(_sigmoid(self.logit(x)))

    def contributions(self, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Each feature's push on the logit relative to a calm ``reference`` vector."""
        return (x - reference) / self.scale * self.weights

    @classmethod
    def fit(cls, rows: np.ndarray, labels: np.ndarray, *, l2: float = 1.0,
            iterations: int = 100, **digests: str) -> EscalationModel:
        """L2-regularised logistic regression by Newton's method, classes weighted equally.

        Every feature has a known direction (:data:`_DIRECTION`: more failed answers never make
        a transfer less advisable). A weight fitted the other way — collinear features trading
        off, as the word scores and the profanity count do — is fixed at zero and the rest
        refitted, so the model stays monotone and its reasons stay true.
        """
        rows, labels = np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(FEATURES) or not 0 < labels.sum() < len(labels):
            raise EscalationDataError("fitting needs feature rows of both classes")
        mean, scale = rows.mean(axis=0), rows.std(axis=0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        x = np.hstack([(rows - mean) / scale, np.ones((len(rows), 1))])
        positives = labels.sum()
        weight = np.where(labels > 0, 0.5 / positives, 0.5 / (len(labels) - positives))
        direction = np.array([_DIRECTION[f] for f in FEATURES] + [0.0])
        free = np.ones(x.shape[1], dtype=bool)
        while True:
            w = np.zeros(x.shape[1])
            w[free] = _newton(x[:, free], labels, weight, l2 / len(labels), iterations)
            wrong = w * direction
            if wrong.min() >= 0:
                break
            free[int(np.argmin(wrong))] = False  # the most wrong-way weight
        return cls(FEATURES, mean, scale, w[:-1], float(w[-1]), l2=l2, **digests)

    def save(self, path: Path | str) -> None:
        payload = {
            "format_version": _FORMAT_VERSION, "features": list(self.features),
            "weights": [round(float(v), 6) for v in self.weights], "bias": round(self.bias, 6),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale], "l2": self.l2,
            "training_digest": self.training_digest, "lexicon_digest": self.lexicon_digest,
        }
        Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> EscalationModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data["format_version"] != _FORMAT_VERSION:
                raise EscalationDataError(f"{path}: model format {data['format_version']}; refit")
            if tuple(data["features"]) != FEATURES:
                raise EscalationDataError(f"{path}: fitted on other features; refit")
            return cls(FEATURES, np.array(data["mean"]), np.array(data["scale"]),
                       np.array(data["weights"]), float(data["bias"]),
                       data["training_digest"], data["lexicon_digest"], float(data["l2"]))
        except EscalationDataError:
            raise
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise EscalationDataError(f"cannot load escalation model {path}: {exc}") from exc

    @classmethod
    def default(cls, path: Path | str | None = None, *,
                train_file: Path | str = TRAIN_FILE) -> EscalationModel:
        """The model to use: ``path`` if given (an operator's own fit, taken as it is), else the
        shipped file if it was fitted on the current training snippets and lexicon, else a
        refit of them. Call once per process and share the result.
        """
        if path is not None:
            return cls.load(path)
        train_file = Path(train_file)
        digests = {"training_digest": _digest(train_file), "lexicon_digest": _digest(LEXICON_FILE)}
        if MODEL_FILE.exists():
            model = cls.load(MODEL_FILE)
            if (model.training_digest, model.lexicon_digest) == tuple(digests.values()):
                return model
            log.info("%s was fitted on other snippets or another lexicon; refitting", MODEL_FILE)
        return fit_snippets(load_snippets(train_file), **digests)


# --- one call ---------------------------------------------------------------------------------

Level = Literal["calm", "watch", "escalate"]


@dataclass(frozen=True, slots=True)
class EscalationDecision:
    """The predictor's view after one caller turn."""

    risk: float  # smoothed, 0…1
    escalate: bool
    reasons: list[str]
    changed: bool  # the level differs from the previous turn's
    level: Level = "calm"
    probability: float = 0.0  # this turn's unsmoothed model output
    features: dict[str, float] = field(default_factory=dict)

    def event_data(self) -> dict[str, object]:
        """Fields of an ``escalation_risk`` call event: ``session.event("escalation_risk",
        **decision.event_data())``."""
        return {"risk": round(self.risk, 3), "level": self.level, "escalate": self.escalate,
                "reasons": list(self.reasons)}


class EscalationPredictor:
    """One call's escalation risk; feed it every caller turn with :meth:`update`.

    Pass the process's shared :class:`EscalationModel` (without one, each predictor loads it).
    """

    def __init__(self, model: EscalationModel | None = None, *,
                 settings: EscalationSettings | None = None) -> None:
        self.settings = settings or EscalationSettings()
        self.model = model or EscalationModel.default(self.settings.weights_path)
        self._risk = self.settings.prior
        self._level: Level = "calm"
        self._turns: list[TurnSentiment] = []
        self._text_min = 1.0
        self._negative_turns = 0

    @property
    def risk(self) -> float:
        return self._risk

    def _features(self, turn: TurnSentiment, signals: ConversationSignals) -> np.ndarray:
        """The feature vector once ``turn`` (not yet in ``self._turns``) is added."""
        recent = [*self._turns[-2:], turn]
        values = {
            "text_score": turn.text_score,
            "text_min": min(self._text_min, turn.text_score),
            "mood": sum(t.score for t in recent) / len(recent),
            "negative_turns": min(self._negative_turns + (turn.label == "negative"), 4),
            "voice_arousal": turn.voice_arousal,
            "arousal_recent": sum(t.voice_arousal for t in recent[-2:]) / len(recent[-2:]),
            "repeated_questions": min(signals.repeated_questions, 3),
            "failed_answers": min(signals.failed_answers, 4),
            "failed_in_a_row": min(signals.failed_in_a_row, 3),
            "barge_ins": min(signals.barge_ins, 3),
            "profanity": min(signals.profanity, 3),
            "threats": min(signals.threats, 2),
        }
        return np.array([values[name] for name in FEATURES])

    def update(self, turn: TurnSentiment, signals: ConversationSignals,
               intent: str | None = None) -> EscalationDecision:
        """Take one caller turn into account (after ``signals.on_caller_turn`` for it)."""
        s = self.settings
        x = self._features(turn, signals)
        self._turns.append(turn)
        self._text_min = min(self._text_min, turn.text_score)
        self._negative_turns += turn.label == "negative"
        p = self.model.probability(x)
        previous, self._risk = self._risk, s.smoothing * self._risk + (1 - s.smoothing) * p
        watch = s.threshold - s.margin
        asked = intent == "agent" or signals.asked_for_human_now
        escalate = (self._level == "escalate" or asked or self._risk >= s.threshold
                    or (self._risk >= watch and previous >= watch))
        level: Level = "escalate" if escalate else "watch" if self._risk >= watch else "calm"
        reasons = self._reasons(x, signals)
        if asked:
            reasons.insert(0, ASKED_FOR_PERSON)
        changed, self._level = level != self._level, level
        return EscalationDecision(self._risk, escalate, reasons, changed, level, p,
                                  dict(zip(FEATURES, x.tolist(), strict=True)))

    def _reasons(self, x: np.ndarray, signals: ConversationSignals) -> list[str]:
        """Plain words for the features pushing the risk up most (at most four)."""
        push = dict(zip(FEATURES, self.model.contributions(x, np.zeros(len(FEATURES))).tolist(),
                        strict=True))
        groups = {
            "words": sum(push[f] for f in ("text_score", "text_min", "mood", "negative_turns")),
            "voice": push["voice_arousal"] + push["arousal_recent"],
            "failed": push["failed_answers"] + push["failed_in_a_row"],
            "repeated": push["repeated_questions"], "barge_ins": push["barge_ins"],
            "profanity": push["profanity"], "threats": push["threats"],
        }
        reasons = []
        for group, value in sorted(groups.items(), key=lambda kv: -kv[1]):
            if value < 0.25 or len(reasons) == 4:
                break
            if text := self._reason(group, signals):
                reasons.append(text)
        return reasons

    def _reason(self, group: str, signals: ConversationSignals) -> str:
        def times(n: int, one: str, many: str) -> str:
            return one if n == 1 else many.format(n=n)

        if group == "words":
            cues = _recent_cues(self._turns, exclude={"profanity", "threat"})
            negative = self._negative_turns
            if cues:
                return "negative words: " + ", ".join(f"'{c}'" for c in cues)
            return times(negative, "a negative turn", "negative for {n} turns") if negative else ""
        if group == "voice":
            loudest = max(self._turns[-2:], key=lambda t: t.voice_arousal)
            change = loudest.voice.describe() if loudest.voice else ""
            return f"voice {change or 'more agitated'} than at the start"
        if group == "failed":
            return times(signals.failed_answers, "a failed answer", "{n} failed answers")
        if group == "repeated":
            return times(signals.repeated_questions, "asked the same thing again",
                         "asked the same thing {n} more times")
        if group == "barge_ins":
            return times(signals.barge_ins, "interrupted the assistant",
                         "interrupted the assistant {n} times")
        if group == "profanity":
            return times(signals.profanity, "swore", "swore {n} times")
        cues = _recent_cues(self._turns, only={"threat"})
        return "threatened to take it further" + (": " + ", ".join(f"'{c}'" for c in cues)
                                                 if cues else "")


def _recent_cues(turns: Sequence[TurnSentiment], *, exclude: set[str] | None = None,
                 only: set[str] | None = None, limit: int = 3) -> list[str]:
    """Negative cues of the latest turns, newest turn first, without repeats."""
    cues: list[str] = []
    for turn in reversed(turns[-3:]):
        category = {cue: cat for cat, cue in turn.flagged}
        for cue in turn.negative:
            kind = category.get(cue)
            if (only is not None and kind not in only) or (exclude and kind in exclude):
                continue
            if cue.lower() not in (c.lower() for c in cues):
                cues.append(cue)
    return cues[:limit]


# --- labelled snippets --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SnippetTurn:
    caller: str
    intent: str | None
    assistant_failed: bool = False  # the reply to this turn failed
    barge_in: bool = False  # this turn began by interrupting the assistant
    voice: VoiceFeatures = VoiceFeatures()


@dataclass(frozen=True, slots=True)
class Snippet:
    """A short dialogue and whether a good supervisor would want a person on it by its end."""

    turns: list[SnippetTurn]
    escalate: bool
    note: str = ""

    @property
    def asks_for_human(self) -> bool:
        return any(t.intent == "agent" for t in self.turns)


def load_snippets(path: Path | str) -> list[Snippet]:
    """Read a JSON-lines file of snippets (format: the module docstring)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EscalationDataError(f"cannot read snippets file {path}: {exc}") from exc
    snippets = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            turns = [SnippetTurn(
                caller=str(t["caller"]), intent=t.get("intent"),
                assistant_failed=bool(t.get("assistant_failed", False)),
                barge_in=bool(t.get("barge_in", False)),
                voice=VoiceFeatures(**t.get("voice", {}), against_baseline=i > 0),
            ) for i, t in enumerate(record["turns"])]
            escalate = record["escalate"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise EscalationDataError(f"{path}:{number}: not a snippet ({exc})") from exc
        if not turns or not isinstance(escalate, bool):
            raise EscalationDataError(f"{path}:{number}: needs turns and a boolean 'escalate'")
        snippets.append(Snippet(turns, escalate, str(record.get("note", ""))))
    return snippets


IntentOf = Callable[[str], "str | None"]


def replay(snippet: Snippet, predictor: EscalationPredictor, *,
           intent_of: IntentOf | None = None) -> list[EscalationDecision]:
    """Run a snippet through a fresh call's trackers and ``predictor`` turn by turn, as live.

    ``intent_of`` replaces the labelled intents (e.g. with the intent classifier's).
    """
    tracker = SentimentTracker()
    decisions = []
    for turn in snippet.turns:
        if turn.barge_in:
            tracker.barge_in()
        intent = intent_of(turn.caller) if intent_of else turn.intent
        mood = tracker.caller_turn(turn.caller, intent, voice=turn.voice)
        decisions.append(predictor.update(mood, tracker.signals, intent))
        tracker.assistant_reply(intent, turn.assistant_failed)
    return decisions


def training_rows(snippets: Iterable[Snippet]) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels: every turn of a "no" snippet is a "no", the last turn of a
    "yes" snippet a "yes"; turns where the caller asks for a person are left to the rule."""
    rows, labels = [], []
    probe = EscalationModel(FEATURES, np.zeros(len(FEATURES)), np.ones(len(FEATURES)),
                            np.zeros(len(FEATURES)), 0.0)
    for snippet in snippets:
        predictor = EscalationPredictor(probe)
        decisions = replay(snippet, predictor)
        asked = [ASKED_FOR_PERSON in d.reasons for d in decisions]
        chosen = range(len(decisions)) if not snippet.escalate else [len(decisions) - 1]
        for i in chosen:
            if not asked[i]:
                rows.append([decisions[i].features[f] for f in FEATURES])
                labels.append(float(snippet.escalate))
    return np.array(rows), np.array(labels)


def fit_snippets(snippets: Iterable[Snippet], *, l2: float = 1.0,
                 **digests: str) -> EscalationModel:
    """Fit the model on labelled snippets (see :func:`training_rows`)."""
    rows, labels = training_rows(snippets)
    return EscalationModel.fit(rows, labels, l2=l2, **digests)


# --- evaluation ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Mistake:
    note: str
    expected: bool
    transferred_at: int | None  # turn index, None if never
    risks: list[float]
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class EscalationReport:
    total: int
    should_escalate: int
    transferred: int
    correct_transfers: int
    false_transfers_of_calm: int
    calm_total: int
    asked_for_human_transferred: int
    asked_for_human_total: int
    mistakes: list[Mistake]

    @property
    def precision(self) -> float:
        return self.correct_transfers / self.transferred if self.transferred else 1.0

    @property
    def recall(self) -> float:
        return self.correct_transfers / self.should_escalate if self.should_escalate else 1.0


def evaluate_escalation(predictor_factory: Callable[[], EscalationPredictor],
                        snippets: Iterable[Snippet], *,
                        intent_of: IntentOf | None = None) -> EscalationReport:
    """Replay each snippet with a fresh predictor; a snippet counts as transferred if the
    predictor escalated on any of its turns."""
    snippets = list(snippets)
    counts = dict.fromkeys(("transferred", "correct", "false", "asked", "asked_ok"), 0)
    mistakes = []
    for snippet in snippets:
        decisions = replay(snippet, predictor_factory(), intent_of=intent_of)
        at = next((i for i, d in enumerate(decisions) if d.escalate), None)
        transferred = at is not None
        counts["transferred"] += transferred
        counts["correct"] += transferred and snippet.escalate
        counts["false"] += transferred and not snippet.escalate
        counts["asked"] += snippet.asks_for_human
        counts["asked_ok"] += snippet.asks_for_human and transferred
        if transferred != snippet.escalate:
            last = decisions[at if at is not None else -1]
            mistakes.append(Mistake(snippet.note, snippet.escalate, at,
                                    [round(d.risk, 2) for d in decisions], last.reasons))
    return EscalationReport(
        total=len(snippets), should_escalate=sum(s.escalate for s in snippets),
        transferred=counts["transferred"], correct_transfers=counts["correct"],
        false_transfers_of_calm=counts["false"],
        calm_total=sum(not s.escalate for s in snippets),
        asked_for_human_transferred=counts["asked_ok"], asked_for_human_total=counts["asked"],
        mistakes=mistakes,
    )


def format_report(report: EscalationReport) -> str:
    lines = [
        f"escalation on {report.total} snippets ({report.should_escalate} should escalate)",
        f"precision: {report.precision:.1%} ({report.correct_transfers}/{report.transferred} "
        "transfers were wanted)",
        f"recall: {report.recall:.1%} ({report.correct_transfers}/{report.should_escalate} "
        "wanted transfers made)",
        f"asked for a person and transferred: {report.asked_for_human_transferred}/"
        f"{report.asked_for_human_total}",
        f"calm callers transferred: {report.false_transfers_of_calm}/{report.calm_total}",
    ]
    if report.mistakes:
        lines += ["", "mistakes:"]
        for m in report.mistakes:
            what = (f"transferred at turn {m.transferred_at + 1}" if m.transferred_at is not None
                    else "not transferred")
            lines.append(f"  {'missed' if m.expected else 'false'}: {what}; risk {m.risks}; "
                         f"{'; '.join(m.reasons) or 'no reasons'} - {m.note}")
    return "\n".join(lines) + "\n"


def main_eval_escalation(argv: Sequence[str] | None = None) -> int:
    """``iva eval escalation``: print the report for a snippets file (default: held out)."""
    parser = argparse.ArgumentParser(prog="iva eval escalation",
                                     description="Evaluate the escalation predictor.")
    parser.add_argument("snippets", nargs="?", type=Path, default=EVAL_FILE)
    parser.add_argument("--model", type=Path, help="a fitted model JSON (default: shipped)")
    defaults = EscalationSettings()
    parser.add_argument("--threshold", type=float, default=defaults.threshold)
    parser.add_argument("--margin", type=float, default=defaults.margin)
    parser.add_argument("--smoothing", type=float, default=defaults.smoothing)
    parser.add_argument("--classifier", action="store_true",
                        help="take intents from the intent classifier instead of the labels")
    args = parser.parse_args(argv)
    settings = EscalationSettings(threshold=args.threshold, margin=args.margin,
                                  smoothing=args.smoothing, weights_path=args.model)
    model = EscalationModel.default(args.model)
    intent_of = None
    if args.classifier:
        from nlu.classifier import IntentClassifier

        classifier = IntentClassifier.default()

        def intent_of(text: str) -> str | None:
            prediction = classifier.predict(text)
            return prediction.intent if prediction.confidence >= 0.85 else None

    report = evaluate_escalation(lambda: EscalationPredictor(model, settings=settings),
                                 load_snippets(args.snippets), intent_of=intent_of)
    sys.stdout.write(format_report(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlu.escalation fit|eval [...]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fit"]:
        parser = argparse.ArgumentParser(prog="python -m nlu.escalation fit")
        parser.add_argument("--l2", type=float, default=1.0)
        parser.add_argument("--out", type=Path, default=MODEL_FILE)
        args = parser.parse_args(argv[1:])
        model = fit_snippets(load_snippets(TRAIN_FILE), l2=args.l2,
                             training_digest=_digest(TRAIN_FILE),
                             lexicon_digest=_digest(LEXICON_FILE))
        model.save(args.out)
        weights = ", ".join(f"{f} {w:+.2f}" for f, w in zip(FEATURES, model.weights, strict=True))
        sys.stdout.write(f"wrote {args.out}: bias {model.bias:+.2f}; {weights}\n")
        return 0
    if argv[:1] == ["eval"]:
        return main_eval_escalation(argv[1:])
    sys.stderr.write("usage: python -m nlu.escalation fit [--l2 L2] | eval [SNIPPETS] [...]\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
