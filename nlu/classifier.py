"""Intent classification with calibrated confidence, trained from labelled example files.

A caller turn's text, as the ASR heard it, goes in; an :class:`IntentPrediction` comes out:
the most likely intent, a confidence that means what it says, and the ranking of all intents.
The labels are whatever the training file uses (``nlu/data/README.md`` documents them).

The model is multinomial logistic regression over features of three kinds: TF-IDF of word uni-
and bigrams (what was said), TF-IDF of character 3- to 5-grams across word boundaries (which
survive ASR slips such as "bright line plus" or "member ship"), and, when trained with a
sentence encoder (the MiniLM model that kb/ uses for retrieval, ``kb/embeddings.py``), the
utterance's 384-dimensional sentence embedding, which carries what was meant to paraphrases the
examples never spelt out ("terminate the subscription" near "cancel my membership"). It learns
from the written examples and, when that optional file is there, from the recogniser's
transcripts of them over a phone line (:func:`load_training`, ``nlu/asr_examples.py``). Written
in numpy: a model file holds plain arrays (``.npz``, loaded without pickle). Training the shipped
examples takes a second or two for the n-grams alone and 15-50 s with the encoder (encoding
them is most of it), which is why the trained model ships as ``nlu/data/intent_model.npz``.

Training runs in the dual: with L2 regularisation the weights are a combination of the training
vectors, ``W = Xᵀ A``, so accelerated gradient descent on ``W`` runs exactly on the small
``n × n`` Gram matrix instead of the wide feature matrix. The same matrix serves the
cross-validation folds, whose out-of-fold scores fit one temperature that divides the final
model's logits (temperature scaling): a confidence of 0.9 should be right nine times in ten.

A spoken turn can come with the recogniser's other hypotheses (:meth:`IntentClassifier.predict_heard`):
the prediction is then the average of each hypothesis' probabilities, weighted by how likely the
recogniser found it (a softmax of its log-probability per token over :data:`HYPOTHESIS_SPREAD`).
A word the best hypothesis garbled may be right in the next ("what's not that fresh shipping
card" / "well done, express shipping card"), and hypotheses that point to different intents
lower the confidence, so the assistant asks instead of acting on a mishearing.

Errors::

    ValueError
     ├── IntentDataError    an examples file or list is unusable
     └── IntentModelError   a model file is missing, corrupt or of another format version
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = [
    "ASR_TRAIN_FILE", "DATA_DIR", "EMBEDDING_WEIGHT", "EVAL_FILE", "HYPOTHESIS_FLOOR",
    "HYPOTHESIS_SPREAD", "MODEL_FILE", "TRAIN_FILE",
    "Encoder", "Example",
    "IntentClassifier", "IntentDataError", "IntentModelError", "IntentPrediction",
    "load_examples", "load_training", "normalize_utterance",
]

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
TRAIN_FILE = DATA_DIR / "intents_train.jsonl"
# The training lines as the recogniser heard them through a phone line (nlu/asr_examples.py).
ASR_TRAIN_FILE = DATA_DIR / "intents_train_asr.jsonl"
EVAL_FILE = DATA_DIR / "intents_eval.jsonl"
MODEL_FILE = DATA_DIR / "intent_model.npz"

_FORMAT_VERSION = 2
_CHAR_NGRAMS = (3, 5)
_BLOCK_WEIGHTS = (1.0, 1.0)  # words, characters: each block is L2-normalised, then weighted
# The sentence embedding's weight beside the two unit-length n-gram blocks (its vectors have
# unit length too): in the Gram matrix, X Xᵀ + EMBEDDING_WEIGHT · E Eᵀ. Chosen among 0.3, 0.5,
# 1 and 2 (docs/benchmarks.md): cross-validated accuracy rises with it, accuracy on recogniser
# transcripts falls above 0.5.
EMBEDDING_WEIGHT = 0.5
# How far apart (in log-probability per token) two recogniser hypotheses may be and still both
# count: weights are softmax(score / HYPOTHESIS_SPREAD); below HYPOTHESIS_FLOOR a hypothesis is
# dropped (it would not change the answer, and each one costs an encoding). Chosen on a dev split
# of the training lines (docs/benchmarks.md, "The recogniser's hypotheses").
HYPOTHESIS_SPREAD = 0.2
HYPOTHESIS_FLOOR = 0.05

_SparseRow = tuple[np.ndarray, np.ndarray]  # one utterance's feature indices and values
_SparseRows = Sequence[_SparseRow]


class IntentDataError(ValueError):
    """An examples file or list cannot be used for training or evaluation."""


class IntentModelError(ValueError):
    """A model file is missing, unreadable or was written by another format version."""


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled utterance; ``heard_from`` is the written line it is a transcript of, for
    the recogniser's copies in ``intents_train_asr.jsonl`` (see :meth:`IntentClassifier.train`)."""

    text: str
    intent: str
    heard_from: str | None = None


@dataclass(frozen=True, slots=True)
class IntentPrediction:
    """The classifier's answer: the top intent, its calibrated probability, and all intents."""

    intent: str
    confidence: float
    ranking: list[tuple[str, float]]


_APOSTROPHES = re.compile(r"['\u2018\u2019`]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def normalize_utterance(text: str) -> str:
    """Lowercase ASCII words separated by single spaces, as used at training and predict time.

    Accents are dropped, apostrophes removed ("what's" → "whats"), any other punctuation
    becomes a space ("ORD-1001" → "ord 1001"); digits stay digits and spoken numbers stay words.
    """
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(_NOT_WORD.sub(" ", _APOSTROPHES.sub("", text.lower())).split())


def _word_features(text: str) -> Counter[str]:
    words = text.split()
    padded = ["<s>", *words, "</s>"]
    feats = Counter(f"w:{w}" for w in words)
    feats.update(f"w:{a} {b}" for a, b in zip(padded, padded[1:], strict=False))
    return feats


def _char_features(text: str) -> Counter[str]:
    padded, (low, high) = f" {text} ", _CHAR_NGRAMS
    return Counter(
        f"c:{padded[i:i + n]}" for n in range(low, high + 1) for i in range(len(padded) - n + 1)
    )


def _tfidf(text: str, index: dict[str, int], idf: np.ndarray, unseen: float) -> _SparseRow:
    """Feature indices and TF-IDF values of normalised ``text``, each block L2-normalised.

    Features the model never saw carry no weight but still count in the norm (as if as rare
    as the rarest training feature): an utterance made mostly of unknown words keeps its known
    features small, so its scores stay near the prior instead of resting on one familiar word.
    Cross-validation scores held-out examples the same way, so calibration sees this too.
    """
    indices: list[int] = []
    values: list[np.ndarray] = []
    blocks = (_word_features(text), _char_features(text))
    for counts, weight in zip(blocks, _BLOCK_WEIGHTS, strict=True):
        known: list[tuple[int, int]] = []
        unknown_sq = 0.0
        for feature, count in counts.items():
            i = index.get(feature)
            if i is None:
                unknown_sq += ((1.0 + math.log(count)) * unseen) ** 2
            else:
                known.append((i, count))
        if known:
            idx = np.array([i for i, _ in known])
            vec = (1.0 + np.log(np.array([c for _, c in known], dtype=np.float64))) * idf[idx]
            indices.extend(idx.tolist())
            values.append(weight * vec / math.sqrt(float(vec @ vec) + unknown_sq))
    if not indices:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.array(indices), np.concatenate(values)


def load_examples(path: Path | str) -> list[Example]:
    """Read a JSON-lines file of ``{"text": ..., "intent": ...}`` objects (blank lines skipped);
    a ``"said"`` key, the line a transcript was heard from, becomes ``heard_from``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise IntentDataError(f"cannot read examples file {path}: {exc}") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            text, intent, said = record["text"], record["intent"], record.get("said")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise IntentDataError(f"{path}:{number}: expected {{'text', 'intent'}}") from exc
        if not isinstance(text, str) or not isinstance(intent, str) or not intent:
            raise IntentDataError(f"{path}:{number}: text and intent must be strings")
        if said is not None and not isinstance(said, str):
            raise IntentDataError(f"{path}:{number}: said must be a string")
        examples.append(Example(text, intent, said))
    return examples


def load_training(data_dir: Path | str = DATA_DIR) -> tuple[list[Example], str]:
    """The training examples of ``data_dir`` and the sha256 digest that names them.

    They are ``intents_train.jsonl`` followed by ``intents_train_asr.jsonl`` when that file
    exists (optional: ``nlu/asr_examples.py`` makes it). Without it the digest is the training
    file's own, as models saved before the second file existed recorded it. A transcript of an
    intent the training file does not have is refused: intents are added by hand.
    """
    files = [Path(data_dir) / TRAIN_FILE.name, Path(data_dir) / ASR_TRAIN_FILE.name]
    if not files[1].exists():
        files.pop()
    contents = []
    for path in files:
        try:
            contents.append(path.read_bytes())
        except OSError as exc:
            raise IntentDataError(f"cannot read examples file {path}: {exc}") from exc
    written = load_examples(files[0])
    heard = load_examples(files[1]) if len(files) > 1 else []
    intents = {e.intent for e in written}
    for number, example in enumerate(heard, start=1):
        if example.intent not in intents:
            raise IntentDataError(f"{files[1]}:{number}: intent {example.intent!r} is not one "
                                  f"of {files[0].name}'s")
    return [*written, *heard], hashlib.sha256(b"\n".join(contents)).hexdigest()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _fit_dual(
    gram: np.ndarray, y: np.ndarray, n_labels: int, *, l2: float, iterations: int
) -> np.ndarray:
    """Dual coefficients ``A`` of L2-regularised softmax regression, ``W = Xᵀ A``.

    Nesterov-accelerated gradient descent with adaptive restart on ``gram = X Xᵀ`` (bias
    feature included): each update is the exact primal step mapped back.
    """
    n = gram.shape[0]
    targets = np.eye(n_labels)[y]
    gram32 = gram.astype(np.float32)  # the one product per step; single precision halves its cost
    # Step 1/L: softmax curvature is at most ½, so L ≤ λmax(X Xᵀ) / 2n + l2.
    v = np.ones(n)
    for _ in range(30):  # power iteration towards the top eigenvector
        v = gram @ v
        v /= np.linalg.norm(v)
    step = 1.0 / (1.05 * float(v @ gram @ v) / (2 * n) + l2)
    coef = previous = np.zeros((n, n_labels))
    scores = scores_previous = np.zeros((n, n_labels))  # gram @ coef, kept up to date
    t = 1.0
    for _ in range(iterations):
        t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
        momentum = (t - 1) / t_next
        look = coef + momentum * (coef - previous)
        look_scores = scores + momentum * (scores - scores_previous)
        grad = (_softmax(look_scores) - targets) / n + l2 * look
        previous, scores_previous = coef, scores
        coef = look - step * grad
        scores = look_scores - step * (gram32 @ grad.astype(np.float32))
        # Restart the momentum when the step went uphill (inner product in weight space).
        t = 1.0 if float(np.sum(grad * (scores - scores_previous))) > 0 else t_next
    return coef


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``softmax(logits / T)``."""

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))

    return math.exp(min(np.linspace(-3.0, 3.0, 301), key=nll))  # log T in steps of 0.02


def _build_vocabulary(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Every feature seen in training, with its smoothed inverse document frequency."""
    df: Counter[str] = Counter()
    for text in texts:
        df.update(_word_features(text).keys())
        df.update(_char_features(text).keys())
    vocabulary = sorted(df)
    counts = np.array([df[f] for f in vocabulary], dtype=np.float64)
    return vocabulary, np.log((1 + len(texts)) / (1 + counts)) + 1.0


def _by_feature(rows: _SparseRows) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The non-zeros as (row, column, value) sorted by column, and where each column starts."""
    row_of = np.concatenate([np.full(len(idx), r) for r, (idx, _) in enumerate(rows)])
    cols = np.concatenate([idx for idx, _ in rows])
    vals = np.concatenate([v for _, v in rows])
    order = np.argsort(cols, kind="stable")
    row_of, cols, vals = row_of[order], cols[order], vals[order]
    return row_of, cols, vals, np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])


def _gram(rows: _SparseRows) -> np.ndarray:
    """``X Xᵀ``, summed over the pairs of rows sharing each feature (a few million at most).

    Features held by the same number of rows are done in one broadcast.
    """
    n = len(rows)
    row_of, cols, vals, starts = _by_feature(rows)
    holders = np.diff(np.r_[starts, len(cols)])
    pair_index, pair_value = [], []
    for d in np.unique(holders):
        take = starts[holders == d][:, None] + np.arange(d)
        r, v = row_of[take], vals[take]
        pair_index.append((r[:, :, None] * n + r[:, None, :]).ravel())
        pair_value.append((v[:, :, None] * v[:, None, :]).ravel())
    flat = np.bincount(np.concatenate(pair_index), np.concatenate(pair_value), minlength=n * n)
    return flat.reshape(n, n)


def _primal_weights(rows: _SparseRows, coef: np.ndarray, n_features: int) -> np.ndarray:
    """``W = Xᵀ A``: each feature's weights sum its rows' dual coefficients, scaled by value."""
    row_of, cols, vals, starts = _by_feature(rows)
    weights = np.zeros((n_features, coef.shape[1]))
    weights[cols[starts]] = np.add.reduceat(vals[:, None] * coef[row_of], starts, axis=0)
    return weights


def _groups(examples: Sequence[Example]) -> np.ndarray:
    """For each example the index of the written line it belongs with: its own for a written
    line, its line's for a transcript (its own when that line is not among ``examples``)."""
    first: dict[str, int] = {}
    for i, e in enumerate(examples):
        if e.heard_from is None:
            first.setdefault(e.text, i)
    return np.array([first.get(e.heard_from, i) if e.heard_from is not None else i
                     for i, e in enumerate(examples)], dtype=np.int64)


def _stratified_folds(y: np.ndarray, group: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold number per example: each label's groups (a written line and the transcripts
    heard from it) dealt round-robin after a shuffle, so no fold trains on a copy of a line it
    holds out."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        leaders = rng.permutation(np.unique(group[y == label]))
        fold_of[leaders] = np.arange(len(leaders)) % folds
    return fold_of[group]


class Encoder(Protocol):
    """Sentence embeddings: unit vectors, one row per text (``kb.embeddings.SentenceEncoder``)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class IntentClassifier:
    """A trained intent model; build one with :meth:`train`, :meth:`load` or :meth:`default`.

    Immutable after construction, so one instance can serve every call in a process.
    """

    def __init__(
        self, *, labels: Sequence[str], vocabulary: Sequence[str], idf: np.ndarray,
        weights: np.ndarray, bias: np.ndarray, temperature: float, training_digest: str = "",
        embedding_weights: np.ndarray | None = None, encoder: Encoder | None = None,
    ) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        self.temperature = float(temperature)
        self.training_digest = training_digest  # sha256 of the examples file it was trained on
        self._vocabulary = list(vocabulary)
        self._index = {feature: i for i, feature in enumerate(self._vocabulary)}
        self._idf = np.asarray(idf, dtype=np.float64)
        self._unseen_idf = float(self._idf.max()) if len(self._idf) else 1.0
        self._weights = np.asarray(weights, dtype=np.float32)
        self._bias = np.asarray(bias, dtype=np.float64)
        if self._weights.shape != (len(self._vocabulary), len(self.labels)):
            raise IntentModelError("weights do not match the vocabulary and labels")
        # (384, labels) weights of the sentence embedding, EMBEDDING_WEIGHT folded in; None for
        # an n-gram-only model (trained without an encoder).
        self._embedding_weights = (None if embedding_weights is None or not embedding_weights.size
                                   else np.asarray(embedding_weights, dtype=np.float32))
        if self._embedding_weights is not None:
            if self._embedding_weights.shape[1] != len(self.labels):
                raise IntentModelError("embedding weights do not match the labels")
            if encoder is None:
                from kb.embeddings import shared_encoder
                encoder = shared_encoder()
        self._encoder = encoder

    @property
    def uses_embeddings(self) -> bool:
        """Whether the model reads sentence embeddings (else word and character n-grams only)."""
        return self._embedding_weights is not None

    @classmethod
    def train(
        cls, examples: Iterable[Example], *, l2: float = 1e-4, iterations: int = 150,
        folds: int = 5, seed: int = 0, training_digest: str = "", encoder: Encoder | None = None,
    ) -> IntentClassifier:
        """Fit the model and calibrate its confidence by ``folds``-fold cross-validation.

        With an ``encoder`` the model also reads sentence embeddings (:data:`EMBEDDING_WEIGHT`);
        encoding the examples is most of the training time then (about 15 s for the shipped
        ones on two cores). Without one it is an n-gram model, trained in a second or two.

        A transcript (an example with ``heard_from``) falls in the same fold as its written
        line: scored by a model that had learnt a near-copy of it, a held-out line would look
        easier than a new caller's words, and the temperature would come out overconfident.
        """
        started = time.perf_counter()
        examples = list(examples)
        texts = [normalize_utterance(e.text) for e in examples]
        labels = sorted({e.intent for e in examples})
        if len(labels) < 2:
            raise IntentDataError("training needs examples of at least two intents")
        if not all(texts):
            raise IntentDataError("an example has no words once normalised")
        y = np.array([labels.index(e.intent) for e in examples])

        vocabulary, idf = _build_vocabulary(texts)
        index = {feature: i for i, feature in enumerate(vocabulary)}
        rows = [_tfidf(t, index, idf, float(idf.max())) for t in texts]
        gram = _gram(rows) + 1.0  # + 1: the constant bias feature
        embedded = None
        if encoder is not None:
            embedded = encoder.encode([e.text for e in examples]).astype(np.float64)
            gram += EMBEDDING_WEIGHT * (embedded @ embedded.T)

        def fit(train: np.ndarray) -> np.ndarray:
            return _fit_dual(gram[np.ix_(train, train)], y[train], len(labels), l2=l2,
                             iterations=iterations)

        fold_of = _stratified_folds(y, _groups(examples), folds, seed)
        held_out = np.zeros((len(y), len(labels)))
        for fold in range(folds):
            train, test = fold_of != fold, fold_of == fold
            held_out[test] = gram[np.ix_(test, train)] @ fit(train)
        temperature = _fit_temperature(held_out, y)

        coef = fit(np.ones(len(y), dtype=bool))
        model = cls(
            labels=labels, vocabulary=vocabulary, idf=idf,
            weights=_primal_weights(rows, coef, len(vocabulary)), bias=coef.sum(axis=0),
            temperature=temperature, training_digest=training_digest,
            embedding_weights=(None if embedded is None
                               else EMBEDDING_WEIGHT * (embedded.T @ coef)),
            encoder=encoder,
        )
        log.info(
            "trained intent model: %d examples, %d intents, %d n-gram features%s, "
            "cross-validated accuracy %.3f, temperature %.2f, %.2f s", len(y), len(labels),
            len(vocabulary), " + sentence embeddings" if embedded is not None else "",
            np.mean(held_out.argmax(axis=1) == y), temperature, time.perf_counter() - started,
        )
        return model

    def probabilities(self, text: str) -> np.ndarray:
        """Calibrated probabilities of every label (in :attr:`labels` order) for ``text``."""
        return self._probabilities_of([text])[0]

    def _probabilities_of(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`probabilities` of each text, one row each; the sentence encoder runs once."""
        out = np.full((len(texts), len(self.labels)), 1.0 / len(self.labels))
        said = [(row, words) for row, words in enumerate(map(normalize_utterance, texts)) if words]
        if not said:  # nothing said (or only punctuation): no intent is likelier than another
            return out
        logits = np.empty((len(said), len(self.labels)))
        for n, (_, words) in enumerate(said):
            indices, values = _tfidf(words, self._index, self._idf, self._unseen_idf)
            logits[n] = self._bias + values @ self._weights[indices]
        if self._embedding_weights is not None and self._encoder is not None:
            logits += self._encoder.encode([texts[row] for row, _ in said]) @ self._embedding_weights
        out[[row for row, _ in said]] = _softmax(logits / self.temperature)
        return out

    def predict(self, text: str) -> IntentPrediction:
        """The most likely intent of one caller turn, with its calibrated confidence."""
        return self._prediction(self.probabilities(text))

    def predict_heard(self, hypotheses: Sequence[tuple[str, float]]) -> IntentPrediction:
        """The intent of a spoken turn from the recogniser's hypotheses, ``(text, log-probability
        per token)`` best first: their probabilities averaged, weighted by how likely each was
        heard (module docstring). Hypotheses that differ only in case or punctuation count as one."""
        if not hypotheses:
            raise ValueError("predict_heard needs at least one hypothesis")
        scores = np.array([score for _, score in hypotheses], dtype=np.float64)
        weights = np.exp((scores - scores.max()) / HYPOTHESIS_SPREAD)
        merged: dict[str, tuple[str, float]] = {}  # normalised words -> (first text, weight)
        for (text, _), weight in zip(hypotheses, weights / weights.sum(), strict=True):
            key = normalize_utterance(text)
            first, total = merged.get(key, (text, 0.0))
            merged[key] = (first, total + float(weight))
        kept = [(text, weight) for text, weight in merged.values() if weight >= HYPOTHESIS_FLOOR]
        weight_of = np.array([weight for _, weight in kept])
        probs = weight_of / weight_of.sum() @ self._probabilities_of([text for text, _ in kept])
        return self._prediction(probs)

    def _prediction(self, probs: np.ndarray) -> IntentPrediction:
        ranking = [(self.labels[i], float(probs[i])) for i in np.argsort(-probs, kind="stable")]
        return IntentPrediction(ranking[0][0], ranking[0][1], ranking)

    def save(self, path: Path | str) -> None:
        """Write the model as a compressed ``.npz`` of plain arrays (readable without pickle)."""
        np.savez_compressed(
            Path(path), format_version=np.array(_FORMAT_VERSION), labels=np.array(self.labels),
            vocabulary=np.array(self._vocabulary), idf=self._idf, weights=self._weights,
            bias=self._bias, temperature=np.array(self.temperature),
            training_digest=np.array(self.training_digest),
            embedding_weights=(np.zeros((0, len(self.labels)), dtype=np.float32)
                               if self._embedding_weights is None else self._embedding_weights),
        )

    @classmethod
    def load(cls, path: Path | str, *, encoder: Encoder | None = None) -> IntentClassifier:
        """Read a model written by :meth:`save`; one that reads sentence embeddings uses
        ``encoder`` (default: the process's shared MiniLM encoder, loaded on first use)."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                if (version := int(data["format_version"])) != _FORMAT_VERSION:
                    raise IntentModelError(f"{path}: model format {version}; retrain it")
                return cls(
                    labels=[str(s) for s in data["labels"]],
                    vocabulary=[str(s) for s in data["vocabulary"]],
                    idf=data["idf"], weights=data["weights"], bias=data["bias"],
                    temperature=float(data["temperature"]),
                    training_digest=str(data["training_digest"]),
                    embedding_weights=data["embedding_weights"], encoder=encoder,
                )
        except IntentModelError:
            raise
        except (OSError, KeyError, ValueError) as exc:
            raise IntentModelError(f"cannot load intent model {path}: {exc}") from exc

    @classmethod
    def default(cls, *, data_dir: Path | str = DATA_DIR) -> IntentClassifier:
        """The model of the shipped examples: ``intent_model.npz`` if it matches them, else trained.

        The examples are those of :func:`load_training`. A model file counts only if trained on
        exactly the current files, so edited examples never leave a stale model in use. Call
        once per process and share it.
        """
        model_file = Path(data_dir) / MODEL_FILE.name
        examples, digest = load_training(data_dir)
        if model_file.exists():
            model = cls.load(model_file)
            if model.training_digest == digest:
                return model
            log.info("%s was trained on other examples; retraining (iva nlu retrain saves "
                     "the model, so the next start does not have to)", model_file)
        from kb.embeddings import shared_encoder

        return cls.train(examples, training_digest=digest, encoder=shared_encoder())
