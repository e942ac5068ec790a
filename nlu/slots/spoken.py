"""Numbers as phone callers say them and as faster-whisper writes them down.

The same order number reaches us as "1001", "10 01", "1, 0, 0 1", "one zero zero one", "ten oh
one", "one thousand and one", "1,000 and 1", "1,01" (Whisper's thousands group that lost a
zero) or "o r d dash 1001". This module turns a turn's text into
:class:`Token` objects and finds its *number runs*: stretches of digits and number words held
together only by spaces, commas, dashes and hesitations. A :class:`NumberRun` keeps its
comma-separated segments and the chunks inside them ("ten oh one" is ``("10", "0", "1")``), so
the slot extractors can decide from the surrounding words what the digits are.

Spoken cardinals are read the way people dictate codes: each group ("ten", "ninety four",
"one hundred and five", "forty three thousand four") becomes its own chunk, and the chunks are
concatenated: "ninety four one ten" is 94110, "nineteen oh one" is 1901.

Everything here is pure and total: any string is accepted and nothing raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

__all__ = [
    "HESITATIONS", "ORDINALS", "TEENS", "TENS", "UNITS", "NumberRun", "Token", "TokenKind",
    "extract_digits_spoken", "number_runs", "run_at", "tokenize", "word_at",
]

TokenKind = Literal[
    "word", "digits", "ordinal", "decimal", "time", "slash", "comma", "stop", "symbol",
]

UNITS: Final[dict[str, int]] = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
TEENS: Final[dict[str, int]] = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS: Final[dict[str, int]] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
ORDINALS: Final[dict[str, int]] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}
HESITATIONS: Final[frozenset[str]] = frozenset(
    {"uh", "um", "umm", "uhm", "er", "erm", "ah", "hmm", "mm"}
)
_SCALES: Final[frozenset[str]] = frozenset({"hundred", "thousand"})
_REPEATS: Final[dict[str, int]] = {"double": 2, "triple": 3}
_ZEROS: Final[frozenset[str]] = frozenset({"zero", "oh", "o", "nought"})
_ZERO_LETTERS: Final[frozenset[str]] = frozenset({"oh", "o"})  # also interjections and letters
_LINKS: Final[frozenset[str]] = frozenset({"dash", "hyphen", "-"})  # said between digit groups
_VALUE_WORDS: Final[frozenset[str]] = frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS)

# "o r d", "O.R.D.", "o-r-d": the letters of the ORD prefix spelled out; "\bo" keeps "word" out.
_SPELLED_ORD = re.compile(r"\bo[\s.\-]*r[\s.\-]*d\b")
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # "1,001" but not "1, 0, 0 1"
# Whisper's short thousands: "one thousand three" comes out as "1,3" or "1,03", "forty three
# thousand four" as "43,04". One comma with one or two digits after it, not part of a list of
# digits ("1,0,0,1") and not before a decimal point, is a thousands group that lost its zeros.
_SHORT_THOUSANDS = re.compile(r"(?<![\d,.])(\d{1,3}),(\d{1,2})(?![\d,]|\.\d)")
# "one thousand and two" written "1,000 and 2" (the comma is gone by then): one number.
_THOUSAND_AND = re.compile(r"(?<![\d.])(\d{1,3})000 and (\d{1,3})(?![\d,.:/])")
_INNER_APOSTROPHE = re.compile(r"(?<=[a-z])'(?=[a-z])")
_DASHES = re.compile("[\u2010-\u2015\u2212]")
_TOKEN = re.compile(
    r"(?P<slash>\d{1,4}(?:/\d{1,4}){1,2})"
    r"|(?P<decimal>\d+\.\d+)"
    r"|(?P<time>\d{1,2}:\d{2})"
    r"|(?P<ordinal>\d+(?:st|nd|rd|th)\b)"
    r"|(?P<digits>\d+)"
    r"|(?P<word>[a-z]+)"
    r"|(?P<comma>,)"
    r"|(?P<stop>[.!?;:\u2026]+)"
    r"|(?P<symbol>[$#%+&\-])"
)


@dataclass(frozen=True, slots=True)
class Token:
    """One piece of normalised text: lower case, with inner apostrophes dropped ("its")."""

    text: str
    kind: TokenKind


@dataclass(frozen=True, slots=True)
class NumberRun:
    """The tokens ``[start, end)`` that spell one number or one dictated digit string.

    ``segments`` are its comma-separated parts, each a tuple of chunks: "ten oh one, 4 3" gives
    ``(("10", "0", "1"), ("4", "3"))``. ``soft_zero`` is true when the run opens with "oh",
    which may have been an interjection rather than a zero ("Oh 1001").
    """

    start: int
    end: int
    segments: tuple[tuple[str, ...], ...]
    soft_zero: bool = False

    @property
    def chunks(self) -> tuple[str, ...]:
        return tuple(chunk for segment in self.segments for chunk in segment)

    @property
    def digits(self) -> str:
        return "".join(self.chunks)


def tokenize(text: str) -> list[Token]:
    """Split a transcript into words, digit groups, punctuation and a few symbols."""
    text = _DASHES.sub("-", text.lower().replace("\u2019", "'"))
    text = _INNER_APOSTROPHE.sub("", text)
    text = _SPELLED_ORD.sub(" ord ", text)
    text = _SHORT_THOUSANDS.sub(lambda m: m[1] + m[2].zfill(3), text)
    text = _THOUSANDS_COMMA.sub("", text)
    text = _THOUSAND_AND.sub(lambda m: str(int(m[1]) * 1000 + int(m[2])), text)
    return [Token(m.group(), cast(TokenKind, m.lastgroup)) for m in _TOKEN.finditer(text)]


def word_at(tokens: Sequence[Token], i: int) -> str:
    """The word at ``i``, or "" when ``i`` is out of range or not a word."""
    if 0 <= i < len(tokens) and tokens[i].kind == "word":
        return tokens[i].text
    return ""


def number_runs(tokens: Sequence[Token]) -> list[NumberRun]:
    """Every number run in ``tokens``, left to right."""
    runs: list[NumberRun] = []
    i = 0
    while i < len(tokens):
        run = run_at(tokens, i)
        if run is None:
            i += 1
        else:
            runs.append(run)
            i = run.end
    return runs


def run_at(tokens: Sequence[Token], i: int) -> NumberRun | None:
    """The number run that starts exactly at token ``i``, if one does."""
    if not _opens_run(tokens, i):
        return None
    last = i
    j = i + 1
    while j < len(tokens):
        token = tokens[j]
        if _continues_run(tokens, j):
            last = j
        elif token.kind == "comma" or token.text in _LINKS or token.text in HESITATIONS:
            pass  # kept only if more digits follow
        elif token.text == "and" and word_at(tokens, last) in _SCALES:
            pass  # "one thousand and one"
        else:
            break
        j += 1
    return NumberRun(i, last + 1, _segments(tokens[i:last + 1]),
                     soft_zero=word_at(tokens, i) in _ZERO_LETTERS)


def extract_digits_spoken(text: str) -> str:
    """The digits a caller said or Whisper wrote, in order, with every other word dropped.

    "ten oh one" -> "1001", "double five" -> "55", "one thousand and one" -> "1001",
    "my zip is 4 3 0 0 4" -> "43004". Ordinals, decimals, times and dates like "4/28" are not
    digit sequences and are skipped. Returns "" when there are none.
    """
    return "".join(run.digits for run in number_runs(tokenize(text)))


# --- reading runs ------------------------------------------------------------------------------

def _has_value(tokens: Sequence[Token], i: int) -> bool:
    if not 0 <= i < len(tokens):
        return False
    return tokens[i].kind == "digits" or word_at(tokens, i) in _VALUE_WORDS


def _is_single_digit(tokens: Sequence[Token], i: int) -> bool:
    if not 0 <= i < len(tokens):
        return False
    token = tokens[i]
    return (token.kind == "digits" and len(token.text) == 1) or word_at(tokens, i) in UNITS


def _opens_run(tokens: Sequence[Token], i: int) -> bool:
    if not 0 <= i < len(tokens):
        return False
    if tokens[i].kind == "digits":
        return True
    word = word_at(tokens, i)
    if word in _ZERO_LETTERS:
        return _has_value(tokens, i + 1)  # "oh one two" but not "oh, my order" or "o k"
    if word in _REPEATS:
        return _is_single_digit(tokens, i + 1)
    if word == "a":
        return word_at(tokens, i + 1) in _SCALES
    return word in _VALUE_WORDS


def _continues_run(tokens: Sequence[Token], j: int) -> bool:
    word = word_at(tokens, j)
    if word in _ZERO_LETTERS:  # a zero right after a digit, or with more digits to come
        return _has_value(tokens, j - 1) or _has_value(tokens, _skip_links(tokens, j + 1))
    return word in _SCALES or _opens_run(tokens, j)


def _skip_links(tokens: Sequence[Token], j: int) -> int:
    while j < len(tokens) and (tokens[j].kind == "comma" or tokens[j].text in _LINKS
                               or tokens[j].text in HESITATIONS):
        j += 1
    return j


def _segments(tokens: Sequence[Token]) -> tuple[tuple[str, ...], ...]:
    segments: list[tuple[str, ...]] = []
    words: list[str] = []
    for token in (*tokens, Token(",", "comma")):
        if token.kind == "comma":
            chunks = _chunks(words)
            if chunks:
                segments.append(chunks)
            words = []
        elif token.kind == "digits" or token.text in _VALUE_WORDS or token.text in _SCALES \
                or token.text in _REPEATS or token.text in ("a", "and"):
            words.append(token.text)
    return tuple(segments)


def _chunks(words: list[str]) -> tuple[str, ...]:
    chunks: list[str] = []
    k = 0
    while k < len(words):
        word = words[k]
        repeated = _single_digit(_at(words, k + 1)) if word in _REPEATS else None
        if word.isdigit():
            chunks.append(word)
            k += 1
        elif repeated is not None:
            chunks.append(repeated * _REPEATS[word])
            k += 2
        else:
            value, end = _cardinal(words, k)
            if end == k:
                k += 1  # a stray "and", "a" or scale word
            else:
                chunks.append(str(value))
                k = end
    return tuple(chunks)


def _at(words: list[str], k: int) -> str:
    return words[k] if k < len(words) else ""


def _single_digit(word: str) -> str | None:
    if word.isdigit() and len(word) == 1:
        return word
    return str(UNITS[word]) if word in UNITS else None


def _below_hundred(words: list[str], k: int) -> tuple[int, int]:
    word = _at(words, k)
    if word in TENS:
        unit = _at(words, k + 1)
        if unit in UNITS and unit not in _ZEROS:
            return TENS[word] + UNITS[unit], k + 2
        return TENS[word], k + 1
    if word in TEENS:
        return TEENS[word], k + 1
    if word in UNITS:
        return UNITS[word], k + 1
    return 0, k


_Reader = Callable[[list[str], int], tuple[int, int]]  # reads one number part: (value, end)


def _plus_rest(words: list[str], k: int, value: int, part: _Reader) -> tuple[int, int]:
    """After "hundred" or "thousand": an optional "and" and the smaller part ("and five")."""
    start = k + 1 if _at(words, k) == "and" else k
    if _at(words, start) in _ZEROS:
        return value, k
    rest, end = part(words, start)
    return (value + rest, end) if end > start else (value, k)


def _below_thousand(words: list[str], k: int) -> tuple[int, int]:
    if _at(words, k) == "a" and _at(words, k + 1) == "hundred":
        value, end = 1, k + 1
    else:
        value, end = _below_hundred(words, k)
        if end == k or _at(words, k) in _ZEROS:
            return value, end
    if _at(words, end) == "hundred":
        return _plus_rest(words, end + 1, value * 100, _below_hundred)
    return value, end


def _cardinal(words: list[str], k: int) -> tuple[int, int]:
    """One spoken number group at ``k`` and where it ends; ``end == k`` when there is none."""
    if _at(words, k) == "a" and _at(words, k + 1) == "thousand":
        value, end = 1, k + 1
    else:
        value, end = _below_thousand(words, k)
        if end == k or _at(words, k) in _ZEROS:
            return value, end
    if _at(words, end) == "thousand":
        return _plus_rest(words, end + 1, value * 1000, _below_thousand)
    return value, end

