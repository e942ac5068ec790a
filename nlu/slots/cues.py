"""What the words around a number say it is: an order number, a ZIP code, a price, a date...

A caller's turn may hold several numbers ("order 1001, delivered May 8, I paid $12.99"). The
words just before a :class:`~nlu.slots.spoken.NumberRun` are scanned nearest first for a *cue*;
the words just after it may *rule it out* ("30 days", "12 dollars", "1001 Main Street"). The
slot extractors decide what each cue means for them: "order" is welcome before an order number
and rules out a ZIP code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from nlu.slots.dates import MONTHS, WEEKDAYS
from nlu.slots.spoken import ORDINALS, NumberRun, Token, word_at

__all__ = ["Cue", "cues_before", "ruled_out_by_next_words"]

Cue = Literal[
    "ord", "order", "number", "postcode", "phone", "price", "date", "year", "negation",
    "correction", "other",
]

WINDOW_WORDS: Final = 8  # how far back a cue may stand ("an order I placed last week, it's ...")

_CUE_WORDS: Final[dict[str, Cue]] = {
    "ord": "ord",
    **dict.fromkeys(("order", "orders", "confirmation", "reference"), "order"),
    **dict.fromkeys(("zip", "zipcode", "postcode", "postal"), "postcode"),
    **dict.fromkeys(("phone", "cell", "mobile", "telephone", "callback", "extension", "ext"),
                    "phone"),
    **dict.fromkeys(("cost", "costs", "costed", "charge", "charged", "charges", "charging",
                     "paid", "pay", "paying", "price", "priced", "fee", "fees", "billed",
                     "dollar", "dollars", "buck", "bucks", "cents", "spent", "total",
                     "amount"), "price"),
    **dict.fromkeys(("today", "tomorrow", "yesterday", *WEEKDAYS), "date"),
    **dict.fromkeys(("in", "since", "year", "back"), "year"),
    **dict.fromkeys(("not", "never", "isnt", "wasnt"), "negation"),
    **dict.fromkeys(("sorry", "mean", "actually", "rather", "correction", "wait", "oops", "no",
                     "scratch"), "correction"),
    **dict.fromkeys(("card", "account", "address", "street", "apartment", "apt", "suite", "pin",
                     "password", "passcode", "ssn", "social"), "other"),
}
# What "number" and "code" are, by the word in front of them.
_NUMBER_QUALIFIERS: Final[dict[str, Cue]] = {
    **dict.fromkeys(("order", "orders", "ord", "confirmation", "reference"), "order"),
    **dict.fromkeys(("phone", "cell", "mobile", "telephone", "contact", "callback", "home",
                     "work", "fax"), "phone"),
    **dict.fromkeys(("zip", "postal"), "postcode"),
    **dict.fromkeys(("card", "credit", "debit", "account", "member", "membership", "tracking",
                     "routing", "social", "security", "serial", "model", "case", "ticket",
                     "policy", "claim", "license", "licence", "invoice", "pin"), "other"),
}
_CODE_QUALIFIERS: Final[dict[str, Cue]] = {"zip": "postcode", "postal": "postcode",
                                           "post": "postcode", "area": "phone"}
_SYMBOL_CUES: Final[dict[str, Cue]] = {"#": "number", "$": "price", "+": "phone"}

_UNIT_WORDS: Final[frozenset[str]] = frozenset({
    "day", "days", "week", "weeks", "month", "months", "year", "years", "hour", "hours",
    "minute", "minutes", "min", "mins", "second", "seconds", "business", "working", "night",
    "nights", "dollar", "dollars", "buck", "bucks", "cent", "cents", "usd", "percent", "am",
    "pm", "oclock", "ago", "items", "item", "things", "thing", "units", "pieces", "times",
    "people", "points",
})
_PER: Final[frozenset[str]] = frozenset({"a", "per", "each", "every"})
_STREETS: Final[frozenset[str]] = frozenset({
    "street", "st", "avenue", "ave", "road", "rd", "drive", "lane", "boulevard", "blvd",
})


def cues_before(tokens: Sequence[Token], run: NumberRun, *, floor: int = 0) -> list[Cue]:
    """The cues in the few words before ``run``, nearest first, never reaching below ``floor``
    (the end of the previous number, so each number reads only its own words)."""
    cues: list[Cue] = []
    words = 0
    k = run.start - 1
    while k >= floor and words < WINDOW_WORDS:
        cue = _cue_at(tokens, k, distance=run.start - k)
        if cue is not None:
            cues.append(cue)
        words += tokens[k].kind == "word"
        k -= 1
    return cues


def ruled_out_by_next_words(tokens: Sequence[Token], end: int) -> bool:
    """Whether the words right after a number say it is a duration, price, time, quantity,
    date or street address ("30 days", "12 dollars", "9 99 a month", "twenty eighth")."""
    if end >= len(tokens):
        return False
    token = tokens[end]
    if token.kind == "ordinal" or token.text == "%":
        return True
    word = word_at(tokens, end)
    following = word_at(tokens, end + 1)
    if word in _UNIT_WORDS or (word in _PER and following in _UNIT_WORDS):
        return True
    if word in ("st", "nd", "rd", "th") or (word == "of" and following in MONTHS):
        return True
    if word in ORDINALS:
        return True
    return any(word_at(tokens, k) in _STREETS for k in range(end, min(end + 3, len(tokens))))


def _cue_at(tokens: Sequence[Token], k: int, *, distance: int) -> Cue | None:
    token = tokens[k]
    if token.kind == "symbol":
        return _SYMBOL_CUES.get(token.text)
    if token.kind in ("ordinal", "slash"):
        return "date"  # "May 8th, 2025", "4/28 2025"
    word = word_at(tokens, k)
    before = word_at(tokens, k - 1)
    if word == "number":
        return _NUMBER_QUALIFIERS.get(before, "number")
    if word == "code":
        return _CODE_QUALIFIERS.get(before, "other")
    if word == "me" and before in ("call", "reach", "text", "ring"):
        return "phone"
    if word in MONTHS:
        # Only right in front: "May 8", "May the 8th"; "may" is also a verb further back.
        return "date" if distance == 1 or (distance == 2 and word_at(tokens, k + 1) == "the") \
            else None
    return _CUE_WORDS.get(word)
