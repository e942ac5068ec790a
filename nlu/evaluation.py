"""Measuring the intent classifier on a held-out labelled set.

:func:`evaluate_intents` runs a classifier over labelled examples and returns an
:class:`IntentReport`: accuracy, per-intent precision and recall, the most frequent confusions,
how well the confidence is calibrated (expected calibration error), and how many out-of-scope
utterances were confidently (at or above the clarification threshold) taken for an in-scope
intent — the mistakes the assistant would act on without asking. :func:`format_report` renders
it as plain text.

``python -m nlu.evaluation [EXAMPLES.jsonl] [--model MODEL.npz] [--threshold 0.85]`` prints the
report for the shipped held-out set (``nlu/data/intents_eval.jsonl``) by default, using
:meth:`IntentClassifier.default` unless a model file is given.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from nlu.classifier import EVAL_FILE, Example, IntentClassifier, IntentPrediction, load_examples

__all__ = [
    "CONFIDENT",
    "OUT_OF_SCOPE",
    "IntentReport",
    "IntentScores",
    "Misprediction",
    "Predictor",
    "evaluate_intents",
    "expected_calibration_error",
    "format_report",
    "main",
]

OUT_OF_SCOPE = "out_of_scope"
CONFIDENT = 0.85  # the default confidence below which the assistant asks a clarifying question


class Predictor(Protocol):
    """What evaluation needs of a classifier (:class:`IntentClassifier` is one)."""

    def predict(self, text: str) -> IntentPrediction: ...


@dataclass(frozen=True, slots=True)
class IntentScores:
    """One intent's precision (of the turns predicted as it) and recall (of its true turns)."""

    precision: float
    recall: float
    support: int  # how many examples truly have this intent
    predicted: int  # how many examples were predicted as it


@dataclass(frozen=True, slots=True)
class Misprediction:
    """One example the classifier got wrong."""

    text: str
    expected: str
    predicted: str
    confidence: float


@dataclass(frozen=True, slots=True)
class IntentReport:
    """The figures of one evaluation run (see the module docstring)."""

    total: int
    correct: int
    per_intent: dict[str, IntentScores]
    confusions: list[tuple[str, str, int]]  # (expected, predicted, count), most frequent first
    threshold: float
    below_threshold: int  # predictions that would trigger a clarifying question
    out_of_scope_total: int
    out_of_scope_confidently_wrong: int  # out of scope, predicted in scope at ≥ threshold
    expected_calibration_error: float
    mean_confidence_correct: float
    mean_confidence_wrong: float
    errors: list[Misprediction]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> float:
    """The gap between confidence and accuracy, averaged over equal-width confidence bins.

    Each bin's |mean confidence − accuracy| is weighted by its share of the predictions;
    0 means perfectly calibrated.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        in_bin = which == b
        gap += in_bin.mean() * abs(conf[in_bin].mean() - hits[in_bin].mean())
    return float(gap)


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def evaluate_intents(
    classifier: Predictor, examples: Iterable[Example], *, threshold: float = CONFIDENT,
    predictions: Sequence[IntentPrediction] | None = None,
) -> IntentReport:
    """Run ``classifier`` over labelled ``examples`` and gather the figures of the report.
    ``predictions``, one per example, are used instead when the classifier has already
    spoken (from the recogniser's hypotheses, say)."""
    examples = list(examples)
    if predictions is None:
        predictions = [classifier.predict(e.text) for e in examples]
    elif len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    correct = [p.intent == e.intent for p, e in zip(predictions, examples, strict=True)]
    confidences = [p.confidence for p in predictions]
    scored = list(zip(confidences, correct, strict=True))

    truth = Counter(e.intent for e in examples)
    guessed = Counter(p.intent for p in predictions)
    hits = Counter(e.intent for e, ok in zip(examples, correct, strict=True) if ok)
    per_intent = {
        intent: IntentScores(
            precision=hits[intent] / guessed[intent] if guessed[intent] else 0.0,
            recall=hits[intent] / truth[intent] if truth[intent] else 0.0,
            support=truth[intent],
            predicted=guessed[intent],
        )
        for intent in sorted(truth | guessed)
    }
    errors = [
        Misprediction(e.text, e.intent, p.intent, p.confidence)
        for e, p, ok in zip(examples, predictions, correct, strict=True)
        if not ok
    ]
    pairs = Counter((m.expected, m.predicted) for m in errors)
    return IntentReport(
        total=len(examples),
        correct=sum(correct),
        per_intent=per_intent,
        confusions=[(a, b, n) for (a, b), n in pairs.most_common()],
        threshold=threshold,
        below_threshold=sum(c < threshold for c in confidences),
        out_of_scope_total=truth[OUT_OF_SCOPE],
        out_of_scope_confidently_wrong=sum(
            m.expected == OUT_OF_SCOPE and m.confidence >= threshold for m in errors
        ),
        expected_calibration_error=expected_calibration_error(confidences, correct),
        mean_confidence_correct=_mean([c for c, ok in scored if ok]),
        mean_confidence_wrong=_mean([c for c, ok in scored if not ok]),
        errors=sorted(errors, key=lambda m: -m.confidence),
    )


def format_report(report: IntentReport) -> str:
    """The report as plain text: headline figures, a per-intent table, confusions, errors."""
    lines = [
        f"intent accuracy: {report.accuracy:.1%} ({report.correct}/{report.total})",
        f"expected calibration error: {report.expected_calibration_error:.3f} "
        f"(mean confidence {report.mean_confidence_correct:.2f} when right, "
        f"{report.mean_confidence_wrong:.2f} when wrong)",
        f"below the {report.threshold:.2f} threshold (would ask to clarify): "
        f"{report.below_threshold}/{report.total}",
        f"out-of-scope taken for an in-scope intent at >= {report.threshold:.2f}: "
        f"{report.out_of_scope_confidently_wrong}/{report.out_of_scope_total}",
        "",
        f"{'intent':<20}{'precision':>10}{'recall':>8}{'support':>9}",
    ]
    for intent, s in report.per_intent.items():
        lines.append(f"{intent:<20}{s.precision:>10.2f}{s.recall:>8.2f}{s.support:>9d}")
    if report.confusions:
        lines += ["", "confusions (expected -> predicted: count):"]
        lines += [f"  {a} -> {b}: {n}" for a, b, n in report.confusions]
    if report.errors:
        lines += ["", "errors (most confident first):"]
        lines += [
            f"  {m.confidence:.2f}  {m.expected} -> {m.predicted}: {m.text!r}"
            for m in report.errors
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the evaluation report for a labelled examples file; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m nlu.evaluation", description="Evaluate the intent classifier."
    )
    parser.add_argument(
        "examples", nargs="?", type=Path, default=EVAL_FILE,
        help="held-out JSON-lines examples (default: the shipped evaluation set)",
    )
    parser.add_argument(
        "--model", type=Path, help="a model file written by IntentClassifier.save "
        "(default: the shipped model, trained from the examples if needed)",
    )
    parser.add_argument(
        "--threshold", type=float, default=CONFIDENT,
        help=f"clarification threshold (default {CONFIDENT})",
    )
    args = parser.parse_args(argv)
    classifier = IntentClassifier.load(args.model) if args.model else IntentClassifier.default()
    report = evaluate_intents(classifier, load_examples(args.examples), threshold=args.threshold)
    sys.stdout.write(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
