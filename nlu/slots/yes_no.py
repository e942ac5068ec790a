"""Yes or no, from the answer to a question the assistant asked.

Phrases are matched on normalised text (lower case, no apostrophes or punctuation) and the last
one in the turn wins, because callers change their minds mid-answer ("yes... actually no").
Uncertainty ("I don't know", "not sure", "maybe") is matched too, so that its "no" and "not"
do not count as a refusal: a turn whose last phrase is uncertain gives None.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["extract_yes_no"]

_UNSURE: Final = (
    "i dont know", "dont know", "i am not sure", "im not sure", "not sure", "no idea", "maybe",
    "let me think", "not certain", "no clue",
    # not yet: "yes, wait" is not a yes to cancelling a membership
    "wait", "hold on", "hang on", "one second", "one sec", "just a second", "one moment",
    "just a moment", "let me check",
)
# Several-word phrases come before single words so that "no problem" is a yes, not a "no".
_YES_PHRASES: Final = (
    "no problem", "not a problem", "no worries", "why not", "of course", "thats right",
    "that is right", "thats correct", "that is correct", "go ahead", "please do", "yes please",
    "sounds good", "that works", "do it", "lets do it", "all right", "uh huh", "mm hmm",
    "m hmm", "you got it",
    "for sure", "i guess so", "i think so", "i do", "i would", "that would be great",
)
_NO_PHRASES: Final = (
    "not really", "no thanks", "no thank you", "thats wrong", "that is wrong", "i dont think so",
    "please dont", "do not", "dont", "not now", "not yet", "cancel that", "never mind",
    "nevermind", "no way", "no need", "rather not", "i wouldnt", "i dont",
)
_YES_WORDS: Final = (
    "yes", "yeah", "yea", "ya", "yep", "yup", "yess", "sure", "certainly", "absolutely",
    "definitely", "correct", "right", "exactly", "affirmative", "ok", "okay", "alright",
    "indeed", "fine", "great", "perfect", "mhm", "mmhmm", "mhmm", "yah",
)
_NO_WORDS: Final = ("no", "nope", "nah", "not", "negative", "incorrect", "wrong", "never")
_NO_PHRASES_ALL: Final = (*_NO_PHRASES, *(f"not {word}" for word in _YES_WORDS))  # "not right"


def _alternation(name: str, phrases: tuple[str, ...]) -> str:
    ordered = sorted(phrases, key=len, reverse=True)  # longest first at the same position
    return f"(?P<{name}>" + "|".join(re.escape(p) for p in ordered) + ")"


_ANSWER = re.compile(
    r"\b(?:"
    + "|".join((
        _alternation("unsure", _UNSURE),
        _alternation("yes_phrase", _YES_PHRASES),
        _alternation("no_phrase", _NO_PHRASES_ALL),
        _alternation("yes", _YES_WORDS),
        _alternation("no", _NO_WORDS),
    ))
    + r")\b"
)
_NOT_LETTERS = re.compile(r"[^a-z]+")


def extract_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the caller said neither (or was unsure last)."""
    normalised = _NOT_LETTERS.sub(" ", text.lower().replace("'", "").replace("\u2019", ""))
    last: str | None = None
    for match in _ANSWER.finditer(normalised):
        last = match.lastgroup
    if last is None or last == "unsure":
        return None
    return last.startswith("yes")
