"""How lexical (BM25) and semantic (embedding) evidence are combined to rank passages.

Three ways to rank, measured against each other by ``python -m kb.evaluation``:

* ``bm25``: Okapi BM25 over the analysed terms (:mod:`kb.index`).
* ``embeddings``: cosine similarity between the question's and each passage's sentence
  embedding (:mod:`kb.embeddings`).
* ``hybrid`` (the default when embeddings are on): a normalised-score blend,

      score = bm25 / idf weight of the query  +  DENSE_WEIGHT * max(0, cosine - SIMILARITY_FLOOR)

  The BM25 part is the answerer's own normalised score (about 1 when a passage contains every
  question term), so a full lexical match keeps its lead and the embeddings decide where BM25
  is unsure or finds nothing: phrasings without the documents' words and speech-recognition
  slips ("bright line plus"). Cosines below the floor are what unrelated sentences reach with
  this model and add nothing, so a question that matches neither way still gets no hits.

The blend was chosen by measurement (``docs/benchmarks.md``, ``kb/data/answers_eval.jsonl`` and
the phrasings of the unit tests): reciprocal rank fusion forgets how sure BM25 is, and min-max
blends call the best of several poor lexical matches a perfect one; both lost phrasings that
BM25 alone gets right. The weight and floor were set on the same data.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

__all__ = ["DENSE_WEIGHT", "SIMILARITY_FLOOR", "Retrieval", "fuse", "top_indices"]

DENSE_WEIGHT = 0.3
SIMILARITY_FLOOR = 0.3


class Retrieval(StrEnum):
    """Which evidence ranks passages."""

    BM25 = "bm25"
    EMBEDDINGS = "embeddings"
    HYBRID = "hybrid"


def fuse(
    lexical: np.ndarray,
    similarity: np.ndarray,
    *,
    weight: float = DENSE_WEIGHT,
    floor: float = SIMILARITY_FLOOR,
) -> np.ndarray:
    """Hybrid scores from normalised BM25 scores and cosine similarities, one per passage."""
    return lexical + weight * np.maximum(similarity - floor, 0.0)


def top_indices(scores: np.ndarray, k: int, *, positive: bool = True) -> list[int]:
    """Indices of the ``k`` best scores, best first (earlier passages win ties).

    With ``positive`` only scores above zero count: a passage with no evidence is no hit.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in order if not positive or scores[i] > 0]
