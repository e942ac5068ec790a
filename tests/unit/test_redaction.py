"""PII redaction: the labelled set, Luhn, ASR words, audio and logs."""

from __future__ import annotations

import json
import logging
import random
import re
import time
from pathlib import Path

import numpy as np
import pytest

from nlu.slots.spoken import number_runs, tokenize
from review.redaction import (
    PLACEHOLDERS,
    RedactedSpan,
    RedactingFilter,
    Word,
    luhn_valid,
    redact,
    redact_log_text,
    redact_words,
    silence_intervals,
)

pytestmark = pytest.mark.unit

EVAL_FILE = Path(__file__).parents[2] / "review" / "data" / "redaction_eval.jsonl"
ROWS = [json.loads(line) for line in EVAL_FILE.read_text().splitlines() if line.strip()]
LEAK_WINDOW = 5  # this many PII digits in a row, anywhere in what is left, is a leak


def digit_strings(text: str) -> list[str]:
    """Every digit string a reader could get back from the text: typed digits (whatever their
    punctuation) and spoken runs ("four one one one")."""
    typed = re.findall(r"\d+", text)
    joined = "".join(re.findall(r"\d", text))
    return [*typed, joined, *(run.digits for run in number_runs(tokenize(text)))]


def without(text: str, keeps: list[str]) -> str:
    for keep in keeps:
        text = re.sub(re.escape(keep), " | ", text, flags=re.IGNORECASE)
    return text


def leaked_digits(pii: str, text: str) -> str | None:
    width = min(LEAK_WINDOW, len(pii))
    for found in digit_strings(text):
        for i in range(len(pii) - width + 1):
            if pii[i:i + width] in found:
                return pii[i:i + width]
    return None


def email_survives(email: str, text: str) -> bool:
    spoken = text.lower().replace(" dot ", ".").replace(" underscore ", "_") \
        .replace(" dash ", "-")
    local, _, domain = email.partition("@")
    return "@" in text or local in spoken or domain.split(".")[0] in spoken


# --- the labelled set ---------------------------------------------------------------------------

def test_the_labelled_set_is_big_enough_and_covers_every_kind():
    assert len(ROWS) >= 80
    assert sum(1 for row in ROWS if not row["pii"]) >= 30
    kinds = {span.kind for row in ROWS for span in redact(row["text"]).spans}
    assert kinds == set(PLACEHOLDERS)
    for row in ROWS:
        assert set(row) == {"text", "pii", "keep"}
        for pii in row["pii"]:
            assert pii.isdigit() or ("@" in pii and pii == pii.lower()), pii
        for keep in row["keep"]:
            assert keep.lower() in row["text"].lower(), keep


def assert_redacted(row: dict, redacted: str) -> None:
    """No PII of the labelled row is left in ``redacted``, and what it keeps is there."""
    rest = without(redacted, row["keep"])
    for pii in row["pii"]:
        if "@" in pii:
            assert not email_survives(pii, rest), redacted
        else:
            assert leaked_digits(pii, rest) is None, redacted
    for keep in row["keep"]:
        assert keep.lower() in redacted.lower(), redacted
    if not row["pii"]:
        assert redacted == row["text"]


@pytest.mark.parametrize("row", ROWS, ids=[row["text"][:40] for row in ROWS])
def test_no_pii_gets_through_and_ordinary_numbers_survive(row):
    assert_redacted(row, redact(row["text"]).text)


def test_redaction_is_fast():
    texts = [row["text"] for row in ROWS]
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            redact(text)
    per_second = rounds * len(texts) / (time.perf_counter() - started)
    print(f"redaction: {per_second:,.0f} utterances/s over {len(texts)} utterances")
    assert per_second > 500


# --- what each kind looks like ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("4111 1111 1111 1111", "[card]"),
    ("4111 1111 1111 1112", "[number]"),  # fails Luhn: still a long digit string
    ("my social is 123-45-6789", "my social is [ssn]"),
    ("jamie dot rivera at gmail dot com", "[email]"),
    ("(614) 555-0100", "[phone]"),
    ("+1 614 555 0100.", "[phone]."),
    ("member 12345678", "member [number]"),
    ("1, 2, 3, 4 5 6", "1, 2, 3, 4 5 6"),  # six digits: an ordinary number
])
def test_each_kind_gets_its_placeholder(text, expected):
    assert redact(text).text == expected


def test_spans_point_into_the_original_text():
    text = "card 4111 1111 1111 1111 or jamie.rivera@gmail.com, phone (614) 555-0100"
    result = redact(text)
    assert [(s.kind, text[s.start:s.end]) for s in result.spans] == [
        ("card", "4111 1111 1111 1111"),
        ("email", "jamie.rivera@gmail.com"),
        ("phone", "(614) 555-0100"),
    ]
    assert all(isinstance(span, RedactedSpan) for span in result.spans)


def test_a_run_is_split_where_the_caller_paused():
    assert redact("4111 1111 1111 1111, 12 28, 123").text == "[card], [number]"
    assert redact("order 1001 555 010 0199").text == "order 1001 [phone]"


def test_emails_side_by_side_do_not_overlap():
    assert redact("a@b.com@c.com").text == "[email]@c.com"
    assert redact("a@b.com b@c.org").text == "[email] [email]"


def test_a_web_address_is_not_an_email():
    assert redact("look at brightline dot com").text == "look at brightline dot com"


@pytest.mark.parametrize(("digits", "valid"), [
    ("4111111111111111", True), ("5555555555554444", True), ("378282246310005", True),
    ("4111111111111112", False), ("79927398713", True), ("79927398710", False),
    ("", False), ("41x1", False),
])
def test_luhn(digits, valid):
    assert luhn_valid(digits) is valid


def test_redacting_twice_changes_nothing_more():
    for row in ROWS:
        once = redact(row["text"]).text
        assert redact(once).text == once, row["text"]


def test_random_strings_never_raise():
    rng = random.Random(8)
    alphabet = "0123456789 ,.-@#$+()/:'abcdefghijklmnopqrstuvwxyz" + "\u2019\u2013\u00e9\n\t"
    words = ["one", "oh", "four", "forty", "eleven", "hundred", "thousand", "dot", "at", "com",
             "social", "order", "card", "phone", "uh", "and", "double", "a", "gmail", "o r d"]
    for _ in range(2000):
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        else:
            text = " ".join(rng.choice(words + [str(rng.randrange(10 ** rng.randrange(1, 9)))])
                            for _ in range(rng.randrange(30)))
        result = redact(text)
        assert redact(result.text).text == result.text
        at = 0
        for span in result.spans:  # in order, inside the text, never overlapping
            assert at <= span.start < span.end <= len(text)
            at = span.end


def test_pathological_input_stays_quick():
    started = time.perf_counter()
    for text in ["1 " * 3000, "a" * 50_000 + "@", "a." * 3000 + " at x", "at " * 3000]:
        redact(text)
    assert time.perf_counter() - started < 2


# --- ASR words and audio -----------------------------------------------------------------------

def words_of(text: str, *, every_s: float = 0.4) -> list[Word]:
    return [Word(f" {w}", i * every_s, i * every_s + 0.3) for i, w in enumerate(text.split())]


def test_words_over_pii_become_one_placeholder_with_their_time_span():
    words = words_of("my card is four one one one, one one one one, one one one one, "
                     "one one one one. order 1001.")
    redacted, intervals = redact_words(words)
    assert [w.text for w in redacted] == [" my", " card", " is", " [card].", " order", " 1001."]
    assert redacted[3].start_s == words[3].start_s and redacted[3].end_s == words[18].end_s
    assert intervals == [(words[3].start_s, words[18].end_s)]


def test_words_without_pii_come_back_as_they_were():
    words = words_of("where is order 1001")
    assert redact_words(words) == (words, [])
    assert redact_words([]) == ([], [])


def test_several_pii_stretches_give_several_intervals():
    words = words_of("call 614 555 0100 or mail jamie.rivera@gmail.com now")
    redacted, intervals = redact_words(words)
    assert [w.text.strip() for w in redacted] == ["call", "[phone]", "or", "mail", "[email]",
                                                  "now"]
    assert intervals == [(words[1].start_s, words[3].end_s), (words[6].start_s, words[6].end_s)]


def test_audio_inside_intervals_is_silenced_and_the_rest_is_untouched():
    rate = 16_000
    rng = np.random.default_rng(1)
    samples = rng.integers(-20_000, 20_000, size=rate * 3, dtype=np.int16)
    pcm = samples.tobytes()
    out = np.frombuffer(silence_intervals(pcm, rate, [(1.0, 1.5)], pad_s=0.02), dtype=np.int16)
    lo, hi = int(0.98 * rate), int(1.52 * rate)
    assert len(out) == len(samples)
    assert not out[lo:hi].any()
    assert np.array_equal(out[:lo], samples[:lo]) and np.array_equal(out[hi:], samples[hi:])


def test_audio_can_be_covered_by_a_quiet_tone_instead():
    rate = 8_000
    samples = np.full(rate * 2, 12_345, dtype=np.int16)
    out = np.frombuffer(silence_intervals(samples.tobytes(), rate, [(0.5, 1.0)], tone_hz=1000,
                                          pad_s=0.0), dtype=np.int16)
    tone = out[int(0.5 * rate):int(1.0 * rate)]
    assert np.abs(tone).max() <= 0.1 * 32767 + 1 and np.abs(tone).max() > 1000
    assert (out[:int(0.5 * rate)] == 12_345).all() and (out[int(1.0 * rate):] == 12_345).all()


def test_intervals_beyond_the_audio_are_clipped_and_odd_bytes_kept():
    pcm = np.full(100, 7, dtype=np.int16).tobytes() + b"\x01"
    out = silence_intervals(pcm, 1000, [(-1.0, 0.01), (0.09, 5.0)], pad_s=0.0)
    samples = np.frombuffer(out[:-1], dtype=np.int16)
    assert out[-1:] == b"\x01" and not samples[:10].any() and not samples[90:].any()
    assert (samples[10:90] == 7).all()


@pytest.mark.parametrize("kwargs", [{"sample_rate": 0}, {"tone_hz": 9000.0},
                                    {"intervals": [(float("nan"), 1.0)]}])
def test_silencing_rejects_bad_arguments(kwargs):
    args = {"pcm": b"\0\0" * 10, "sample_rate": 16000, "intervals": [(0.0, 0.1)], **kwargs}
    with pytest.raises(ValueError):
        silence_intervals(args.pop("pcm"), args.pop("sample_rate"), args.pop("intervals"), **args)


def test_redacted_words_drive_the_silencing_end_to_end():
    rate = 16_000
    words = words_of("ssn 123 45 6789 thanks")
    _, intervals = redact_words(words)
    pcm = np.full(rate * 3, 1000, dtype=np.int16).tobytes()
    out = np.frombuffer(silence_intervals(pcm, rate, intervals), dtype=np.int16)
    start, end = intervals[0]
    assert not out[int(start * rate):int(end * rate)].any()
    assert (out[int((end + 0.05) * rate):] == 1000).all()


# --- logs --------------------------------------------------------------------------------------

def test_the_logging_filter_keeps_card_numbers_out_of_logs(caplog):
    logger = logging.getLogger("tests.redaction")
    redacting = RedactingFilter()
    caplog.handler.addFilter(redacting)
    try:
        with caplog.at_level(logging.INFO, logger="tests.redaction"):
            logger.info("caller said %r on order %s", "4111 1111 1111 1111", "ORD-1001")
            logger.info("email %(email)s", {"email": "jamie.rivera@gmail.com"})
            logger.info("nothing to hide: %d items", 3)
            try:
                raise ValueError("bad card 4111111111111111")
            except ValueError:
                logger.exception("payment failed for 614-555-0100")
    finally:
        caplog.handler.removeFilter(redacting)
    text = caplog.text
    assert "4111" not in text and "jamie" not in text and "555" not in text
    messages = [record.getMessage() for record in caplog.records]
    assert messages[:3] == ["caller said '[card]' on order ORD-1001", "email [email]",
                            "nothing to hide: 3 items"]
    assert "bad card [card]" in text


def test_the_logging_filter_lets_a_broken_format_through_to_the_handler():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s %s", ("only one",), None)
    assert RedactingFilter().filter(record) is True


def test_log_lines_keep_ids_and_time_spans_but_not_pii():
    line = "call CAa3d7e1234567f15a1962bb02fd4a69: caller turn 4320-6592 ms (9 words)"
    assert redact_log_text(line) == line
    assert redact_log_text("card 4111 1111 1111 1111 for CA12ab34") == "card [card] for CA12ab34"
    assert "4111111111111111" not in redact_log_text("said 4111111111111111 (H1a2b3c4d)")


@pytest.mark.parametrize("line", [
    "call 6ba7b810-9dad-11d1-80b4-00c04fd430c8: Asterisk ended the call (hang-up)",
    "call 95038173-4b9d-4c5d-a1f4-04c5e1f7f0a2: caller turn 1200-3400 ms",  # digit groups
    "call 12345678-1234-5678-1234-567812345678: pipeline failed",  # a UUID of digits only
    "call WR3f2a1b4c5d6e7f8091a2b3c4d5e6f7a8: answered (1 in progress)",
    "call CAa3d7e1234567f15a1962bb02fd4a69: transferred to queue (handoff H1234567890123456)",
    "call a84b4c76e66710@pc33.example.com: INVITE answered",
    "call f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com: BYE",
    "call 9f86d081884c7d659a2feaa0c55ad015@192.168.100.101:5060: ACK",
    "Call-ID: 3848276298220188511@atlanta.example.com",  # labelled: any value is an id
    "dropping the AudioSocket connection from 192.168.100.101:53422",
])
def test_log_lines_keep_call_ids_of_every_transport_readable(line):
    assert redact_log_text(line) == line


@pytest.mark.parametrize(("line", "expected"), [
    ("call 6ba7b810-9dad-11d1-80b4-00c04fd430c8: card 4111 1111 1111 1111",
     "call 6ba7b810-9dad-11d1-80b4-00c04fd430c8: card [card]"),
    ("call a84b4c76e66710@pc33.example.com: my social is 123-45-6789",
     "call a84b4c76e66710@pc33.example.com: my social is [ssn]"),
    ("call WR3f2a1b4c5d6e7f8091a2b3c4d5e6f7a8: phone (614) 555-0100, email jamie2024@gmail.com",
     "call WR3f2a1b4c5d6e7f8091a2b3c4d5e6f7a8: phone [phone], email [email]"),
    ("call_id=CA12ab34 said 4111111111111111", "call_id=CA12ab34 said [card]"),
    ("said card4111111111111111", "said card[card]"),  # a card inside a word is still a card
    ("member A12345678", "member A[number]"),  # short, with 7 digits in a row: not an id
    ("deadbeef123456@gmail.com or abba1984@pc33.example.com", "[email] or [email]"),
    ("four one one one one one one one one one one one one one one one for CA12ab34",
     "[card] for CA12ab34"),
])
def test_log_lines_still_hide_pii_next_to_ids(line, expected):
    assert redact_log_text(line) == expected


@pytest.mark.parametrize("row", ROWS, ids=[row["text"][:40] for row in ROWS])
def test_log_redaction_lets_no_labelled_pii_through(row):
    assert_redacted(row, redact_log_text(row["text"]))


def test_log_redaction_never_raises_on_random_strings():
    rng = random.Random(7)
    alphabet = "0123456789abcdefCAWR-@.: \x00"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert isinstance(redact_log_text(text), str)
