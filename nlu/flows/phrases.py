"""Small pieces of speech the flows share: dates, order numbers and lists, said aloud.

Everything here is for the ear: "May 8", not "2026-05-08"; "order 1001", not "ORD-1001".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

__all__ = ["capitalized", "spoken_date", "spoken_list", "spoken_order"]


def spoken_date(day: date, *, today: date) -> str:
    """ "May 8"; "May 8, 2027" when the year is not ``today``'s."""
    said = f"{day:%B} {day.day}"
    return said if day.year == today.year else f"{said}, {day.year}"


def spoken_order(order_id: str) -> str:
    """ "ORD-1001" → "order 1001"."""
    match = re.fullmatch(r"ORD-(\d+)", order_id)
    return f"order {match.group(1)}" if match else f"order {order_id}"


def spoken_list(items: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def capitalized(text: str) -> str:
    """``text`` starting a sentence: the first letter upper-cased, the rest untouched."""
    return text[:1].upper() + text[1:]
