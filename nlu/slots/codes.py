"""Order numbers and ZIP codes, from what a caller said or typed on the keypad.

Every number run in the turn (see :mod:`nlu.slots.spoken`) that has the right number of digits
is a candidate. The nearest cue before it (see :mod:`nlu.slots.cues`) scores it:

- for an order number, "ORD" scores 3, "order" or "number" 2, no cue 1; a ZIP, phone, price,
  date or "not" cue rules it out, and so does "in"/"since" before a year-like 19xx or 20xx;
- for a ZIP code, "zip"/"postal code" scores 2, no cue 1; order, phone, price and date cues
  rule it out;
- a correction ("sorry", "I mean", "no,") scores like the number it corrects;
- words after the number can rule it out ("30 days", "12 dollars").

The best score wins and, among equals, the last one said (callers correct themselves). A run
of the wrong length is split at its commas ("1001, 43004"), or into its groups when every
group has the right length ("1001 1003"), but never cut anywhere else, so "555 0100" stays a
phone number; only a ZIP+4 ("43004-1234") gives up its last four. Keypad digits, when they
form a complete entry, win over speech.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from nlu.slots.cues import Cue, cues_before, ruled_out_by_next_words
from nlu.slots.dtmf import keypad_entry
from nlu.slots.spoken import NumberRun, number_runs, tokenize

__all__ = ["DEFAULT_ORDER_DIGITS", "ORDER_PREFIX", "extract_order_number", "extract_postcode"]

ORDER_PREFIX: Final = "ORD"
DEFAULT_ORDER_DIGITS: Final = 4
POSTCODE_DIGITS: Final = 5


@dataclass(frozen=True, slots=True)
class _Slot:
    """How one kind of code reads cues: a score per cue (0 rules out; absent cues are skipped)."""

    digits: int
    scores: Mapping[Cue, int]
    rejects_years: bool = False
    plus_four: bool = False


_RULED_OUT: Final[dict[Cue, int]] = dict.fromkeys(
    ("phone", "price", "date", "negation", "other"), 0
)
_ORDER_SCORES: Final[dict[Cue, int]] = {
    **_RULED_OUT, "ord": 3, "order": 2, "number": 2, "postcode": 0,
}
_POSTCODE_SCORES: Final[dict[Cue, int]] = {**_RULED_OUT, "postcode": 2, "ord": 0, "order": 0}
_POSTCODE: Final = _Slot(POSTCODE_DIGITS, _POSTCODE_SCORES, plus_four=True)


def extract_order_number(
    text: str, *, dtmf: str = "", digits: int = DEFAULT_ORDER_DIGITS, prefix: str = ORDER_PREFIX,
) -> str | None:
    """The order number in a caller's turn as ``"ORD-1001"``, or None.

    ``dtmf`` holds the keypad keys of the turn ("1001#"); ``digits`` is how many digits order
    numbers have (4 to 8). Raises :class:`ValueError` for any other ``digits``.
    """
    if not 4 <= digits <= 8:
        raise ValueError(f"order numbers have 4 to 8 digits, not {digits}")
    found = _from_keypad(dtmf, digits) or _best(text, _Slot(digits, _ORDER_SCORES,
                                                            rejects_years=True))
    return f"{prefix}-{found}" if found else None


def extract_postcode(text: str, *, dtmf: str = "") -> str | None:
    """A US five-digit ZIP code the caller said ("four three zero zero four") or typed."""
    return _from_keypad(dtmf, POSTCODE_DIGITS) or _best(text, _POSTCODE)


def _from_keypad(dtmf: str, digits: int) -> str | None:
    entry = keypad_entry(dtmf)
    return entry if len(entry) == digits else None


def _best(text: str, slot: _Slot) -> str | None:
    tokens = tokenize(text)
    best_score, best = 0, None
    floor = 0
    previous: int | None = None  # the score of the number before, for corrections
    for run in number_runs(tokens):
        cues = cues_before(tokens, run, floor=floor)
        ruled_out = ruled_out_by_next_words(tokens, run.end)
        for candidate in _candidates(run, slot.digits, plus_four=slot.plus_four):
            score = 0 if ruled_out else _score(cues, candidate, slot, previous)
            if score and score >= best_score:
                best_score, best = score, candidate
        previous = 0 if ruled_out else _score(cues, run.digits, slot, previous)
        floor = run.end
    return best


def _score(cues: list[Cue], candidate: str, slot: _Slot, previous: int | None) -> int:
    for cue in cues:
        if cue == "correction":
            return 1 if previous is None else previous
        if cue == "year":
            if slot.rejects_years and len(candidate) == 4 and candidate[:2] in ("19", "20"):
                return 0
            continue
        if cue in slot.scores:
            return slot.scores[cue]
    return 1


def _candidates(run: NumberRun, length: int, *, plus_four: bool = False) -> list[str]:
    digits = run.digits
    if len(digits) == length:
        return [digits]
    if run.soft_zero and len(digits) == length + 1:
        return [digits[1:]]  # "Oh, uh, 1001" without the comma Whisper sometimes drops
    by_comma = ["".join(segment) for segment in run.segments]
    if len(by_comma) > 1 and any(len(part) == length for part in by_comma):
        return [part for part in by_comma if len(part) == length]
    chunks = run.chunks
    if len(chunks) > 1 and all(len(chunk) == length for chunk in chunks):
        return list(chunks)
    if plus_four and len(chunks) == 2 and len(chunks[0]) == length and len(chunks[1]) == 4:
        return [chunks[0]]  # ZIP+4: "43004-1234"
    return []
