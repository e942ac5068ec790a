"""Measuring knowledge-base retrieval and grounded answers on a labelled set.

An example is a caller question with the passages that answer it and the words the spoken
answer must contain; out-of-scope examples have neither and must get the honest "I don't know"
(``kb/data/answers_eval.jsonl``, one JSON object a line)::

    {"question": "how much is express shipping", "passages": ["shipping#2"], "expect": ["$12.99"]}
    {"question": "whats the weather tomorrow", "passages": [], "expect": []}

:func:`evaluate_answers` runs a :class:`~kb.answers.GroundedAnswerer` over examples and returns
an :class:`AnswerReport`:

* recall@1 and recall@3: share of in-scope questions with an expected passage ranked first, or
  among the first three, by the answerer's retrieval;
* answer correctness: share of in-scope questions answered confidently with every expected
  substring (case-insensitive); "wrong" answers are confident ones that miss one;
* out-of-scope honesty: share of out-of-scope questions answered "I don't know", and the count
  of invented answers: out-of-scope questions answered confidently.

``python -m kb.evaluation [EXAMPLES.jsonl] [--verbose]`` prints the report for BM25 alone,
embeddings alone and hybrid retrieval over the demo knowledge base, and how long the embedding
model takes to load and to encode a question.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kb.answers import GroundedAnswerer
from kb.retrieval import Retrieval

__all__ = [
    "ANSWERS_EVAL_FILE",
    "AnswerExample",
    "AnswerFailure",
    "AnswerReport",
    "evaluate_answers",
    "format_table",
    "load_answer_examples",
    "main",
]

ANSWERS_EVAL_FILE = Path(__file__).resolve().parent / "data" / "answers_eval.jsonl"


@dataclass(frozen=True, slots=True)
class AnswerExample:
    """One labelled question; no ``passages`` means out of scope."""

    question: str
    passages: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()

    @property
    def in_scope(self) -> bool:
        return bool(self.passages)


def load_answer_examples(path: str | Path = ANSWERS_EVAL_FILE) -> list[AnswerExample]:
    """The examples of a JSON-lines file; ``ValueError`` names the first bad line."""
    examples: list[AnswerExample] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            example = AnswerExample(
                question=str(row["question"]),
                passages=tuple(str(p) for p in row.get("passages", ())),
                expect=tuple(str(e) for e in row.get("expect", ())),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not an answer example: {exc}") from exc
        if example.expect and not example.passages:
            raise ValueError(f"{path}:{number}: expected words without an expected passage")
        examples.append(example)
    return examples


@dataclass(frozen=True, slots=True)
class AnswerFailure:
    """One example the answerer got wrong, and how."""

    question: str
    kind: str  # "declined", "wrong" (confident, missing an expected substring) or "invented"
    retrieved: tuple[str, ...]  # passage ids, best first
    answer: str


@dataclass(frozen=True, slots=True)
class AnswerReport:
    """The figures of one evaluation run (see the module docstring)."""

    name: str
    in_scope: int
    out_of_scope: int
    found_first: int  # in-scope questions with an expected passage ranked first
    found_top3: int
    correct: int  # in-scope, confident, every expected substring present
    wrong: int  # in-scope, confident, but an expected substring missing
    honest: int  # out-of-scope answered "I don't know"
    invented: int  # out-of-scope answered confidently
    seconds_per_question: float  # mean time of GroundedAnswerer.answer
    failures: list[AnswerFailure] = field(default_factory=list)

    @property
    def recall_at_1(self) -> float:
        return self.found_first / self.in_scope if self.in_scope else 0.0

    @property
    def recall_at_3(self) -> float:
        return self.found_top3 / self.in_scope if self.in_scope else 0.0

    @property
    def correctness(self) -> float:
        return self.correct / self.in_scope if self.in_scope else 0.0

    @property
    def honesty(self) -> float:
        return self.honest / self.out_of_scope if self.out_of_scope else 1.0

    @property
    def declined(self) -> int:
        return self.in_scope - self.correct - self.wrong

    def lines(self, *, verbose: bool = False) -> list[str]:
        """The report as lines of plain text; ``verbose`` lists every failure."""
        lines = [
            f"{self.name}: {self.in_scope} in-scope and {self.out_of_scope} out-of-scope questions",
            f"  retrieval recall@1 {self.recall_at_1:.1%} ({self.found_first}), "
            f"recall@3 {self.recall_at_3:.1%} ({self.found_top3})",
            f"  answers correct {self.correctness:.1%} ({self.correct}), "
            f"wrong {self.wrong}, declined {self.declined}",
            f"  out-of-scope honesty {self.honesty:.1%} ({self.honest}), invented {self.invented}",
            f"  {self.seconds_per_question * 1000:.1f} ms per question",
        ]
        if verbose and self.failures:
            lines.append("  failures:")
            lines += [
                f"    {f.kind:<8} {f.question!r} -> {', '.join(f.retrieved) or '-'}: {f.answer!r}"
                for f in self.failures
            ]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def evaluate_answers(
    answerer: GroundedAnswerer, examples: Iterable[AnswerExample], *, name: str | None = None
) -> AnswerReport:
    """Run ``answerer`` over labelled ``examples`` and gather the figures of the report."""
    examples = list(examples)
    counts = dict.fromkeys(("first", "top3", "correct", "wrong", "honest", "invented"), 0)
    failures: list[AnswerFailure] = []
    elapsed = 0.0
    for example in examples:
        retrieved = tuple(h.passage.id for h in answerer.retrieve(example.question, k=3))
        started = time.perf_counter()
        answer = answerer.answer(example.question)
        elapsed += time.perf_counter() - started
        if not example.in_scope:
            counts["honest" if not answer.confident else "invented"] += 1
            if answer.confident:
                failures.append(AnswerFailure(example.question, "invented", retrieved, answer.text))
            continue
        counts["first"] += bool(retrieved) and retrieved[0] in example.passages
        counts["top3"] += any(p in example.passages for p in retrieved)
        said = answer.text.casefold()
        if answer.confident and all(e.casefold() in said for e in example.expect):
            counts["correct"] += 1
        else:
            kind = "wrong" if answer.confident else "declined"
            counts["wrong"] += answer.confident
            failures.append(AnswerFailure(example.question, kind, retrieved, answer.text))
    in_scope = sum(e.in_scope for e in examples)
    return AnswerReport(
        name=name or str(answerer.retrieval),
        in_scope=in_scope,
        out_of_scope=len(examples) - in_scope,
        found_first=counts["first"],
        found_top3=counts["top3"],
        correct=counts["correct"],
        wrong=counts["wrong"],
        honest=counts["honest"],
        invented=counts["invented"],
        seconds_per_question=elapsed / len(examples) if examples else 0.0,
        failures=failures,
    )


def format_table(reports: Sequence[AnswerReport]) -> str:
    """Several reports side by side, one row each, as a Markdown table."""
    lines = [
        "| retrieval | recall@1 | recall@3 | answers correct | wrong | out-of-scope honesty "
        "| invented | ms/question |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r.name} | {r.recall_at_1:.1%} | {r.recall_at_3:.1%} "
            f"| {r.correctness:.1%} ({r.correct}/{r.in_scope}) | {r.wrong} "
            f"| {r.honesty:.1%} ({r.honest}/{r.out_of_scope}) | {r.invented} "
            f"| {r.seconds_per_question * 1000:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _encoder_timing(questions: Sequence[str]) -> list[str]:
    from kb.embeddings import SentenceEncoder

    started = time.perf_counter()
    encoder = SentenceEncoder()
    encoder.load()
    load = time.perf_counter() - started
    twelve = [q for q in questions if len(q.split()) == 12] or list(questions[:1])
    for q in twelve[:3]:
        encoder.encode([q])  # warm caches and the allocator
    times = []
    for _ in range(20):
        for q in twelve:
            started = time.perf_counter()
            encoder.encode([q])
            times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return [
        f"embedding model load: {load:.2f} s",
        f"encode one {len(twelve[0].split())}-word question: p50 {np.median(ms):.1f} ms, "
        f"p95 {np.percentile(ms, 95):.1f} ms (n={len(ms)})",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the three-way comparison for a labelled examples file; returns the exit status."""
    from kb import DEMO_KB_DIR, KnowledgeBase

    parser = argparse.ArgumentParser(
        prog="python -m kb.evaluation", description="Evaluate KB retrieval and answers."
    )
    parser.add_argument(
        "examples", nargs="?", type=Path, default=ANSWERS_EVAL_FILE,
        help="JSON-lines answer examples (default: the shipped evaluation set)",
    )
    parser.add_argument("--kb", type=Path, default=DEMO_KB_DIR, help="folder of KB documents")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every failure")
    args = parser.parse_args(argv)
    examples = load_answer_examples(args.examples)
    out = _encoder_timing([e.question for e in examples])
    kb = KnowledgeBase.from_directory(args.kb)
    reports = [
        evaluate_answers(GroundedAnswerer(kb, retrieval=mode), examples, name=label)
        for mode, label in ((Retrieval.BM25, "BM25 only"), (Retrieval.EMBEDDINGS, "embeddings only"),
                            (Retrieval.HYBRID, "hybrid"))
    ]
    out += ["", format_table(reports)]
    if args.verbose:
        for report in reports:
            out += report.lines(verbose=True) + [""]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
