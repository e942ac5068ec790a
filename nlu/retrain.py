"""Reviewers' intent corrections folded into the training data, and the classifier retrained.

A reviewer who reads a call can say what a caller turn really meant (``review.labels_api``);
those labels are examples the classifier got wrong or was unsure of, as callers really say
them. ``fold_labels`` adds them to ``intents_train.jsonl``; ``retrain`` trains on the result,
saves ``intent_model.npz`` and measures the held-out accuracy before and after.

    iva nlu retrain [--labels FILE.jsonl] [--dry-run] [--data-dir DIR]

Folding takes the intent labels of caller turns; for each turn the latest label wins, and of
turns with the same words (once normalised) the latest label wins too. A label is then:

- ``empty``           refused: no words once normalised;
- ``redacted``        refused: the text holds a redaction placeholder (``[card]``, ...), which
                      would teach the model words no caller says;
- ``unknown_intent``  refused: not an intent of the training file (new intents are added by
                      hand, with evaluation lines: see ``nlu/data/README.md``);
- ``held_out``        refused: the words are a line of the held-out evaluation set, which must
                      never be trained on (the measured accuracy would lie);
- ``known``           already a training line with that intent: nothing to do;
- ``relabelled``      a training line with those words had another intent: it gets this one;
- ``added``           appended as ``{"text", "intent", "source": "review", "turn_id", "by"}``;
- ``superseded``      a later label covers the same turn or the same words.

Folding is idempotent: the labels folded once are ``known`` the next time.

Errors::

    ValueError
     ├── nlu.classifier.IntentDataError   a data file is unusable
     └── RetrainError                     a labels file is unusable, or the data folder is
                                          not writable
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args

from nlu.classifier import (
    DATA_DIR,
    EVAL_FILE,
    MODEL_FILE,
    TRAIN_FILE,
    IntentClassifier,
    IntentDataError,
    IntentModelError,
    load_examples,
    load_training,
    normalize_utterance,
)
from nlu.evaluation import evaluate_intents

__all__ = [
    "OUTCOMES", "FoldReport", "FoldedLabel", "Outcome", "RetrainError", "RetrainReport",
    "add_nlu_commands", "fold_labels", "main_nlu_retrain", "read_labels", "retrain",
]

Outcome = Literal["added", "relabelled", "known", "held_out", "redacted", "empty",
                  "unknown_intent", "superseded"]
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

# review.redaction's placeholders: [card], [ssn], [email], [phone], [number].
_PLACEHOLDER: Final = re.compile(r"\[[a-z_]+\]")
_OLDEST: Final = datetime.min.replace(tzinfo=UTC)


class RetrainError(ValueError):
    """Labels that cannot be read, or training data that cannot be written."""


@dataclass(frozen=True, slots=True)
class FoldedLabel:
    """What became of one intent label."""

    text: str
    intent: str
    outcome: Outcome
    turn_id: int | None = None
    by: str | None = None
    previous: str | None = None  # relabelled: the intent the training line had


@dataclass(frozen=True, slots=True)
class FoldReport:
    """The fate of every intent label on a caller turn, in the order they were given."""

    labels: tuple[FoldedLabel, ...]
    ignored: int  # labels of another kind, or not on a caller turn
    written: bool  # whether the training file was changed

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for label in self.labels:
            counts[label.outcome] += 1
        return {**counts, "ignored": self.ignored}

    @property
    def changes(self) -> bool:
        """Whether folding adds or relabels anything (written, unless a dry run)."""
        return any(label.outcome in ("added", "relabelled") for label in self.labels)


@dataclass(frozen=True, slots=True)
class RetrainReport:
    """Held-out intent accuracy of the model before and after retraining."""

    before: float | None  # None: there was no usable model to compare with
    after: float
    held_out: int  # evaluation examples
    examples: int  # training examples
    model_path: Path


# ---------------------------------------------------------------------- folding
@dataclass(slots=True)
class _Label:
    text: str
    intent: str
    turn_id: int | None
    by: str | None
    order: tuple[datetime, int]

    def folded(self, outcome: Outcome, previous: str | None = None) -> FoldedLabel:
        return FoldedLabel(self.text, self.intent, outcome, self.turn_id, self.by, previous)


def fold_labels(labels: Iterable[Mapping[str, Any]], *, train_path: Path | str,
                eval_path: Path | str, dry_run: bool = False) -> FoldReport:
    """Fold the intent labels among ``labels`` (``CallRepository.labels()`` rows or lines of
    the ``/api/labels.jsonl`` export) into the training file ``train_path``.

    See the module docstring for what happens to each; ``eval_path`` is the held-out set.
    The file is rewritten in one step (a new file renamed over it) and its other lines are
    kept byte for byte. ``dry_run``: only report. Raises IntentDataError for an unusable data
    file, RetrainError if the training file cannot be written.
    """
    train_path, eval_path = Path(train_path), Path(eval_path)
    candidates, ignored = _intent_labels(labels)
    known_intents = {example.intent for example in load_examples(train_path)}
    held_out = {normalize_utterance(example.text) for example in load_examples(eval_path)}
    lines = train_path.read_text(encoding="utf-8").splitlines()
    records: dict[int, dict[str, Any]] = {}  # line index -> the parsed line
    by_words: dict[str, list[int]] = {}  # normalised words -> the lines that have them
    for index, line in enumerate(lines):
        if line.strip():
            records[index] = json.loads(line)  # load_examples has checked every line
            by_words.setdefault(normalize_utterance(records[index]["text"]), []).append(index)

    results: dict[int, FoldedLabel] = {}  # position in candidates -> what became of it
    latest_of_turn: dict[object, int] = {}
    for position in sorted(range(len(candidates)), key=lambda p: candidates[p].order):
        turn = candidates[position].turn_id
        key = (turn, None) if turn is not None else (None, position)  # no id: a turn of its own
        if key in latest_of_turn:
            superseded = latest_of_turn[key]
            results[superseded] = candidates[superseded].folded("superseded")
        latest_of_turn[key] = position

    latest_of_words: dict[str, int] = {}
    for position in sorted(latest_of_turn.values(), key=lambda p: candidates[p].order):
        label = candidates[position]
        words = normalize_utterance(label.text)
        if not words:
            results[position] = label.folded("empty")
        elif _PLACEHOLDER.search(label.text):
            results[position] = label.folded("redacted")
        elif label.intent not in known_intents:
            results[position] = label.folded("unknown_intent")
        else:
            if words in latest_of_words:
                superseded = latest_of_words[words]
                results[superseded] = candidates[superseded].folded("superseded")
            latest_of_words[words] = position

    changed = False
    for words, position in latest_of_words.items():
        label = candidates[position]
        if words in held_out:
            results[position] = label.folded("held_out")
            continue
        matching = by_words.get(words, [])
        differing = [i for i in matching if records[i]["intent"] != label.intent]
        if matching and not differing:
            results[position] = label.folded("known")
            continue
        provenance = {"source": "review", "turn_id": label.turn_id, "by": label.by}
        if differing:
            results[position] = label.folded("relabelled", records[differing[0]]["intent"])
            for i in differing:
                records[i] = {**records[i], "intent": label.intent, **provenance}
                lines[i] = json.dumps(records[i], ensure_ascii=False)
        else:
            results[position] = label.folded("added")
            lines.append(json.dumps({"text": label.text, "intent": label.intent, **provenance},
                                    ensure_ascii=False))
        changed = True

    if changed and not dry_run:
        _replace_text(train_path, "\n".join(lines) + "\n")
    folded = tuple(results[position] for position in range(len(candidates)))
    return FoldReport(folded, ignored, written=changed and not dry_run)


def _intent_labels(labels: Iterable[Mapping[str, Any]]) -> tuple[list[_Label], int]:
    """The intent labels on caller turns, in the order given, and how many others there were."""
    found: list[_Label] = []
    ignored = 0
    for index, row in enumerate(labels):
        text, intent, turn_id, by = (row.get(key) for key in ("text", "value", "turn_id", "by"))
        if (row.get("kind") != "intent" or row.get("speaker") != "caller"
                or not isinstance(text, str) or not isinstance(intent, str)):
            ignored += 1
            continue
        found.append(_Label(
            text.strip(), intent.strip(),
            turn_id if isinstance(turn_id, int) and not isinstance(turn_id, bool) else None,
            by if isinstance(by, str) else None,
            (_moment(row.get("at")), index)))
    return found, ignored


def _moment(value: object) -> datetime:
    """When a label was given, for ordering; a label without a readable time counts as oldest."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return _OLDEST
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return _OLDEST


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` in one step: a new file beside it, renamed over it."""
    _ensure_writable(path)
    new = _new_file_beside(path, ".tmp")
    try:
        new.write_text(text, encoding="utf-8")
    except OSError as exc:
        new.unlink(missing_ok=True)
        raise RetrainError(f"cannot write {path}: {exc}") from exc
    _install(new, path)


def _new_file_beside(path: Path, suffix: str) -> Path:
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise RetrainError(f"cannot write {path}: {exc}") from exc
    os.close(handle)
    return Path(name)


def _install(new: Path, path: Path) -> None:
    """Rename ``new`` over ``path``, with ``path``'s permissions if it exists."""
    try:
        if path.exists():
            shutil.copymode(path, new)
        else:  # a temporary file is private; the data is not
            new.chmod(0o644)
        os.replace(new, path)
    except OSError as exc:
        new.unlink(missing_ok=True)
        raise RetrainError(f"cannot write {path}: {exc}") from exc


def _ensure_writable(path: Path) -> None:
    folder = path.parent
    if os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK)):
        return
    raise RetrainError(
        f"cannot write {path}: {folder} is not writable (an installed package's data folder"
        f" usually is not). Copy {DATA_DIR} to a folder of your own and pass --data-dir.")


# ---------------------------------------------------------------------- retraining
def retrain(data_dir: Path | str = DATA_DIR, *,
            previous: IntentClassifier | None = None) -> RetrainReport:
    """Train on ``data_dir``'s ``intents_train.jsonl`` (and ``intents_train_asr.jsonl``, the
    recogniser's transcripts of its lines, when there), save ``intent_model.npz`` there and
    measure both models on the held-out set (``data_dir``'s ``intents_eval.jsonl``, else the
    shipped one).

    ``previous`` is the model to compare with: pass the one in use before the training file
    changed (``IntentClassifier.default(data_dir=...)`` taken before fold_labels). By default
    it is what ``default`` gives now, which equals the new model if the file has changed
    since the model file was saved.
    """
    data_dir = Path(data_dir)
    model_path = data_dir / MODEL_FILE.name
    _ensure_writable(model_path)
    if previous is None:
        try:
            previous = IntentClassifier.default(data_dir=data_dir)
        except IntentModelError:  # a corrupt model file (the service could not start either)
            previous = None
    examples, digest = load_training(data_dir)  # with intents_train_asr.jsonl when present
    from kb.embeddings import shared_encoder

    model = IntentClassifier.train(examples, training_digest=digest, encoder=shared_encoder())
    new = _new_file_beside(model_path, ".npz")  # save() adds .npz to a name without it
    try:
        model.save(new)
    except OSError as exc:
        new.unlink(missing_ok=True)
        raise RetrainError(f"cannot write {model_path}: {exc}") from exc
    _install(new, model_path)
    held_out = load_examples(_eval_path(data_dir))
    after = evaluate_intents(model, held_out).accuracy
    before = None if previous is None else evaluate_intents(previous, held_out).accuracy
    return RetrainReport(before=before, after=after, held_out=len(held_out),
                         examples=len(examples), model_path=model_path)


def _eval_path(data_dir: Path) -> Path:
    own = data_dir / EVAL_FILE.name
    return own if own.is_file() else EVAL_FILE


# ---------------------------------------------------------------------- the command
def read_labels(path: Path | str) -> list[dict[str, Any]]:
    """The labels of a ``/api/labels.jsonl`` export (blank lines skipped)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise RetrainError(f"cannot read labels file {path}: {exc}") from exc
    labels = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            label = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RetrainError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(label, dict):
            raise RetrainError(f"{path}:{number}: expected a JSON object (a label)")
        labels.append(label)
    return labels


def add_nlu_commands(subparsers: Any) -> None:
    """Add ``nlu retrain`` to the ``iva`` command's subparsers."""
    nlu = subparsers.add_parser(
        "nlu", help="intent training data commands (retrain)",
        description="Manage what the intent classifier learns from.")
    nlu_sub = nlu.add_subparsers(dest="nlu_command", required=True, metavar="NLU_COMMAND")
    command = nlu_sub.add_parser(
        "retrain", help="fold reviewers' intent labels into the training data and retrain",
        description="Read the intent labels reviewers gave caller turns (from the call store:"
        " IVA_DATABASE_URL or the SQLite file under IVA_DATA_DIR; or from a /api/labels.jsonl"
        " export), add them to intents_train.jsonl (never to the held-out evaluation set;"
        " texts with redaction placeholders are skipped), retrain the classifier, save"
        " intent_model.npz and print the held-out accuracy before and after. `iva eval nlu`"
        " shows the details.")
    command.add_argument("--labels", type=Path, metavar="FILE.jsonl", default=None,
                         help="read the labels from this export instead of the call store")
    command.add_argument("--dry-run", action="store_true",
                         help="only report what would be folded: write and train nothing")
    command.add_argument("--data-dir", type=Path, metavar="DIR", default=None,
                         help=f"the folder of intents_train.jsonl and intent_model.npz"
                              f" (default the shipped {DATA_DIR}); it must be writable")
    command.set_defaults(func=main_nlu_retrain)


def main_nlu_retrain(args: argparse.Namespace) -> int:
    """``iva nlu retrain``: 0 done (or nothing to do), 1 it could not run, 2 bad configuration."""
    data_dir = Path(args.data_dir) if args.data_dir is not None else DATA_DIR
    train_path = data_dir / TRAIN_FILE.name
    if not train_path.is_file():
        return _fail(f"no training file {train_path}: --data-dir must name a folder holding"
                     f" a copy of {DATA_DIR}", status=2)
    eval_path = _eval_path(data_dir)
    try:
        if not args.dry_run:
            _ensure_writable(train_path)
            _ensure_writable(data_dir / MODEL_FILE.name)
        labels = read_labels(args.labels) if args.labels is not None else _stored_labels()
        report = fold_labels(labels, train_path=train_path, eval_path=eval_path, dry_run=True)
        sys.stdout.write(_format_fold(report))
        if args.dry_run:
            sys.stdout.write("dry run: nothing written, nothing retrained\n")
            return 0
        if not report.changes:
            sys.stdout.write(f"{train_path} unchanged: nothing to retrain\n")
            return 0
        previous = IntentClassifier.default(data_dir=data_dir)  # the model before the change
        fold_labels(labels, train_path=train_path, eval_path=eval_path)
    except _ConfigurationError as exc:
        return _fail(str(exc), status=2)
    except (RetrainError, IntentDataError, IntentModelError, OSError) as exc:
        return _fail(str(exc))
    try:
        result = retrain(data_dir, previous=previous)
    except (RetrainError, IntentDataError, OSError) as exc:
        return _fail(str(exc))
    before = "no earlier model" if result.before is None else f"{result.before:.1%}"
    sys.stdout.write(
        f"{train_path}: {result.examples} examples\n"
        f"held-out intent accuracy: {before} -> {result.after:.1%} ({result.held_out} examples)\n"
        f"model saved to {result.model_path}; `iva eval nlu` shows the details\n")
    return 0


class _ConfigurationError(Exception):
    pass


def _stored_labels() -> list[dict[str, Any]]:
    """The intent labels of the configured call store."""
    from review.records import StoreError
    from review.repository import describe_database, open_store
    from voice.settings import load_settings

    try:
        settings = load_settings()
    except (ValueError, FileNotFoundError) as exc:  # pydantic's ValidationError is a ValueError
        raise _ConfigurationError(f"bad configuration:\n{exc}") from exc
    url, path = settings.database_url, Path(settings.database_file)
    if not (url or "").strip() and not path.is_file():
        raise RetrainError(f"no call store at {path} (IVA_DATA_DIR); nothing to read labels"
                           " from. Use --labels FILE.jsonl for an export.")
    try:
        with open_store(url, path) as store:
            return store.labels(kind="intent")
    except StoreError as exc:
        raise RetrainError(f"{describe_database(url, path)}: {exc}") from exc


def _format_fold(report: FoldReport) -> str:
    counts = report.counts
    lines = [f"{len(report.labels)} intent label(s) on caller turns"
             f" ({report.ignored} other label(s) ignored)"]
    lines += [f"  {outcome.replace('_', ' '):<15}{counts[outcome]:>5}" for outcome in OUTCOMES]
    for label in report.labels:
        who = f" (turn {label.turn_id}, by {label.by})" if label.turn_id is not None else ""
        if label.outcome == "added":
            lines.append(f"  + {label.intent}: {label.text!r}{who}")
        elif label.outcome == "relabelled":
            lines.append(f"  ~ {label.previous} -> {label.intent}: {label.text!r}{who}")
    return "\n".join(lines) + "\n"


def _fail(message: str, *, status: int = 1) -> int:
    sys.stderr.write(f"iva nlu retrain: {message}\n")
    return status
