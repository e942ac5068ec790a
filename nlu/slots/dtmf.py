"""Keypad (DTMF) entry: "1001#" means 1001, "*" starts over, and a pause ends the entry.

:class:`DtmfCollector` is the live state machine, fed one key at a time with its timestamp;
it needs no clock or event loop of its own, so whoever owns the call polls it:

======== ================================== ==============================================
state    event                              result
======== ================================== ==============================================
empty    digit                              collecting (the digit is kept)
empty    ``#``, ``*``, ``A``-``D``          empty, nothing returned
collect  digit                              collecting; at ``max_digits`` the entry is returned
collect  ``*``                              empty (the caller starts over)
collect  ``#``                              empty, the entry is returned
collect  ``poll`` >= ``timeout_s`` after    empty, the entry is returned
         the last key
collect  a key >= ``timeout_s`` after the   the stale entry is returned and the key starts
         last key                           a new one (as if ``poll`` had run in between)
======== ================================== ==============================================

:func:`keypad_entry` reads a whole keypad string at once ("10*1001#" -> "1001").

Keys other than 0-9, ``*``, ``#`` and A-D raise :class:`ValueError`.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DtmfCollector", "keypad_entry"]

_DIGITS: Final = frozenset("0123456789")
_KEYS: Final = _DIGITS | frozenset("*#ABCDabcd")


def keypad_entry(keys: str) -> str:
    """The digits a keypad string enters: ``*`` clears, ``#`` ends an entry.

    The last ``#``-terminated entry wins; with none, whatever was typed ("1001" typed and left
    to time out). Anything that is not a key (spaces, A-D) is ignored. Returns "" for nothing.
    """
    entry = buffer = ""
    for key in keys:
        if key in _DIGITS:
            buffer += key
        elif key == "*":
            buffer = ""
        elif key == "#" and buffer:
            entry, buffer = buffer, ""
    return entry or buffer


class DtmfCollector:
    """Collects one keypad entry at a time; see the module docstring for the transitions.

    Times are seconds on any monotonic clock the caller chooses (``time.monotonic()`` or the
    media timestamp of the DTMF event); only differences matter.
    """

    def __init__(self, *, timeout_s: float = 5.0, max_digits: int = 16) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        if max_digits < 1:
            raise ValueError(f"max_digits must be at least 1, not {max_digits}")
        self.timeout_s = timeout_s
        self.max_digits = max_digits
        self._digits = ""
        self._last_key_s: float | None = None

    @property
    def digits(self) -> str:
        """The digits collected so far in the current entry."""
        return self._digits

    @property
    def deadline_s(self) -> float | None:
        """When :meth:`poll` will return the entry if no other key arrives; None when empty."""
        if not self._digits or self._last_key_s is None:
            return None
        return self._last_key_s + self.timeout_s

    def press(self, key: str, at_s: float) -> str | None:
        """Feed one key pressed at ``at_s``; returns a finished entry, or None."""
        if len(key) != 1 or key not in _KEYS:
            raise ValueError(f"{key!r} is not a DTMF key (0-9, *, #, A-D)")
        stale = self.poll(at_s)
        self._last_key_s = at_s
        if key == "*":
            self._digits = ""
        elif key == "#":
            finished, self._digits = self._digits, ""
            return stale or finished or None
        elif key in _DIGITS:
            self._digits += key
            if len(self._digits) >= self.max_digits:
                finished, self._digits = self._digits, ""
                return finished  # nothing can be stale: a full entry never waits for a poll
        return stale

    def poll(self, now_s: float) -> str | None:
        """Returns the entry once ``timeout_s`` has passed since the last key without ``#``."""
        deadline = self.deadline_s
        if deadline is None or now_s < deadline:
            return None
        finished, self._digits = self._digits, ""
        return finished

    def reset(self) -> None:
        """Forget the current entry (a new prompt is starting)."""
        self._digits = ""
        self._last_key_s = None
