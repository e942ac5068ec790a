"""Passages and their retrieval over the Markdown knowledge base: BM25, embeddings, or both.

A document is one Markdown file: a ``# Title``, optional ``## Section`` headings and short
paragraphs, and optional front matter naming the caller intents it answers (:mod:`kb.markdown`).
Each paragraph (or list) becomes a :class:`Passage` whose id is the file stem and its position,
``"returns#2"``; the title and section are indexed with it as context, so a paragraph that
never names its topic is still found by it.

Callers speak, they do not type: queries come from speech recognition in lower case with
little punctuation and in everyday words. :func:`analyze` turns documents and queries into the
same terms: it lowercases, drops punctuation and stop words, rewrites a small table of phone
phrasings ("send it back" -> return, "money back" -> refund, "delivery" -> shipping,
"membership" -> plus, "what time" -> hours, ...) and strips common suffixes.

With ``embeddings=True`` (the default) every passage is also embedded once, at build time, with
the sentence encoder of :mod:`kb.embeddings` (title, section and text, as BM25 indexes them), and
:meth:`KnowledgeBase.search` ranks by the hybrid blend of :mod:`kb.retrieval`. Embeddings
catch what the word lists cannot: phrasings without the documents' words and speech
recognition slips. ``embeddings=False`` gives BM25 alone, without loading the model.

Exceptions::

    KnowledgeBaseError      the folder is missing or empty, a document cannot be read, or the
                            embedding model is missing (set ``IVA_KB_EMBEDDINGS=false``)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.markdown import Passage, split_passages
from kb.retrieval import Retrieval, fuse, top_indices

if TYPE_CHECKING:
    from kb.embeddings import SentenceEncoder

__all__ = [
    "Hit", "KnowledgeBase", "KnowledgeBaseError", "Passage", "Retrieval", "analyze", "split_passages",
]


class KnowledgeBaseError(Exception):
    """The knowledge base folder is missing or empty, or one of its documents is unusable."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage returned by a search, with the score that ranked it (higher is better).

    ``score`` is the BM25 score for BM25 retrieval, the cosine similarity for embedding
    retrieval and the blend of :func:`kb.retrieval.fuse` for hybrid retrieval; ``bm25`` and
    ``similarity`` keep the evidence behind it (``similarity`` is None without embeddings).
    """

    passage: Passage
    score: float
    bm25: float = 0.0
    similarity: float | None = None


# --- text analysis -------------------------------------------------------------------------

_FUNCTION_WORDS = """
    a about after again all also am an and any anything are as at be been before being but by
    can cant could did didnt do does doesnt dont either for from get gets getting got had has
    have having he her here hers him his how i id if ill im in is isnt it its ive just let lets
    like me mine more most much my no nor not of off on once only or other our ours out over
    pm she should so some something still such than that thats the their them then there
    theres these they this those to too up us very was we were what whats when where which
    while who whom why will with wont would you your youre yours one ones per
    zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
    hundred thousand half couple few
"""
# Words a caller wraps around a question ("um, I just wanted to know your policy on ...").
_PHONE_FILLER = """
    ok okay please really thank thanks um uh well yeah yes hello hi hey brightline policy
    policies rule rules info information question tell know need want wanted say said long
    many thing things kind sort maybe take takes took happen happens happened go goes going
    anyway actually longer shorter find found saw seen see ago last yesterday recently week
    weeks buy bought purchase purchased done today tonight tomorrow now wait sorry different
"""
# What was bought rarely changes the policy: "can I return my headphones" asks about returns.
# Dropping product nouns keeps them from counting as unmatched words against confidence.
_PRODUCT_NOUNS = """
    item items product products stuff headphones headset earbuds laptop computer tablet tv
    television speaker speakers camera monitor keyboard charger console smartwatch
"""
STOP_WORDS = frozenset((_FUNCTION_WORDS + _PHONE_FILLER + _PRODUCT_NOUNS).split())

# Phrases rewritten before tokenizing; applied in order to lowercase text without punctuation.
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"price match\w*|match\w* (?:a|the|your|their|that) (?:lower )?price|"
     r"(?:lower|better|cheaper) price|cheaper (?:elsewhere|somewhere else)", "pricematch"),
    (r"(?:charged|billed) (?:me )?(?:twice|double|wrong\w*|incorrectly|too much)|"
     r"double (?:charged|billed)|overcharged|wrong charge|unauthori[sz]ed charge|"
     r"(?:dont|do not) recogni[sz]e (?:a|this|the|that) charge", "dispute"),
    # "30 days from delivery" is about receiving an order, not about shipping it.
    (r"(?:from|after|of|since) (?:the )?(?:date of )?deliver\w*", "received"),
    (r"how much|what does it cost|pay(?:ing)? for", "cost"),
    (r"how long|how many days|how many weeks", "days"),
    (r"what time|(?:opening|business|office) (?:hours|times)|"
     r"(?:you|we|it|they|store|office|line)(?: are| is)? (?:open|closed?)\w*|"
     r"(?:open|closed?)\w* (?:on|at|today|tomorrow|now|until|late|early)", "hours"),
    (r"sign(?:ing)? up|become an? (?:plus )?member|enrol+\w*|register\w*", "join"),
    (r"(?:talk|speak|chat) (?:to|with) (?:someone|somebody|a person|a human|a real person|"
     r"a live person|a representative)|real person|live person|customer (?:service|support)",
     "agent"),
    (r"(?:my|the|our|get) money back|reimburse\w*", "refund"),
    (r"(?:send|ship|bring|take|give|mail)(?: \w+){0,2} back", "return"),
    (r"put (?:it |this |my \w+ )?on hold", "pause"),
    (r"e ?gift cards?|gift cards?", "giftcard"),
    (r"(?:limited|special|collectors?) editions?", "limited"),
    (r"stopped working|(?:doesnt|does not|isnt|is not|wont|will not) (?:work|turn on|charge)|"
     r"not working|broken|broke|faulty|defective", "warranty"),
    (r"next day|overnight|expedited|rush (?:shipping|delivery)", "express"),
    (r"(?:another|other|a different) (?:store|shop|retailer|website)s?|competitors?|best buy",
     "retailer"),
)
_PHRASE_PATTERNS = tuple(
    (re.compile(rf"\b(?:{pattern})\b"), f" {replacement} ") for pattern, replacement in _PHRASES
)

# Single words with the same meaning on the phone; keys and values are stemmed at import.
_SYNONYMS: dict[str, str] = {
    "member": "plus", "membership": "plus", "subscription": "plus", "subscribe": "plus",
    "subscriber": "plus", "unsubscribe": "cancel plus",
    "delivery": "shipping", "deliver": "shipping", "postage": "shipping", "arrive": "shipping",
    "guarantee": "warranty", "guaranty": "warranty", "warrantee": "warranty", "repair": "warranty",
    "cancellation": "cancel", "terminate": "cancel", "freeze": "pause", "suspend": "pause",
    "available": "hours", "availability": "hours", "free": "cost",
    "weekend": "saturday sunday", "weekday": "monday friday", "human": "agent", "person": "agent", "representative": "agent",
    "operator": "agent", "rep": "agent", "license": "licence", "price": "cost", "fee": "cost",
    "charge": "cost", "pricing": "cost",
    "exchange": "return", "giftcards": "giftcard", "anytime": "time", "window": "days",
    "timeframe": "days", "deadline": "days", "perk": "benefit", "advantage": "benefit",
    "fast": "express", "faster": "express", "fastest": "express", "quicker": "express",
    "cheaper": "pricematch", "walmart": "retailer", "amazon": "retailer", "costco": "retailer",
}

# Only words are terms: numbers a caller says ("I bought it two weeks ago") describe their
# case, and matching them against the figures of the documents only misleads.
_TOKEN = re.compile(r"[a-z]+")


def _stem(word: str) -> str:
    """A light suffix stemmer: the same stem for "returns", "returned" and "returning"."""
    if len(word) <= 3 or word[0].isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix, replacement in (("ation", "at"), ("ment", ""), ("ing", ""), ("ed", ""),
                                ("ly", ""), ("able", ""), ("ible", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]  # "shipp" -> "ship", and "bill" -> "bil" for every form alike
    return word


def _stem_all(text: str) -> tuple[str, ...]:
    return tuple(_stem(word) for word in text.split() if word not in STOP_WORDS)


_CANONICAL: dict[str, tuple[str, ...]] = {_stem(k): _stem_all(v) for k, v in _SYNONYMS.items()}


def normalize(text: str) -> str:
    """Lowercase, drop apostrophes and punctuation (keeping decimals such as 12.99)."""
    text = text.lower().replace("\u2019", "'").replace("'", "")
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    text = re.sub(r"[^a-z0-9.]+", " ", text)
    for pattern, replacement in _PHRASE_PATTERNS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def analyze(text: str) -> list[str]:
    """The index terms of ``text``, in order; documents and queries go through the same steps."""
    terms: list[str] = []
    for word in _TOKEN.findall(normalize(text)):
        if word in STOP_WORDS:
            continue
        stem = _stem(word)
        terms.extend(_CANONICAL.get(stem, (stem,)))
    return terms


# --- BM25 ------------------------------------------------------------------------------------


class KnowledgeBase:
    """Passages with an Okapi BM25 index and, optionally, their sentence embeddings.

    Built once per process and then only read: safe to share between calls and threads.
    ``b`` is lower than the textbook 0.75 because passages are paragraphs of similar length,
    where a strong length penalty mostly rewards the shortest paragraph of a topic.
    ``encoder`` defaults to the process's shared all-MiniLM-L6-v2 encoder.
    """

    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        k1: float = 1.2,
        b: float = 0.5,
        lead_boost: float = 1.15,
        embeddings: bool = True,
        encoder: SentenceEncoder | None = None,
    ) -> None:
        if not passages:
            raise KnowledgeBaseError("the knowledge base has no passages")
        ids = [p.id for p in passages]
        if len(set(ids)) != len(ids):
            raise KnowledgeBaseError("passage ids must be unique")
        self.passages: tuple[Passage, ...] = tuple(passages)
        self._k1 = k1
        self._by_id = {p.id: i for i, p in enumerate(self.passages)}
        counts = [Counter(analyze(self._indexed_text(p))) for p in self.passages]
        self._terms = [frozenset(c) for c in counts]
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        n = len(self.passages)
        # Per-passage length normalisation, folded into one vector: k1 * (1 - b + b * len / avg).
        self._norm = k1 * (1.0 - b + b * lengths / max(float(lengths.mean()), 1.0))
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, c in enumerate(counts):
            for term, tf in c.items():
                rows, tfs = postings.setdefault(term, ([], []))
                rows.append(i)
                tfs.append(tf)
        self._postings = {
            t: (np.array(rows, dtype=np.intp), np.array(tfs, dtype=np.float64))
            for t, (rows, tfs) in postings.items()
        }
        self._idf = {
            t: self._idf_for(len(rows), n) for t, (rows, _) in self._postings.items()
        }
        self._unknown_idf = self._idf_for(0, n)
        # Documents lead with their main point, so a document's first passage wins near ties.
        self._boost = np.array(
            [lead_boost if p.id.endswith("#1") else 1.0 for p in self.passages], dtype=np.float64
        )
        self._encoder: SentenceEncoder | None = None
        self._vectors: np.ndarray | None = None
        if embeddings:
            self._embed(encoder)

    def _embed(self, encoder: SentenceEncoder | None) -> None:
        from kb.embeddings import EmbeddingModelError, shared_encoder

        self._encoder = encoder or shared_encoder()
        try:
            self._vectors = self._encoder.encode([self._embedded_text(p) for p in self.passages])
        except EmbeddingModelError as exc:
            raise KnowledgeBaseError(str(exc)) from exc

    @classmethod
    def from_directory(cls, path: str | Path, **options: Any) -> KnowledgeBase:
        """Load every ``*.md`` file of ``path`` (not recursive), in name order.

        ``options`` are those of the constructor (``embeddings=False`` for BM25 alone).
        """
        folder = Path(path)
        if not folder.is_dir():
            raise KnowledgeBaseError(f"knowledge base folder {folder} does not exist")
        files = sorted(folder.glob("*.md"))
        if not files:
            raise KnowledgeBaseError(f"knowledge base folder {folder} has no .md documents")
        passages: list[Passage] = []
        for file in files:
            try:
                markdown = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise KnowledgeBaseError(f"cannot read knowledge base document {file}: {exc}") from exc
            try:
                found = split_passages(markdown, document=file.stem)
            except ValueError as exc:
                raise KnowledgeBaseError(f"knowledge base document {file}: {exc}") from exc
            if not found:
                raise KnowledgeBaseError(f"knowledge base document {file} has no text")
            passages.extend(found)
        return cls(passages, **options)

    @staticmethod
    def _idf_for(df: int, n: int) -> float:
        # The "+1" form of BM25's idf: always positive, even for a term in every passage.
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    @staticmethod
    def _indexed_text(passage: Passage) -> str:
        return " ".join(filter(None, (passage.title, passage.section, passage.text)))

    @staticmethod
    def _embedded_text(passage: Passage) -> str:
        return ". ".join(filter(None, (passage.title, passage.section, passage.text)))

    def __len__(self) -> int:
        return len(self.passages)

    def documents_about(self, intent: str) -> frozenset[str]:
        """The ids of the documents whose front matter names ``intent`` ("returns", ...)."""
        return frozenset(p.document for p in self.passages if intent in p.intents)

    @property
    def intents(self) -> frozenset[str]:
        """Every intent some document's front matter names."""
        return frozenset(i for p in self.passages for i in p.intents)

    @property
    def has_embeddings(self) -> bool:
        """Whether passages were embedded, so that semantic and hybrid retrieval work."""
        return self._vectors is not None

    def passage(self, passage_id: str) -> Passage:
        """The passage with this id; ``KeyError`` when there is none."""
        return self.passages[self._by_id[passage_id]]

    def terms_of(self, passage_id: str) -> frozenset[str]:
        """The index terms of a passage, its title and section included."""
        return self._terms[self._by_id[passage_id]]

    def idf(self, term: str) -> float:
        """Inverse document frequency of an analysed term; a term no passage has gets the maximum."""
        return self._idf.get(term, self._unknown_idf)

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """The ``k`` passages that best match ``query``, best first; no hits when nothing matches.

        Hybrid retrieval when the knowledge base has embeddings, BM25 otherwise.
        """
        return self.rank(dict.fromkeys(analyze(query), 1.0), text=query, k=k)

    def search_terms(self, weights: Mapping[str, float], k: int = 3) -> list[Hit]:
        """BM25 hits for analysed terms, each with a query weight (e.g. 0.5 for context)."""
        return self.rank(weights, k=k, retrieval=Retrieval.BM25)

    def rank(
        self,
        weights: Mapping[str, float],
        *,
        text: str | None = None,
        k: int = 3,
        retrieval: Retrieval | None = None,
    ) -> list[Hit]:
        """The ``k`` best passages for analysed terms ``weights`` and the question ``text``.

        ``retrieval`` defaults to hybrid with embeddings and BM25 without. BM25 and hybrid
        hits need some evidence (a shared term, or a cosine above the floor); embedding
        retrieval ranks every passage by similarity and always returns ``k`` hits.
        """
        if k < 1:
            raise ValueError("k must be at least 1")
        if retrieval is None:
            retrieval = Retrieval.HYBRID if self.has_embeddings else Retrieval.BM25
        raw = self._bm25(weights)
        bm25 = raw * self._boost
        if retrieval is Retrieval.BM25:
            return [Hit(self.passages[i], float(bm25[i]), float(bm25[i]))
                    for i in top_indices(bm25, k)]
        if text is None:
            raise ValueError(f"{retrieval} retrieval needs the question text")
        similarity = self.similarities(text)
        if retrieval is Retrieval.EMBEDDINGS:
            scores = similarity.astype(np.float64)
            chosen = top_indices(scores, k, positive=False)
        else:
            total = self.query_weight(weights)
            lexical = raw / total if total > 0 else np.zeros_like(raw)
            # The lead-passage boost is a prior on the passage, whatever the evidence.
            scores = fuse(lexical, similarity) * self._boost
            chosen = top_indices(scores, k)
        return [Hit(self.passages[i], float(scores[i]), float(bm25[i]), float(similarity[i]))
                for i in chosen]

    def _bm25(self, weights: Mapping[str, float]) -> np.ndarray:
        """The BM25 score of every passage (no lead boost), in passage order."""
        scores = np.zeros(len(self.passages), dtype=np.float64)
        for term, weight in weights.items():
            posting = self._postings.get(term)
            if posting is None or weight <= 0:
                continue
            rows, tfs = posting
            scores[rows] += weight * self._idf[term] * tfs * (self._k1 + 1) / (tfs + self._norm[rows])
        return scores

    def query_weight(self, weights: Mapping[str, float]) -> float:
        """The idf weight of a query: what a passage matching every term once about scores."""
        return sum(self.idf(t) * w for t, w in weights.items() if w > 0)

    def knows(self, term: str) -> bool:
        """Whether some passage has this analysed term."""
        return term in self._idf

    def similarity(self, text: str, passage_id: str) -> float:
        """Cosine similarity of ``text`` to one passage."""
        return float(self.similarities(text)[self._by_id[passage_id]])

    def similarities(self, text: str) -> np.ndarray:
        """Cosine similarity of ``text`` to every passage, in passage order (float32)."""
        if self._vectors is None or self._encoder is None:
            raise KnowledgeBaseError("this knowledge base was built without embeddings")
        return self._vectors @ self._encoder.encode([text])[0]

    def coverage(self, terms: Iterable[str], passage_id: str) -> float:
        """Share of the terms' idf weight that the passage contains, in [0, 1].

        Terms no passage knows count with the maximum idf, so a question about something the
        knowledge base never mentions ("do you sell cars") covers little even if one word matches.
        """
        unique = set(terms)
        total = sum(self.idf(t) for t in unique)
        if total == 0:
            return 0.0
        have = self.terms_of(passage_id)
        return sum(self.idf(t) for t in unique if t in have) / total
