"""PII redaction: what a caller says is made safe before it is stored or logged.

Each piece of PII in a turn's text is replaced by a typed placeholder:

- ``[card]``   13-19 digits passing the Luhn check, typed or spoken in any grouping;
- ``[ssn]``    a US social security number: 3-2-4 digits, or 9 digits after "social", "ssn";
- ``[email]``  typed ("jamie.rivera@gmail.com") or spoken ("jamie dot rivera at gmail dot com");
- ``[phone]``  a US number: 10 digits, or 11 with a leading 1 ("+1", "(614) 555-0100");
- ``[number]`` any other string of 7 digits or more, spoken or typed (a card that fails Luhn,
  account and tracking numbers, ...).

Ordinary numbers survive: order numbers (4 digits, also "orders 1001, 1002"), prices ("$12.99",
"twelve ninety-nine", "$1,250,000"), dates ("May 8", "2026-05-08", "5/8/2026"), times, durations,
quantities and postcodes. A US ZIP code alone is not PII by the issue's list, so 5 digits stay,
and so does ZIP+4 after a ZIP cue ("zip 43004-1234"). Nothing under 7 digits is redacted.

Numbers are read with the number-run toolkit of :mod:`nlu.slots.spoken`, so "four one one one,
one one one one ...", "forty one eleven ...", "1, 2, 3, 4 5 6 7" and "555 010 0199" are all
digit strings here exactly as they are for the slot extractors. A run of digits may hold more
than one thing ("4111 1111 1111 1111, 12 28, 123": card, expiry, code); it is split only where
the caller paused (a comma, a dash, "uh") or between two typed groups of different lengths,
and the split covering the most digits with PII wins.

The caller ID lives in its own field of the call record and is not passed through here: phone
numbers inside transcripts are always redacted.

Where it runs: on a turn's text before the call store writes it (:func:`redact`), on the ASR
words and the recording before they are kept (:func:`redact_words`, then
:func:`silence_intervals`), and on every log record (:class:`RedactingFilter` on the handlers).

Everything here is pure and total: any string is accepted and nothing raises, except bad
arguments to :func:`silence_intervals` (:class:`ValueError`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

import numpy as np

from nlu.slots.cues import cues_before
from nlu.slots.spoken import (
    HESITATIONS,
    TEENS,
    TENS,
    UNITS,
    NumberRun,
    Token,
    TokenKind,
    number_runs,
)

__all__ = [
    "PLACEHOLDERS", "PiiKind", "RedactedSpan", "Redaction", "RedactingFilter", "Word",
    "luhn_valid", "redact", "redact_words", "silence_intervals",
]

PiiKind = Literal["card", "ssn", "email", "phone", "number"]
PLACEHOLDERS: Final[dict[PiiKind, str]] = {
    "card": "[card]", "ssn": "[ssn]", "email": "[email]", "phone": "[phone]", "number": "[number]",
}
MIN_LONG_DIGITS: Final = 7  # a shorter digit string is an ordinary number
_MAX_PII_DIGITS: Final = 19  # the longest card number


@dataclass(frozen=True, slots=True)
class RedactedSpan:
    """``text[start:end]`` of the *original* text was PII of this kind."""

    kind: PiiKind
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted text and where, in the original text, each placeholder came from."""

    text: str
    spans: list[RedactedSpan]


@dataclass(frozen=True, slots=True)
class Word:
    """One ASR word with its timestamps in seconds; the text may keep the recogniser's leading
    space. From faster-whisper: ``Word(w.word, w.start, w.end)``."""

    text: str
    start_s: float
    end_s: float


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn check that every payment card number passes."""
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact(text: str) -> Redaction:
    """Replace every piece of PII in ``text`` by its placeholder (see the module docstring)."""
    spans = _email_spans(text)
    masked = text
    for span in spans:  # an email is one word to the number reader: it ends a run of digits
        masked = masked[:span.start] + "x" * (span.end - span.start) + masked[span.end:]
    spans += _number_spans(masked)
    if not spans:
        return Redaction(text, [])
    spans.sort(key=lambda span: span.start)
    pieces: list[str] = []
    at = 0
    for span in spans:
        pieces += [text[at:span.start], PLACEHOLDERS[span.kind]]
        at = span.end
    pieces.append(text[at:])
    return Redaction("".join(pieces), spans)


# --- emails ------------------------------------------------------------------------------------

_TLDS: Final = ("com|net|org|edu|gov|mil|io|co|us|uk|ca|au|de|fr|info|biz|me|ai|dev|app|"
                "email|online|xyz")
_PROVIDERS: Final = "gmail|googlemail|yahoo|hotmail|outlook|icloud|aol|protonmail|proton"
_TYPED_LOCAL = re.compile(r"(?<![\w.%+-])[\w.%+-]{1,64}$")  # before "@"
_TYPED_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")  # after "@"
_AT = re.compile(r"(?<![a-z0-9])at(?![a-z0-9])|@", re.IGNORECASE)
_CONNECTOR = r"(?:\s*[._-]\s*|\s+(?:dot|period|underscore|dash|hyphen)\s+)"
# A part of the name before "at": letters spelled one by one ("j a m i e"), a word or a number.
# Atomic groups and possessive repeats: only one way to read it, so no backtracking blow-up.
_NAME_PART = r"(?>[a-z0-9](?:\s+[a-z0-9](?![a-z0-9]))+|[a-z0-9]+)"
_LOCAL = re.compile(rf"(?<![a-z0-9'\u2019]){_NAME_PART}"
                    rf"(?:(?:{_CONNECTOR}|\s+(?=\d)){_NAME_PART})*+\s*$", re.IGNORECASE)
_DOT = r"(?:\s*\.\s*|\s+dot\s+)"
_DOMAIN = re.compile(
    # "g mail", "hot mail": the recogniser splits the big providers' names
    rf"\s*(?:(?:[a-z0-9-]+(?:\s+mail)?{_DOT})+(?:{_TLDS})|(?:{_PROVIDERS}))(?![a-z0-9])",
    re.IGNORECASE)
# "look at brightline dot com" is a web address, "email me at ..." is not an email's name.
_NOT_A_NAME: Final = frozenset({
    "me", "us", "it", "is", "him", "her", "them", "you", "email", "mail", "address", "home",
    "work", "look", "looking", "here", "there", "be", "was", "were", "reach", "contact", "write",
    "that", "this", "site", "website", "online", "go", "went", "check", "visit",
})
_LOCAL_WINDOW: Final = 80  # characters before "at" that may hold the name


def _email_spans(text: str) -> list[RedactedSpan]:
    spans: list[RedactedSpan] = []
    if "@" not in text and not re.search(r"\bat\b", text, re.IGNORECASE):
        return spans
    for at in _AT.finditer(text):
        if spans and at.start() < spans[-1].end:
            continue
        window = max(0, at.start() - _LOCAL_WINDOW, spans[-1].end if spans else 0)
        if at.group() == "@":  # typed: "jamie.rivera@gmail.com"
            local = _TYPED_LOCAL.search(text, window, at.start())
            domain = _TYPED_DOMAIN.match(text, at.end())
            if local is not None and domain is not None:
                spans.append(RedactedSpan("email", local.start(), domain.end()))
                continue
        domain = _DOMAIN.match(text, at.end())
        local = None if domain is None else _LOCAL.search(text, window, at.start())
        if domain is None or local is None or local.group().strip().lower() in _NOT_A_NAME:
            continue
        spans.append(RedactedSpan("email", local.start(), domain.end()))
    return spans


# --- tokens with their places in the text ----------------------------------------------------

_TOKEN = re.compile(
    # dates first, so that "2026-05-08" and "05-08-2026" are not digit strings
    r"(?P<slash>(?:19|20)\d\d-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])(?![\d-])"
    r"|(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])-(?:19|20)\d\d(?![\d-])"
    r"|\d{1,2}\.\d{1,2}\.(?:19|20)\d\d(?!\d)|\d{1,4}(?:/\d{1,4}){1,2})"
    r"|(?P<decimal>\d{1,3}(?:,\d{3})+\.\d+|\d+\.\d{1,3}(?![\d.]))"
    r"|(?P<time>\d{1,2}:\d{2})"
    r"|(?P<ordinal>\d+(?:st|nd|rd|th)\b)"
    r"|(?P<digits>\d{1,3}(?:,\d{3})+(?![\d,])|\d+)"
    r"|(?P<link>(?<=\d)\.(?=\d))"  # "4111.1111.1111.1111": dots between digit groups
    r"|(?P<ord>\bo[ .\-]*r[ .\-]*d\b)"  # "o r d", "O.R.D."
    r"|(?P<word>[a-z]+(?:['\u2019][a-z]+)*)"
    r"|(?P<comma>,)"
    r"|(?P<stop>[.!?;:\u2026]+)"
    r"|(?P<symbol>[$#%+&\-\u2010-\u2015\u2212])",
    re.IGNORECASE,
)


def _tokenize(text: str) -> tuple[list[Token], list[tuple[int, int]]]:
    """:func:`nlu.slots.spoken.tokenize`'s tokens, with the offsets of each in ``text``."""
    tokens: list[Token] = []
    offsets: list[tuple[int, int]] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "symbol"
        value = m.group().lower()
        if kind == "link" or kind == "symbol" and not value.isascii():
            value, kind = "-", "symbol"
        elif kind == "ord":
            value, kind = "ord", "word"
        elif kind == "word":
            value = value.replace("'", "").replace("\u2019", "")
        elif kind == "digits":
            value = value.replace(",", "")
        tokens.append(Token(value, cast(TokenKind, kind)))
        offsets.append(m.span())
    return tokens, offsets


# --- digit strings -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Atom:
    """One group of a run as it was said or typed: "4111", "forty one", "five"."""

    digits: str
    first: int  # token indices, inclusive
    last: int
    typed: bool


@dataclass(frozen=True, slots=True)
class _Context:
    """What the words before a run say about it."""

    cues: tuple[str, ...]  # nearest first
    ssn: bool


_SSN_WORDS: Final = frozenset({"social", "ssn", "ss"})
_BREAKS: Final = frozenset({",", "-", "and"}) | HESITATIONS
_MONEY_AFTER: Final = frozenset({"dollar", "dollars", "bucks", "cents", "usd"})


# Without 7 digits or a number word, no run can be long enough: skip reading (most log lines).
_DIGIT = re.compile(r"\d")
_NUMBER_WORDS: Final = "|".join([*UNITS, *TEENS, *TENS, "hundred", "thousand", "double", "triple"])
_NUMBER_WORD = re.compile(rf"\b(?:{_NUMBER_WORDS})\b", re.IGNORECASE)


def _number_spans(text: str) -> list[RedactedSpan]:
    if len(_DIGIT.findall(text)) < MIN_LONG_DIGITS and not _NUMBER_WORD.search(text):
        return []
    tokens, offsets = _tokenize(text)
    spans: list[RedactedSpan] = []
    floor = 0
    for run in number_runs(tokens):
        if len(run.digits) >= MIN_LONG_DIGITS:
            for kind, first, last in _classify(tokens, run, floor):
                start, end = offsets[first][0], offsets[last][1]
                if start > 0 and (text[start - 1] == "+" or
                                  text[start - 1] == "(" and ")" in text[start:end]):
                    start -= 1
                spans.append(RedactedSpan(kind, start, end))
        floor = run.end
    return spans


def _classify(tokens: list[Token], run: NumberRun, floor: int) -> list[tuple[PiiKind, int, int]]:
    """The PII in one run: (kind, first token, last token) for each part to redact."""
    atoms = _atoms(tokens, run)
    blocks = _blocks(tokens, atoms)
    ctx = _Context(tuple(cues_before(tokens, run, floor=floor)), _ssn_cue(tokens, run, floor))
    # best[j]: the best reading of blocks[:j] as (digits in PII, -parts), where it starts, kind.
    best: list[tuple[tuple[int, int], int, PiiKind | None]] = [((0, 0), 0, None)]
    for j in range(1, len(blocks) + 1):
        (covered, parts), _, _ = best[j - 1]
        choice: tuple[tuple[int, int], int, PiiKind | None] = ((covered, parts - 1), j - 1, None)
        digits = ""
        for i in range(j - 1, -1, -1):
            digits = "".join(a.digits for a in blocks[i]) + digits
            if len(digits) > _MAX_PII_DIGITS:
                break
            kind = _pii_kind([a for block in blocks[i:j] for a in block], digits, ctx,
                             at_start=i == 0)
            (covered, parts), _, _ = best[i]
            if kind is not None and (covered + len(digits), parts - 1) > choice[0]:
                choice = ((covered + len(digits), parts - 1), i, kind)
        best.append(choice)
    found: list[tuple[PiiKind | None, list[_Atom]]] = []
    j = len(blocks)
    while j > 0:
        _, i, kind = best[j]
        part = [a for block in blocks[i:j] for a in block]
        if kind is None and found and found[-1][0] is None:
            found[-1] = (None, part + found[-1][1])  # plain blocks side by side are one number
        else:
            found.append((kind, part))
        j = i
    found.reverse()
    redacted: list[tuple[PiiKind, int, int]] = []
    for kind, part in found:
        if kind is None:
            kind = _long_number_kind(tokens, part, blocks, ctx, at_start=part[0] is atoms[0])
        if kind is not None:
            redacted.append((kind, part[0].first, part[-1].last))
    return redacted


def _pii_kind(atoms: list[_Atom], digits: str, ctx: _Context, *, at_start: bool) -> PiiKind | None:
    lengths = tuple(len(a.digits) for a in atoms)
    n = len(digits)
    if 13 <= n <= 19 and luhn_valid(digits) and _card_shaped(atoms, lengths):
        return "card"
    if n == 9 and _fits(lengths, (3, 2, 4)) and (
            ctx.ssn and at_start or lengths == (3, 2, 4) and all(a.typed for a in atoms)):
        return "ssn"
    if n == 10 and digits[0] in "23456789" and _fits(lengths, (3, 3, 4)):
        return "phone"
    if n == 11 and digits[0] == "1" and digits[1] in "23456789" and _fits(lengths, (1, 3, 3, 4)):
        return "phone"
    if n == 7 and at_start and "phone" in ctx.cues and _fits(lengths, (3, 4)):
        return "phone"
    return None


def _card_shaped(atoms: list[_Atom], lengths: tuple[int, ...]) -> bool:
    """Typed card numbers come in one piece or in groups of 4 (Amex: 4-6-5, Diners: 4-6-4);
    spoken ones in any chunks that do not straddle a group of 4."""
    if lengths in ((4, 6, 5), (4, 6, 4)) or len(lengths) == 1:
        return True
    if all(a.typed and len(a.digits) > 1 for a in atoms):
        return all(length == 4 for length in lengths[:-1]) and lengths[-1] <= 4
    n = sum(lengths)
    return _fits(lengths, (4,) * (n // 4) + ((n % 4,) if n % 4 else ()))


def _fits(lengths: tuple[int, ...], groups: tuple[int, ...]) -> bool:
    """Whether atoms of these lengths can be read in these groups: each atom lies inside one
    group or is whole groups ("1001 555 010 0199" is no phone number: 1001 straddles 3)."""
    edges = {0}
    for size in groups:
        edges.add(max(edges) + size)
    at = 0
    for length in lengths:
        end = at + length
        inside = [edge for edge in edges if at < edge < end]
        if inside and (at not in edges or end not in edges):
            return False
        at = end
    return True


def _long_number_kind(tokens: list[Token], part: list[_Atom], blocks: list[list[_Atom]],
                      ctx: _Context, *, at_start: bool) -> PiiKind | None:
    """``[number]`` for a digit string of 7 or more that is not an ordinary number."""
    digits = "".join(a.digits for a in part)
    if len(digits) < MIN_LONG_DIGITS:
        return None
    before = tokens[part[0].first - 1].text if part[0].first > 0 else ""
    after = tokens[part[-1].last + 1].text if part[-1].last + 1 < len(tokens) else ""
    if before == "$" or after in _MONEY_AFTER:
        return None  # a price: "$1,250,000", "2500000 dollars"
    nearest = ctx.cues[0] if ctx.cues and at_start else ""
    groups = ["".join(a.digits for a in block) for block in blocks
              if any(block[0] is a for a in part)]
    orders = [a.digits for a in part] if all(a.typed for a in part) else groups
    if nearest in ("order", "ord") and len(orders) <= 3 and all(len(g) == 4 for g in orders):
        return None  # "orders 1001, 1002 and 1003", "orders 1001 1002"
    if nearest == "postcode" and [len(g) for g in groups] == [5, 4]:
        return None  # ZIP+4
    if len(part) <= 3 and all(a.typed and len(a.digits) == 4 and a.digits[:2] in ("19", "20")
                              for a in part):
        return None  # years: "2024, 2025"
    return "phone" if at_start and "phone" in ctx.cues else "number"


def _ssn_cue(tokens: list[Token], run: NumberRun, floor: int) -> bool:
    words = [t.text for t in tokens[max(floor, run.start - 8):run.start] if t.kind == "word"]
    spelled = "".join(w for w in words if len(w) == 1)
    return any(w in _SSN_WORDS for w in words) or "ssn" in spelled


def _atoms(tokens: list[Token], run: NumberRun) -> list[_Atom]:
    """The run's chunks with the tokens each came from (the toolkit reads "forty one eleven" as
    41, 11; this finds which words made 41). A run it cannot align stays one atom."""
    atoms: list[_Atom] = []
    i = run.start
    for chunk in run.chunks:
        while i < run.end and tokens[i].text in _BREAKS:  # a pause between chunks
            i += 1
        token = tokens[i] if i < run.end else None
        if token is None:
            break
        if token.kind == "digits" and token.text == chunk:
            atoms.append(_Atom(chunk, i, i, typed=True))
            i += 1
            continue
        if token.kind == "word" and token.text in UNITS and str(UNITS[token.text]) == chunk and \
                (i + 1 >= run.end or tokens[i + 1].text not in ("hundred", "thousand")):
            atoms.append(_Atom(chunk, i, i, typed=False))
            i += 1
            continue
        for j in range(i + 1, run.end + 1):
            if "".join(r.digits for r in number_runs(tokens[i:j])) == chunk:
                atoms.append(_Atom(chunk, i, j - 1, typed=False))
                i = j
                break
        else:
            break
    if "".join(a.digits for a in atoms) != run.digits:
        return [_Atom(run.digits, run.start, run.end - 1, typed=False)]
    return atoms


def _blocks(tokens: list[Token], atoms: list[_Atom]) -> list[list[_Atom]]:
    """Atoms grouped where a run may be split: at a pause ("," "-" "uh" "and") or between two
    typed groups of different lengths; never inside digits dictated one by one."""
    blocks: list[list[_Atom]] = [[atoms[0]]]
    for left, right in zip(atoms, atoms[1:], strict=False):
        paused = any(t.text in _BREAKS for t in tokens[left.last + 1:right.first])
        # "1001 555 010 0199" but not "9400 1000 0000 0000 0000": one long number in groups
        grouped = left.typed and right.typed and len(left.digits) > 1 and len(right.digits) > 1 \
            and len(left.digits) != len(right.digits)
        soft_zero = left is atoms[0] and tokens[left.first].text in ("oh", "o")
        if paused or grouped or soft_zero:
            blocks.append([right])
        else:
            blocks[-1].append(right)
    return blocks


# --- ASR words and audio -----------------------------------------------------------------------

def redact_words(words: Sequence[Word]) -> tuple[list[Word], list[tuple[float, float]]]:
    """:func:`redact` over ASR words: the words with each PII stretch merged into one word that
    holds its placeholder, and the (start_s, end_s) intervals to silence in the recording."""
    cores = [w.text.strip() for w in words]
    bounds: list[tuple[int, int]] = []
    at = 0
    for core in cores:
        bounds.append((at, at + len(core)))
        at += len(core) + 1
    text = " ".join(cores)
    spans = redact(text).spans
    if not spans:
        return list(words), []
    groups: list[tuple[int, int, list[RedactedSpan]]] = []  # first word, last word, spans
    for span in spans:
        lo = next(k for k, (_, end) in enumerate(bounds) if end > span.start)
        hi = max(k for k, (start, _) in enumerate(bounds) if start < span.end)
        if groups and lo <= groups[-1][1]:
            groups[-1] = (groups[-1][0], max(hi, groups[-1][1]), [*groups[-1][2], span])
        else:
            groups.append((lo, hi, [span]))
    out: list[Word] = []
    intervals: list[tuple[float, float]] = []
    k = 0
    for lo, hi, group_spans in groups:
        out += words[k:lo]
        start, end = bounds[lo][0], bounds[hi][1]
        pieces, cursor = [], start
        for span in group_spans:
            pieces += [text[cursor:span.start], PLACEHOLDERS[span.kind]]
            cursor = span.end
        pieces.append(text[cursor:end])
        lead = words[lo].text[:len(words[lo].text) - len(words[lo].text.lstrip())]
        out.append(Word(lead + "".join(pieces), words[lo].start_s, words[hi].end_s))
        intervals.append((words[lo].start_s, words[hi].end_s))
        k = hi + 1
    out += words[k:]
    return out, intervals


def silence_intervals(pcm: bytes, sample_rate: int, intervals: Iterable[tuple[float, float]],
                      *, tone_hz: float | None = None, pad_s: float = 0.02,
                      tone_level: float = 0.1) -> bytes:
    """16-bit little-endian mono PCM with each interval (seconds, widened by ``pad_s`` either
    side) replaced by silence or, with ``tone_hz``, a quiet sine (``tone_level`` of full scale)
    so that a listener hears that something was cut."""
    if sample_rate <= 0 or pad_s < 0 or not 0 <= tone_level <= 1:
        raise ValueError("sample_rate must be positive, pad_s and tone_level in range")
    if tone_hz is not None and not (math.isfinite(tone_hz) and 0 < tone_hz < sample_rate / 2):
        raise ValueError(f"tone_hz must be between 0 and {sample_rate / 2} Hz, not {tone_hz}")
    whole = len(pcm) - len(pcm) % 2
    samples = np.frombuffer(pcm, dtype="<i2", count=whole // 2).copy()
    for start_s, end_s in intervals:
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            raise ValueError(f"interval ({start_s}, {end_s}) is not finite")
        lo = max(0, math.floor((start_s - pad_s) * sample_rate))
        hi = min(len(samples), math.ceil((end_s + pad_s) * sample_rate))
        if hi <= lo:
            continue
        if tone_hz is None:
            samples[lo:hi] = 0
        else:
            t = np.arange(lo, hi) / sample_rate  # absolute time: one tone across intervals
            samples[lo:hi] = np.round(tone_level * 32767 * np.sin(2 * np.pi * tone_hz * t))
    return samples.tobytes() + pcm[whole:]


# --- logs --------------------------------------------------------------------------------------

class RedactingFilter(logging.Filter):
    """Redacts every record's message (``msg % args``), exception text and stack.

    Attach it to *handlers* (``handler.addFilter(RedactingFilter())``): a filter on a logger
    sees only records logged on that very logger, not those its children propagate. The
    traceback is formatted here with the default :class:`logging.Formatter`, so that it can be
    redacted before any handler's formatter sees it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: the handler reports it as usual
            return True
        redacted = redact_log_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
        return True


# Identifiers in log lines are not PII, and a log is only useful if they stay whole: they are
# set aside while the line is redacted, as is the service's own "<start>-<end> ms" span. What
# counts as an identifier, first match wins:
#   - a labelled SIP Call-ID, whatever its value: "Call-ID: 3848276298220188511@host";
#   - "<id>@<host>", where <id> is a UUID or 14+ hex characters with a letter and a digit and
#     <host> no mail provider: a SIP Call-ID ("a84b4c76e66710@pc33.example.com"), not an email;
#   - a UUID (Asterisk's AudioSocket call ids): "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
#   - an IPv4 address, with or without a port;
#   - a word of 6+ letters and digits mixed (Twilio "CA..." SIDs, WebRTC "WR..." ids, handoff
#     ids, hex digests), unless shorter than 16 with 7 digits in a row ("acct61455501000" is an
#     account number).
# Only the first two may be, or be inside, what reads as an email; and an identifier that holds
# 13-19 digits in a row passing Luhn is read like any text: a card is a card.
_UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_OCTET: Final = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4: Final = rf"{_OCTET}(?:\.{_OCTET}){{3}}(?::\d{{1,5}})?"
_HOST: Final = r"(?:\[[0-9a-f:.]+\]|[a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::\d{1,5})?"
_LOG_SAFE = re.compile(
    r"(?P<call_id>\bcall[-_]?id\b[\"']?\s*[:=]?\s*[\"']?[^\s\"',;]+"
    rf"|(?<![\w.%+-])(?:{_UUID}|(?=[a-f]*\d)(?=\d*[a-f])[0-9a-f]{{14,}})"
    rf"@(?!(?:{_PROVIDERS})\.){_HOST})"
    rf"|\b{_UUID}\b"
    rf"|(?<![\d.]){_IPV4}(?![\d.]|:\d)"
    r"|(?P<word>\b(?=[A-Za-z_]*\d)(?=\d*[A-Za-z_])[A-Za-z0-9_]{6,}\b)"
    r"|\b\d+-\d+ ms\b",
    re.IGNORECASE)
_LONG_ID: Final = 16  # a word this long is an identifier whatever digits it holds
_DIGIT_RUN = re.compile(rf"\d{{{MIN_LONG_DIGITS}}}")


def _holds_card(text: str) -> bool:
    """Whether ``text`` has 13-19 digits in a row that pass the Luhn check."""
    return any(13 <= len(run) <= _MAX_PII_DIGITS and luhn_valid(run)
               for run in re.findall(r"\d+", text))


def redact_log_text(text: str) -> str:
    """:func:`redact` for log lines: identifiers and time spans are kept (see ``_LOG_SAFE``).

    The text between them is redacted piece by piece, so a run of digits ends at an identifier
    as it would at a word."""
    emails = [(span.start, span.end) for span in _email_spans(text)]
    pieces: list[str] = []
    at = 0
    for match in _LOG_SAFE.finditer(text):
        found = match.group()
        in_email = any(start < match.end() and match.start() < end for start, end in emails)
        if _holds_card(found) or in_email and match.lastgroup != "call_id" or \
                match.lastgroup == "word" and len(found) < _LONG_ID and _DIGIT_RUN.search(found):
            continue
        pieces += [redact(text[at:match.start()]).text, found]
        at = match.end()
    pieces.append(redact(text[at:]).text)
    return "".join(pieces)
