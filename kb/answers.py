"""Grounded, extractive answers: what the assistant says, taken word for word from the KB.

No text is generated. The answerer retrieves passages with BM25, decides whether the best one
really answers the question, and if so reads out the one or two sentences of it that match
the question best (about 35 words at most: it is spoken on the phone). When retrieval is not
confident it says so and offers an agent, rather than reading out a near miss.

Confidence needs two things, both normalised so that one threshold fits every question:

* ``score``: the top BM25 score divided by the query's total idf weight. A passage that
  contains every query term once scores about 1; a passage that shares one rare word of a
  long question scores low.
* coverage: the share of the question's idf weight that the top passage contains. Words that
  no document uses ("weather", "flight", "cars") count at the maximum idf, so a question about
  something the KB never mentions is not rescued by one common word it shares with it.

The defaults (score >= 0.5, coverage >= 0.55) were set on the phrasings and off-topic
questions of ``tests/unit/test_answers.py``: KB questions there have coverage >= 0.59 and
off-topic ones <= 0.36. Retune them with those tests when the documents change a lot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.index import Hit, KnowledgeBase, analyze

__all__ = ["DONT_KNOW", "Answer", "GroundedAnswerer"]

DONT_KNOW = (
    "I'm sorry, I don't have information about that. "
    "Would you like me to connect you with an agent?"
)

# Terms that come only from the context (the previous turn) count this much in ranking.
CONTEXT_WEIGHT = 0.5

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\"'])")


@dataclass(frozen=True, slots=True)
class Answer:
    """What to say, where it came from, and whether the knowledge base really answered."""

    text: str
    passage_ids: list[str] = field(default_factory=list)
    confident: bool = False
    score: float = 0.0  # normalised retrieval score, in [0, 1]


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    passage_id: str
    rank: int  # of its passage among the hits, 0 = best
    position: int  # within its passage
    score: float


def split_sentences(text: str) -> list[str]:
    """Sentences of a plain-text passage ("$12.99" and "1.5" do not end one)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


class GroundedAnswerer:
    """Answers questions from a :class:`KnowledgeBase`, or says honestly that it cannot.

    Thread-safe and stateless: build one per process and share it between calls.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        min_score: float = 0.5,
        min_coverage: float = 0.55,
        max_words: int = 35,
        candidates: int = 3,
    ) -> None:
        if not 0.0 <= min_coverage <= 1.0:
            raise ValueError("min_coverage must be between 0 and 1")
        if max_words < 1 or candidates < 1:
            raise ValueError("max_words and candidates must be at least 1")
        self.kb = kb
        self.min_score = min_score
        self.min_coverage = min_coverage
        self.max_words = max_words
        self.candidates = candidates

    def answer(self, question: str, *, context: str | None = None) -> Answer:
        """Answer one caller question.

        ``context`` (the previous question or topic) resolves follow-ups such as "and for plus
        members?": its words help ranking at half weight but never make an answer confident.
        """
        asked = list(dict.fromkeys(analyze(question)))
        if not asked:
            return Answer(DONT_KNOW)
        weights = dict.fromkeys(asked, 1.0)
        if context:
            for term in analyze(context):
                weights.setdefault(term, CONTEXT_WEIGHT)
        hits = self.kb.search_terms(weights, k=self.candidates)
        if not hits:
            return Answer(DONT_KNOW)
        top = hits[0]
        total = sum(self.kb.idf(t) * w for t, w in weights.items())
        score = min(1.0, top.score / total) if total > 0 else 0.0
        coverage = self.kb.coverage(asked, top.passage.id)
        if score < self.min_score or coverage < self.min_coverage:
            return Answer(DONT_KNOW, score=score)
        sentences = self._compose(hits, weights)
        return Answer(
            text=" ".join(s.text for s in sentences),
            passage_ids=list(dict.fromkeys(s.passage_id for s in sentences)),
            confident=True,
            score=score,
        )

    def _compose(self, hits: list[Hit], weights: dict[str, float]) -> list[_Sentence]:
        """The best matching sentence, plus a second one from the same document if it fits."""
        top = hits[0]
        pool: list[_Sentence] = []
        for rank, hit in enumerate(hits):
            if hit.passage.document != top.passage.document or hit.score < 0.6 * top.score:
                continue
            for position, text in enumerate(split_sentences(hit.passage.text)):
                terms = set(analyze(text))
                score = sum(self.kb.idf(t) * w for t, w in weights.items() if t in terms)
                pool.append(_Sentence(text, hit.passage.id, rank, position, score))
        # Best score first; ties go to the better passage, then to the earlier sentence.
        pool.sort(key=lambda s: (-s.score, s.rank, s.position))
        best = pool[0]
        if best.score == 0:  # matched only through the title: read the passage's opening
            best = min(pool, key=lambda s: (s.rank, s.position))
            return [best]
        chosen = [best]
        budget = self.max_words - len(best.text.split())
        for other in pool[1:]:
            if other.score < 0.75 * best.score:
                break
            if len(other.text.split()) <= budget:
                chosen.append(other)
                break
        if len(chosen) == 2 and chosen[0].passage_id == chosen[1].passage_id:
            chosen.sort(key=lambda s: s.position)  # read a passage in its own order
        return chosen
