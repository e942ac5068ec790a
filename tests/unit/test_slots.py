"""Slots from speech as faster-whisper writes it, and from the keypad."""

from __future__ import annotations

import random
from datetime import date

import pytest

from nlu.slots import (
    DigitDictationDetector,
    DtmfCollector,
    extract_date,
    extract_digits_spoken,
    extract_order_number,
    extract_postcode,
    extract_yes_no,
    is_dictating_digits,
    keypad_entry,
)

pytestmark = pytest.mark.unit

TODAY = date(2025, 5, 1)  # a Thursday

ORDER_NUMBERS = [
    # every form DEMO_COMPANY.md lists
    ("ORD-1001", "ORD-1001"),
    ("ord 1001", "ORD-1001"),
    ("order 1001", "ORD-1001"),
    ("order number one zero zero one", "ORD-1001"),
    ("one zero zero one", "ORD-1001"),
    ("ten oh one", "ORD-1001"),
    ("ten zero one", "ORD-1001"),
    ("1 0 0 1", "ORD-1001"),
    ("1, 0, 0 1", "ORD-1001"),
    ("10 01", "ORD-1001"),
    ("my order is o r d dash one thousand one", "ORD-1001"),
    ("one thousand and one", "ORD-1001"),
    # more of how callers say it and Whisper writes it
    ("1001", "ORD-1001"),
    ("1,001", "ORD-1001"),
    ("1-0-0-1", "ORD-1001"),
    ("O-R-D 1002", "ORD-1002"),
    ("ORD1003", "ORD-1003"),
    ("Order #1004", "ORD-1004"),
    ("It's ten, oh, three.", "ORD-1003"),
    # Whisper's renderings of "one thousand (and) five": a thousands group that lost its zeros,
    # or the "and" kept between digits
    ("The order is 1,05.", "ORD-1005"),
    ("order 1,1 please", "ORD-1001"),
    ("It's 1,000 and 7", "ORD-1007"),
    ("HMM, 2000 and 15", "ORD-2015"),
    ("1,0,0,2", "ORD-1002"),
    ("one oh oh two", "ORD-1002"),
    ("one double oh four", "ORD-1004"),
    ("Oh, my order number is ten oh two.", "ORD-1002"),
    ("Oh 1001", "ORD-1001"),
    ("Um, it's one, uh, zero zero three", "ORD-1003"),
    ("I'm checking on an order I placed last week, it's ten oh one", "ORD-1001"),
    ("Where is my order? The number is 1001, I paid $12.99 for express.", "ORD-1001"),
    ("It's about order ten oh one, it was due May 8", "ORD-1001"),
    ("my zip code is 43004 and my order is 1002", "ORD-1002"),
    ("order 1001, sorry, I mean 1003", "ORD-1003"),
    ("It's not 1001, it's 1003", "ORD-1003"),
    ("The headphones, order 1001, were supposed to come in 3 to 5 business days", "ORD-1001"),
    # not order numbers
    ("I ordered 2 things", None),
    ("Express shipping costs $12.99", None),
    ("I was charged twelve ninety nine", None),
    ("twelve ninety nine dollars", None),
    ("Brightline Plus is nine ninety nine a month", None),
    ("It was supposed to arrive May 8", None),
    ("on May 8, 2025", None),
    ("It was delivered on April twenty eighth", None),
    ("the 8th of May", None),
    ("can I still return it after 30 days", None),
    ("my zip is 94110", None),
    ("zip code four three zero zero four", None),
    ("my phone number is 555 0100", None),
    ("you can call me back at 555-0100", None),
    ("my cell ends in 0100", None),
    ("I bought it in 2023", None),
    ("I've been a member since 2019", None),
    ("I live at 1001 Main Street", None),
    ("the last four digits of my card are 1234", None),
    ("it arrived at 10:30", None),
    ("order 10014", None),
    ("I want to check my order", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), ORDER_NUMBERS, ids=[t for t, _ in ORDER_NUMBERS])
def test_order_number_is_read_from_speech(text: str, expected: str | None) -> None:
    assert extract_order_number(text) == expected


@pytest.mark.parametrize(("dtmf", "expected"), [
    ("1001#", "ORD-1001"),
    ("1001", "ORD-1001"),
    ("12*1002#", "ORD-1002"),
    ("1003#*", "ORD-1003"),
    ("#", None),
    ("99#", None),
])
def test_order_number_is_read_from_the_keypad(dtmf: str, expected: str | None) -> None:
    assert extract_order_number("", dtmf=dtmf) == expected


def test_keypad_entry_wins_over_speech_and_a_bad_one_falls_back_to_it() -> None:
    assert extract_order_number("order 1001", dtmf="1002#") == "ORD-1002"
    assert extract_order_number("order 1001", dtmf="12#") == "ORD-1001"


def test_order_numbers_of_other_lengths_and_prefixes_are_a_parameter() -> None:
    assert extract_order_number("order one two three four five six", digits=6) == "ORD-123456"
    assert extract_order_number("order 1001", digits=6) is None
    assert extract_order_number("order 12345678", digits=8, prefix="BL") == "BL-12345678"
    with pytest.raises(ValueError):
        extract_order_number("order 1001", digits=3)
    with pytest.raises(ValueError):
        extract_order_number("order 1001", digits=9)


def test_a_zip_code_is_never_an_order_number_even_when_lengths_match() -> None:
    assert extract_order_number("my zip is 94110", digits=5) is None
    assert extract_order_number("order 43004", digits=5) == "ORD-43004"


POSTCODES = [
    ("four three zero zero four", "43004"),
    ("43004", "43004"),
    ("4 3 0 0 4", "43004"),
    ("my zip is 94110", "94110"),
    ("zip code nine four one one zero", "94110"),
    ("ninety four one ten", "94110"),
    ("forty three oh oh four", "43004"),
    ("oh two one three nine", "02139"),
    ("My order is 1001 and my zip is 43004.", "43004"),
    ("zip code 43004-1234", "43004"),
    ("the zip is 43,05", "43005"),  # "forty three thousand five", as Whisper may write it
    ("order 43004", None),
    ("my phone number is 555 0100", None),
    ("it cost 12 dollars", None),
    ("4 3 0 0", None),
    ("I don't know it", None),
]


@pytest.mark.parametrize(("text", "expected"), POSTCODES, ids=[t for t, _ in POSTCODES])
def test_postcode_is_read_from_speech(text: str, expected: str | None) -> None:
    assert extract_postcode(text) == expected


def test_postcode_is_read_from_the_keypad() -> None:
    assert extract_postcode("", dtmf="43004#") == "43004"
    assert extract_postcode("", dtmf="4300#") is None


DIGITS = [
    ("ten oh one", "1001"),
    ("double five", "55"),
    ("triple seven two", "7772"),
    ("double oh seven", "007"),
    ("one hundred and five", "105"),
    ("forty three thousand four", "43004"),
    ("twenty twenty five", "2025"),
    ("my number is 5, 5, 5", "555"),
    ("1,500 or 2,250", "15002250"),  # whole thousands groups are left alone
    ("oh, hello", ""),
    ("nothing to see here", ""),
]


@pytest.mark.parametrize(("text", "expected"), DIGITS, ids=[t for t, _ in DIGITS])
def test_spoken_digits_become_digits(text: str, expected: str) -> None:
    assert extract_digits_spoken(text) == expected


YES_NO = [
    ("yes", True), ("Yeah.", True), ("yep", True), ("Sure.", True), ("That's right.", True),
    ("correct", True), ("Go ahead.", True), ("Please do.", True), ("yes please", True),
    ("absolutely", True), ("uh huh", True), ("Mm-hmm.", True), ("no problem", True), ("Sure, why not.", True),
    ("No, go ahead.", True),
    ("no", False), ("Nope.", False), ("don't", False), ("Not really.", False),
    ("No thanks.", False), ("Cancel that.", False), ("Yes... actually no.", False),
    ("That's not right.", False), ("Please don't.", False), ("nah", False),
    ("I don't know.", None), ("I'm not sure", None), ("The number is 1001.", None), ("", None),
    ("Yes, wait.", None), ("OK, hold on.", None), ("Hang on, yes.", True),
]


@pytest.mark.parametrize(("text", "expected"), YES_NO, ids=[t or "empty" for t, _ in YES_NO])
def test_yes_or_no_is_read_and_the_last_answer_wins(text: str, expected: bool | None) -> None:
    assert extract_yes_no(text) is expected


DATES = [
    ("May 8", date(2025, 5, 8)),
    ("It was supposed to come on May 8th.", date(2025, 5, 8)),
    ("the 8th of May", date(2025, 5, 8)),
    ("tomorrow", date(2025, 5, 2)),
    ("yesterday", date(2025, 4, 30)),
    ("the day before yesterday", date(2025, 4, 29)),
    ("last Monday", date(2025, 4, 28)),
    ("next Friday", date(2025, 5, 2)),
    ("on Thursday", date(2025, 5, 1)),
    ("April twenty eighth", date(2025, 4, 28)),
    ("April the twenty eighth", date(2025, 4, 28)),
    ("May eight", date(2025, 5, 8)),
    ("4/28", date(2025, 4, 28)),
    ("4/28/2024", date(2024, 4, 28)),
    ("May 8th, 2024", date(2024, 5, 8)),
    ("December 28", date(2024, 12, 28)),
    ("three days ago", date(2025, 4, 28)),
    ("a week ago", date(2025, 4, 24)),
    ("in 2 weeks", date(2025, 5, 15)),
    ("on the 28th", date(2025, 4, 28)),
    ("I ordered it April 20 and it came April 28", date(2025, 4, 28)),
    ("within 30 days", None),
    ("May I ask something?", None),
    ("February 30", None),
    ("order 1001", None),
    ("the first one is fine", None),
]


@pytest.mark.parametrize(("text", "expected"), DATES, ids=[t for t, _ in DATES])
def test_date_is_resolved_against_today(text: str, expected: date | None) -> None:
    assert extract_date(text, today=TODAY) == expected


DICTATION = [
    ("my order number is", True),
    ("My order number is.", True),
    ("um, my order number is, uh", True),
    ("it's O R D dash", True),
    ("my zip code is", True),
    ("my order number is ten", True),
    ("one zero", True),
    ("1 0 0", True),
    ("ten oh one, and", True),
    ("one thousand", True),
    ("my zip is four three zero zero", True),
    ("ten oh one", False),
    ("order number one zero zero one.", False),
    ("my zip is 43004", False),
    ("it cost 12", False),
    ("it was delivered on May 8", False),
    ("I want to check my order status", False),
    ("I'll take the blue one", False),
    ("", False),
]


@pytest.mark.parametrize(("text", "expected"), DICTATION, ids=[t or "empty" for t, _ in DICTATION])
def test_dictating_digits_is_noticed_in_partial_transcripts(text: str, expected: bool) -> None:
    assert is_dictating_digits(text) is expected


def test_dictation_waits_for_the_length_of_the_code_that_was_asked_for() -> None:
    detector = DigitDictationDetector(expected_digits=5)
    assert detector("four three zero zero") is True
    assert detector("43004") is False
    assert DigitDictationDetector(expected_digits=4).is_dictating("ten oh") is True


@pytest.mark.parametrize(("keys", "expected"), [
    ("1001#", "1001"), ("10*1001#", "1001"), ("1001", "1001"), ("1001#12", "1001"), ("#", ""),
    ("*", ""), ("", ""),
])
def test_keypad_entry_reads_a_whole_keypad_string(keys: str, expected: str) -> None:
    assert keypad_entry(keys) == expected


def press_all(collector: DtmfCollector, keys: str, *, start_s: float = 0.0,
              every_s: float = 0.5) -> list[str | None]:
    return [collector.press(key, start_s + i * every_s) for i, key in enumerate(keys)]


def test_dtmf_collector_returns_the_digits_when_pound_arrives() -> None:
    assert press_all(DtmfCollector(), "1001#") == [None, None, None, None, "1001"]


def test_dtmf_collector_star_clears_the_entry() -> None:
    collector = DtmfCollector()
    assert press_all(collector, "12*1002#")[-1] == "1002"


def test_dtmf_collector_returns_the_digits_after_the_timeout_since_the_last_key() -> None:
    collector = DtmfCollector(timeout_s=5.0)
    press_all(collector, "10", start_s=0.0, every_s=4.0)  # keys at 0 s and 4 s
    assert collector.deadline_s == 9.0
    assert collector.poll(8.9) is None
    assert collector.poll(9.0) == "10"
    assert collector.poll(20.0) is None
    assert collector.digits == ""


def test_dtmf_collector_pound_with_nothing_typed_returns_nothing() -> None:
    collector = DtmfCollector()
    assert collector.press("#", 0.0) is None
    assert collector.poll(100.0) is None


def test_dtmf_collector_a_key_after_the_timeout_returns_the_stale_entry_and_starts_anew() -> None:
    collector = DtmfCollector(timeout_s=5.0)
    collector.press("1", 0.0)
    assert collector.press("2", 6.0) == "1"
    assert collector.press("#", 6.5) == "2"


def test_dtmf_collector_stops_at_its_maximum_length() -> None:
    collector = DtmfCollector(max_digits=4)
    assert press_all(collector, "100123") == [None, None, None, "1001", None, None]
    assert collector.digits == "23"


def test_dtmf_collector_ignores_letter_keys_and_rejects_non_keys() -> None:
    collector = DtmfCollector()
    assert press_all(collector, "1A0#") == [None, None, None, "10"]
    with pytest.raises(ValueError):
        collector.press("x", 1.0)
    with pytest.raises(ValueError):
        collector.press("12", 1.0)
    with pytest.raises(ValueError):
        DtmfCollector(timeout_s=0)


def test_dtmf_collector_reset_forgets_the_entry() -> None:
    collector = DtmfCollector()
    press_all(collector, "12")
    collector.reset()
    assert collector.deadline_s is None
    assert collector.poll(100.0) is None


def test_extractors_never_raise_on_garbage_text() -> None:
    rng = random.Random(7)
    alphabet = "abo rdtenh0123456789 ,.-#$/:'?!&%+\u2014\u2019"
    vocabulary = ["oh", "double", "thousand", "hundred", "and", "a", "may", "the", "8th", "of",
                  "order", "zip", "twenty", "ninety", "one", "last", "in", "ago", "days", "not"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        words = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 12)))
        for sample in (text, words):
            extract_order_number(sample)
            extract_postcode(sample)
            extract_date(sample, today=TODAY)
            extract_yes_no(sample)
            extract_digits_spoken(sample)
            is_dictating_digits(sample)
