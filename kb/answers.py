"""Grounded, extractive answers: what the assistant says, taken word for word from the KB.

No text is generated. The answerer retrieves passages (hybrid BM25 + embeddings when the
knowledge base has embeddings, see :mod:`kb.retrieval`), decides whether the best one really
answers the question, and if so reads out the one or two sentences of it that match the
question best (about 35 words at most: it is spoken on the phone). When retrieval is not
confident it says so and offers an agent, rather than reading out a near miss.

Lexical confidence needs two things, both normalised so that one threshold fits every question:

* ``score``: the top BM25 score divided by the query's total idf weight. A passage that
  contains every query term once scores about 1; a passage that shares one rare word of a
  long question scores low.
* coverage: the share of the question's idf weight that the top passage contains. Words that
  no document uses ("weather", "flight", "cars") count at the maximum idf, so a question about
  something the KB never mentions is not rescued by one common word it shares with it.

The defaults (score >= 0.5, coverage >= 0.55) were set on the phrasings and off-topic
questions of ``tests/unit/test_answers.py``: KB questions there have coverage >= 0.59 and
off-topic ones <= 0.36. Retune them with those tests when the documents change a lot.

With embeddings (hybrid retrieval) the cosine similarity between the question and the best
passage adds two rules; their thresholds were set on ``kb/data/answers_eval.jsonl`` and the
phrasings of the unit tests (figures in ``docs/benchmarks.md``):

* support: a lexical match that covers less than ``SURE_COVERAGE`` of the question must also
  be semantically close (similarity >= ``SUPPORT_SIMILARITY``). This drops "is the pharmacy
  open on sunday": "open" and "sunday" match the agent hours, the question is not about them.
  Short idioms that the word lists translate ("my headphones stopped working" -> warranty)
  have full coverage and need no support: their cosine similarity is low.
* rescue: a passage semantically very close to the question (similarity >= ``min_similarity``)
  answers it even when the words differ ("how much is bright line plus a month"), as long as
  it shares some of the question's weight (coverage >= ``RESCUE_COVERAGE``) and the words no
  document knows are not what the question is about: without them, the question must not get
  closer to the passage ("how much does shipping cost at the post office"). Near-domain
  off-topic questions ("can i cancel my gym membership") stay below 0.6 with this model.

Embedding retrieval alone, kept for comparison, is confident at similarity >= ``min_similarity``.

A **topic** (``answer(question, topic=intent)``, hybrid retrieval only) is the caller's intent
when the intent classifier is confident of it ("price_match"). When the rules above find no
answer in the whole knowledge base, the best passage of the documents whose front matter
names that intent (:mod:`kb.markdown`) answers if it passes the topic rule: coverage >=
``TOPIC_COVERAGE`` and similarity >= ``TOPIC_SIMILARITY``, with the same guard on words no
document knows. The classifier has already said what the question is about, so the match only
has to show it is about that document's content: "is my item under warranty" covers 0.33 of
its weight in the warranty passage, too little alone, and was answered "I don't have
information about that". A topic only ever turns "I don't know" into an answer; an answer the
rules above give is the same with or without it. The topic thresholds were set on the
training lines of ``nlu/data/intents_train.jsonl``, never the held-out sets (figures in
``docs/benchmarks.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kb.index import Hit, KnowledgeBase, analyze
from kb.retrieval import Retrieval

__all__ = ["DONT_KNOW", "Answer", "GroundedAnswerer", "Retrieval"]

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
    score: float = 0.0  # normalised retrieval score, in [0, 1] (see GroundedAnswerer.answer)


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

    ``retrieval`` defaults to hybrid when the knowledge base has embeddings and BM25 when it
    has not. Thread-safe and stateless: build one per process and share it between calls.
    """

    # Hybrid confidence (see the module docstring); set on kb/data/answers_eval.jsonl.
    SURE_COVERAGE = 0.75  # a lexical match covering this much needs no semantic support ...
    SUPPORT_SIMILARITY = 0.4  # ... a weaker one needs at least this cosine similarity
    RESCUE_COVERAGE = 0.2  # a semantic match must still share this much of the question
    FOREIGN_SHIFT = 0.05  # ... and must not get this much closer without the unknown words
    TOPIC_COVERAGE = 0.3  # a passage of the caller's topic must share this much of the question
    TOPIC_SIMILARITY = 0.35  # ... and be at least this close to it

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        retrieval: Retrieval | str | None = None,
        min_score: float = 0.5,
        min_coverage: float = 0.55,
        min_similarity: float = 0.6,
        max_words: int = 35,
        candidates: int = 3,
    ) -> None:
        if not 0.0 <= min_coverage <= 1.0:
            raise ValueError("min_coverage must be between 0 and 1")
        if not 0.0 <= min_similarity <= 1.0:
            raise ValueError("min_similarity must be between 0 and 1")
        if max_words < 1 or candidates < 1:
            raise ValueError("max_words and candidates must be at least 1")
        if retrieval is None:
            retrieval = Retrieval.HYBRID if kb.has_embeddings else Retrieval.BM25
        self.retrieval = Retrieval(retrieval)
        if self.retrieval is not Retrieval.BM25 and not kb.has_embeddings:
            raise ValueError(f"{self.retrieval} retrieval needs a knowledge base with embeddings")
        self.kb = kb
        self.min_score = min_score
        self.min_coverage = min_coverage
        self.min_similarity = min_similarity
        self.max_words = max_words
        self.candidates = candidates

    def answer(self, question: str, *, context: str | None = None,
               topic: str | None = None) -> Answer:
        """Answer one caller question.

        ``context`` (the previous question or topic) resolves follow-ups such as "and for plus
        members?": its words help ranking at half weight but never make an answer confident;
        the embeddings look at the question alone. ``topic`` is the caller's intent when the
        classifier is confident of it (see the module docstring); an intent no document names
        changes nothing.

        ``Answer.score`` is the best passage's normalised BM25 score (BM25), its cosine
        similarity (embeddings), or the larger of the two (hybrid).
        """
        asked = list(dict.fromkeys(analyze(question)))
        if not asked:
            return Answer(DONT_KNOW)
        weights = dict.fromkeys(asked, 1.0)
        if context:
            for term in analyze(context):
                weights.setdefault(term, CONTEXT_WEIGHT)
        documents = self.kb.documents_about(topic) if topic else frozenset()
        topical = bool(documents) and self.retrieval is Retrieval.HYBRID
        ranked = self.kb.rank(weights, text=question, retrieval=self.retrieval,
                              k=len(self.kb) if topical else self.candidates)
        if not ranked:
            return Answer(DONT_KNOW)
        hits = ranked[: self.candidates]
        confident, score = self._judge(question, asked, weights, hits[0])
        if confident:
            return self._answer(hits, weights, score)
        on_topic = [h for h in ranked if h.passage.document in documents][: self.candidates]
        if topical and on_topic:
            confident, topic_score = self._judge(question, asked, weights, on_topic[0],
                                                 on_topic=True)
            if confident:
                return self._answer(on_topic, weights, topic_score)
        return Answer(DONT_KNOW, score=score)

    def _judge(self, question: str, asked: list[str], weights: dict[str, float], top: Hit, *,
               on_topic: bool = False) -> tuple[bool, float]:
        """Whether ``top`` answers the question, and its normalised score (see :meth:`answer`);
        ``on_topic``: it is a passage of the caller's topic, so the topic rule may accept it."""
        total = self.kb.query_weight(weights)
        lexical = min(1.0, top.bm25 / total) if total > 0 else 0.0
        similarity = max(0.0, min(1.0, top.similarity)) if top.similarity is not None else 0.0
        coverage = self.kb.coverage(asked, top.passage.id)
        score = {Retrieval.BM25: lexical, Retrieval.EMBEDDINGS: similarity}.get(
            self.retrieval, max(lexical, similarity)
        )
        if self._confident(question, asked, top.passage.id, lexical, coverage, similarity):
            return True, score
        on_topic_match = (on_topic and coverage >= self.TOPIC_COVERAGE
                          and similarity >= self.TOPIC_SIMILARITY
                          and not self._about_unknown_words(question, asked, top.passage.id,
                                                            similarity))
        return on_topic_match, score

    def _answer(self, hits: list[Hit], weights: dict[str, float], score: float) -> Answer:
        sentences = self._compose(hits, weights)
        return Answer(
            text=" ".join(s.text for s in sentences),
            passage_ids=list(dict.fromkeys(s.passage_id for s in sentences)),
            confident=True,
            score=score,
        )

    def retrieve(
        self, question: str, weights: dict[str, float] | None = None, *, k: int | None = None
    ) -> list[Hit]:
        """The ``k`` (default: ``candidates``) best passages for ``question``, ranked as
        :meth:`answer` ranks them; ``weights`` are its analysed terms (default: all at 1)."""
        if weights is None:
            weights = dict.fromkeys(analyze(question), 1.0)
        return self.kb.rank(weights, text=question, k=k or self.candidates, retrieval=self.retrieval)

    def _confident(
        self,
        question: str,
        asked: list[str],
        passage_id: str,
        lexical: float,
        coverage: float,
        similarity: float,
    ) -> bool:
        """Whether the best passage answers the question (the rules of the module docstring)."""
        if self.retrieval is Retrieval.EMBEDDINGS:
            return similarity >= self.min_similarity
        lexical_match = lexical >= self.min_score and coverage >= self.min_coverage
        if self.retrieval is Retrieval.BM25:
            return lexical_match
        if lexical_match and (coverage >= self.SURE_COVERAGE or similarity >= self.SUPPORT_SIMILARITY):
            return True
        return (
            similarity >= self.min_similarity
            and coverage >= self.RESCUE_COVERAGE
            and not self._about_unknown_words(question, asked, passage_id, similarity)
        )

    def _about_unknown_words(
        self, question: str, asked: list[str], passage_id: str, similarity: float
    ) -> bool:
        """Whether the words no document knows are what the question is about.

        Left out, words that only garble the question ("bright line plus") make it less
        similar to the passage; words that change its subject ("shipping cost at the post
        office") make it more similar. Costs one more encoding, only for semantic matches.
        """
        unknown = {t for t in asked if not self.kb.knows(t)}
        if not unknown:
            return False
        kept = " ".join(w for w in question.split() if not set(analyze(w)) & unknown)
        if not kept:
            return True
        return self.kb.similarity(kept, passage_id) - similarity >= self.FOREIGN_SHIFT

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
