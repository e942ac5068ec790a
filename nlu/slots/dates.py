"""Dates from a caller's words: "May 8", "the 8th of May", "April twenty eighth", "4/28",
"tomorrow", "last Monday", "three days ago".

Callers rarely say the year, so a month and day without one is taken in whichever year puts it
nearest to ``today`` (on the 3rd of January, "December 28" is last week, not next December).
A bare weekday ("on Monday") is the most recent one, today included, because the dates callers
give us are mostly about the past (when it arrived, when they bought it); "next Monday" looks
ahead. When a turn holds several dates the last one wins, as callers correct themselves
("yesterday, no, Monday").

Pure and total: any string is accepted; impossible dates ("February 30") are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Final

from nlu.slots.spoken import ORDINALS, TEENS, TENS, UNITS, Token, run_at, tokenize, word_at

__all__ = ["MONTHS", "WEEKDAYS", "extract_date"]

MONTHS: Final[dict[str, int]] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "july": 7, "august": 8, "aug": 8, "september": 9, "sept": 9,
    "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
WEEKDAYS: Final[dict[str, int]] = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5,
    "sunday": 6,
}
_RELATIVE_DAYS: Final[dict[str, int]] = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}
_PAST: Final[frozenset[str]] = frozenset({"last", "past", "previous"})
_FUTURE: Final[frozenset[str]] = frozenset({"next", "coming"})
_DAY_PREPOSITIONS: Final[frozenset[str]] = frozenset(
    {"on", "by", "since", "until", "till", "before", "after", "from", "for"}
)
_SPANS: Final[dict[str, int]] = {"day": 1, "days": 1, "week": 7, "weeks": 7}

# A matcher looks at token i and returns (the date, the index after it), or None.
_Match = tuple[date, int] | None
_Matcher = Callable[[Sequence[Token], int, date], _Match]


def extract_date(text: str, *, today: date) -> date | None:
    """The date the caller means, resolved against ``today``; None when there is none."""
    tokens = tokenize(text)
    found: date | None = None
    i = 0
    while i < len(tokens):
        for matcher in _MATCHERS:
            match = matcher(tokens, i, today)
            if match is not None:
                found, i = match[0], max(match[1], i + 1)
                break
        else:
            i += 1
    return found


# --- matchers, tried in this order at every token ----------------------------------------------

def _slashed(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "4/28", "4/28/2025", "4/28/25"; US order, or day first when the first part is over 12."""
    if tokens[i].kind != "slash":
        return None
    parts = [int(p) for p in tokens[i].text.split("/")]
    month, day = parts[0], parts[1]
    if month > 12 >= day:
        month, day = day, month
    if len(parts) == 3:
        year = parts[2] + 2000 if parts[2] < 100 else parts[2]
        found = _make(year, month, day)
    else:
        found = _nearest_year(month, day, today)
    return (found, i + 1) if found else None


def _relative_word(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "today", "tomorrow", "yesterday", "the day before yesterday", "the day after tomorrow"."""
    word = word_at(tokens, i)
    if word in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[word]), i + 1
    if word == "day" and word_at(tokens, i + 1) in ("before", "after"):
        target = word_at(tokens, i + 2)
        if (word_at(tokens, i + 1), target) in (("before", "yesterday"), ("after", "tomorrow")):
            return today + timedelta(days=2 * _RELATIVE_DAYS[target]), i + 3
    return None


def _month_first(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "May 8", "May 8th, 2025", "April the twenty eighth", "May eight"."""
    month = MONTHS.get(word_at(tokens, i))
    if month is None:
        return None
    j = i + 2 if word_at(tokens, i + 1) == "the" else i + 1
    day = _day_at(tokens, j, cardinal_words=True)
    if day is None:
        return None
    return _with_year(tokens, day[1], month, day[0], today)


def _day_first(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "the 8th of May", "8 May", "the twenty eighth of April"."""
    j = i + 1 if word_at(tokens, i) == "the" else i
    day = _day_at(tokens, j, cardinal_words=False)
    if day is None:
        return None
    k = day[1] + 1 if word_at(tokens, day[1]) == "of" else day[1]
    month = MONTHS.get(word_at(tokens, k))
    if month is None:
        return None
    return _with_year(tokens, k + 1, month, day[0], today)


def _weekday(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "last Monday", "next Friday", "this Tuesday", "on Monday" (the most recent one)."""
    modifier = word_at(tokens, i)
    j = i + 1 if modifier in _PAST | _FUTURE | {"this"} else i
    weekday = WEEKDAYS.get(word_at(tokens, j))
    if weekday is None:
        return None
    if modifier in _PAST:
        back = (today.weekday() - weekday) % 7 or 7
    elif modifier in _FUTURE:
        back = -((weekday - today.weekday()) % 7 or 7)
    elif modifier == "this":
        back = today.weekday() - weekday
    else:
        back = (today.weekday() - weekday) % 7
    return today - timedelta(days=back), j + 1


def _span(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "three days ago", "a week ago", "in 2 weeks"."""
    ahead = word_at(tokens, i) == "in"
    j = i + 1 if ahead else i
    if word_at(tokens, j) in ("a", "an"):
        count, k = 1, j + 1
    else:
        run = run_at(tokens, j)
        if run is None or not run.digits or len(run.digits) > 3:
            return None
        count, k = int(run.digits), run.end
    days = _SPANS.get(word_at(tokens, k))
    if days is None:
        return None
    if ahead:
        return today + timedelta(days=count * days), k + 1
    if word_at(tokens, k + 1) == "ago":
        return today - timedelta(days=count * days), k + 2
    return None


def _day_alone(tokens: Sequence[Token], i: int, today: date) -> _Match:
    """ "on the 8th": the nearest 8th to today, in this month or a neighbouring one.

    Only after a preposition, so that "the first one" and "the second item" are not dates.
    """
    if word_at(tokens, i) not in _DAY_PREPOSITIONS or word_at(tokens, i + 1) != "the":
        return None
    day = _day_at(tokens, i + 2, cardinal_words=False)
    if day is None or not _is_ordinal(tokens, day[1] - 1):
        return None
    candidates = []
    for shift in (-1, 0, 1):
        month_index = today.year * 12 + today.month - 1 + shift
        found = _make(month_index // 12, month_index % 12 + 1, day[0])
        if found:
            candidates.append(found)
    if not candidates:
        return None
    return min(candidates, key=lambda d: abs(d - today)), day[1]


_MATCHERS: Final[tuple[_Matcher, ...]] = (
    _slashed, _relative_word, _month_first, _day_first, _weekday, _span, _day_alone,
)


# --- pieces ------------------------------------------------------------------------------------

def _day_at(tokens: Sequence[Token], i: int, *, cardinal_words: bool) -> tuple[int, int] | None:
    """A day of the month at ``i`` ("8", "8th", "eighth", "twenty eighth") and the index after.

    Cardinal words ("eight", "twenty eight") count only where a month came first, so that
    "I bought one May 8" does not read as the 1st of May.
    """
    if not 0 <= i < len(tokens):
        return None
    token = tokens[i]
    day: int | None = None
    end = i + 1
    if token.kind == "ordinal" or (token.kind == "digits" and len(token.text) <= 2):
        day = int(token.text.rstrip("stndrh"))
    elif token.kind == "word":
        word = token.text
        following = word_at(tokens, i + 1)
        if word in ("twenty", "thirty"):
            day = TENS[word]
            if ORDINALS.get(following, 10) < 10:
                day, end = day + ORDINALS[following], i + 2
            elif cardinal_words and UNITS.get(following, 0) > 0:
                day, end = day + UNITS[following], i + 2
            elif not cardinal_words:
                day = None
        elif word in ORDINALS:
            day = ORDINALS[word]
        elif cardinal_words and word in TEENS:
            day = TEENS[word]
        elif cardinal_words and UNITS.get(word, 0) > 0:
            day = UNITS[word]
    return (day, end) if day is not None and 1 <= day <= 31 else None


def _is_ordinal(tokens: Sequence[Token], i: int) -> bool:
    return tokens[i].kind == "ordinal" or word_at(tokens, i) in ORDINALS


def _with_year(tokens: Sequence[Token], j: int, month: int, day: int, today: date) -> _Match:
    k = j + 1 if 0 <= j < len(tokens) and tokens[j].kind == "comma" else j
    run = run_at(tokens, k)
    if run is not None and len(run.digits) == 4 and 1900 <= int(run.digits) <= 2100:
        found = _make(int(run.digits), month, day)
        return (found, run.end) if found else None
    found = _nearest_year(month, day, today)
    return (found, j) if found else None


def _nearest_year(month: int, day: int, today: date) -> date | None:
    candidates = [d for y in (today.year - 1, today.year, today.year + 1)
                  if (d := _make(y, month, day)) is not None]
    return min(candidates, key=lambda d: abs(d - today)) if candidates else None


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
