"""Is the caller in the middle of saying digits? Then a pause does not end their turn.

People read codes in groups with pauses between them ("ten... oh one", "four three, zero zero
four"), and the silence between groups looks like the end of a turn. The turn-taking layer asks
:func:`is_dictating_digits` about the partial transcript and, when it is true, waits longer
before answering. True when the words so far end

- with a lead-in that announces digits: "my order number is", "it's ORD dash", "zip code is";
- with a link after digits, or a scale word: "ten oh one, and", "1 0 -", "one thousand";
- inside a digit sequence that is not complete yet: fewer digits than ``expected_digits`` when
  the caller was asked for a code of known length, else fewer than an order number's four (or a
  ZIP's five after "zip") when the digits follow such a cue or are read one by one.

Digits that are clearly something else ("it cost 12", "delivered on May 8") do not count.
"""

from __future__ import annotations

import re
from typing import Final

from nlu.slots.cues import cues_before
from nlu.slots.spoken import HESITATIONS, Token, number_runs, tokenize

__all__ = ["DigitDictationDetector", "is_dictating_digits"]

_LEAD_IN = re.compile(
    r"(?:\b(?:number|numbers|ord|zip|zipcode|postcode|code)(?: (?:is|was|are|its|it is))?"
    r"|\b(?:order|orders|zip|postcode) (?:is|was|its|it is)"
    r"|#)$"
)
_LINKS: Final = frozenset({",", "-", "dash", "hyphen", "and"})
_NOT_DIGITS: Final = frozenset({"price", "date", "negation", "other"})


class DigitDictationDetector:
    """Judges partial transcripts for one prompt; ``expected_digits`` is the length of the
    code just asked for (4 for an order number, 5 for a ZIP), or None when none was asked."""

    def __init__(self, *, expected_digits: int | None = None) -> None:
        if expected_digits is not None and expected_digits < 1:
            raise ValueError(f"expected_digits must be at least 1, not {expected_digits}")
        self.expected_digits = expected_digits

    def is_dictating(self, partial_text: str) -> bool:
        """Whether ``partial_text`` stops in the middle of, or right before, a digit sequence."""
        tokens, linked = _without_trailing_links(tokenize(partial_text))
        end = len(tokens)
        if not tokens:
            return False
        words = " ".join(t.text for t in tokens[-4:] if t.kind in ("word", "symbol", "digits"))
        if _LEAD_IN.search(words):
            return True
        runs = number_runs(tokens)
        if not runs or runs[-1].end != end:
            return False
        run = runs[-1]
        cues = cues_before(tokens, run, floor=runs[-2].end if len(runs) > 1 else 0)
        cue = next((c for c in cues if c not in ("year", "correction")), None)
        if cue in _NOT_DIGITS:
            return False
        if tokens[-1].text in ("hundred", "thousand"):
            return True  # "one thousand" is rarely the whole number
        count = len(run.digits)
        if self.expected_digits is not None:
            return count < self.expected_digits
        if linked:
            return True  # "ten oh one, and"
        wanted = 5 if cue == "postcode" else 4
        # Uncued, only digits read in groups count: a lone "one" is "the blue one".
        return count < wanted and (cue is not None or len(run.chunks) > 1)

    __call__ = is_dictating


_DEFAULT: Final = DigitDictationDetector()


def _without_trailing_links(tokens: list[Token]) -> tuple[list[Token], bool]:
    """Drops the trailing punctuation, hesitations and links; and whether a link was dropped
    (Whisper ends most partials with a full stop, so a stop is not a link)."""
    end = len(tokens)
    linked = False
    while end and (tokens[end - 1].kind in ("stop", "comma") or tokens[end - 1].text in _LINKS
                   or tokens[end - 1].text in HESITATIONS):
        linked |= tokens[end - 1].text in _LINKS
        end -= 1
    return tokens[:end], linked


def is_dictating_digits(partial_text: str) -> bool:
    """:meth:`DigitDictationDetector.is_dictating` when no code of known length was asked for."""
    return _DEFAULT.is_dictating(partial_text)
