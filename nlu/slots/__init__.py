"""Slots: the values a caller gives in a turn, from the transcript or the keypad.

Phone speech arrives as faster-whisper writes it ("1001", "10 01", "1, 0, 0 1", "ten oh one",
"one thousand and one"), so everything here reads numbers in all those shapes and uses the
words around them to tell an order number from a price, a date, a duration or a phone number.

- :func:`extract_order_number` -> ``"ORD-1001"``; :func:`extract_postcode` -> ``"43004"``
- :func:`extract_date`, :func:`extract_yes_no`, :func:`extract_digits_spoken`
- :class:`DtmfCollector` and :func:`keypad_entry` for keypad input
- :func:`is_dictating_digits` / :class:`DigitDictationDetector` for turn-taking

All of it is pure and synchronous. Text is never rejected: anything that is not understood
gives None (or ""). Only bad options and non-DTMF keys raise :class:`ValueError`.

Modules: ``spoken`` (tokens and number runs), ``cues`` (what the nearby words say a number is),
``codes`` (order numbers, ZIP codes), ``dates``, ``yes_no``, ``dtmf``, ``dictation``.
"""

from nlu.slots.codes import extract_order_number, extract_postcode
from nlu.slots.dates import extract_date
from nlu.slots.dictation import DigitDictationDetector, is_dictating_digits
from nlu.slots.dtmf import DtmfCollector, keypad_entry
from nlu.slots.spoken import extract_digits_spoken
from nlu.slots.yes_no import extract_yes_no

__all__ = [
    "DigitDictationDetector",
    "DtmfCollector",
    "extract_date",
    "extract_digits_spoken",
    "extract_order_number",
    "extract_postcode",
    "extract_yes_no",
    "is_dictating_digits",
    "keypad_entry",
]
