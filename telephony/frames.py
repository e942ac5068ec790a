"""Frames between a bridge and the conversation pipeline (transport-neutral).

A bridge pushes ``CallStartedFrame`` when it knows who is calling; the pipeline places a
``SpeechMarkFrame`` after each sentence's audio, and the bridge tells the call's session
(``CallHooks.mark_played``) when the far end has played up to it. A digit the caller presses
becomes an ``InputDTMFFrame`` through ``keypad_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pipecat.frames.frames import (
    InputDTMFFrame,
    KeypadEntry,
    OutputTransportMessageFrame,
    SystemFrame,
)

from telephony.control import CallHooks

KEYPAD: Final = frozenset(entry.value for entry in KeypadEntry)  # 0-9, * and #: not A-D


@dataclass
class CallStartedFrame(SystemFrame):
    """The bridge knows who is calling; the assistant may greet."""

    call_id: str
    caller: str | None = None
    channel: str = "twilio"


class SpeechMarkFrame(OutputTransportMessageFrame):
    """Placed after a sentence's audio, queued with it so the output transport sends it right
    after that sentence; the bridge reports back when the caller has heard it."""

    @classmethod
    def named(cls, name: str) -> SpeechMarkFrame:
        return cls(message={"mark": name})

    @property
    def mark_name(self) -> str:
        return str(self.message["mark"])


def keypad_frame(digit: str, hooks: CallHooks) -> InputDTMFFrame | None:
    """The frame for a DTMF digit, or ``None`` for one pipecat's ``KeypadEntry`` does not know
    (A-D: valid DTMF, but on no phone's keypad), noted as a ``dtmf_ignored`` event instead, so
    that the call goes on."""
    if digit in KEYPAD:
        return InputDTMFFrame(KeypadEntry(digit))
    hooks.event("dtmf_ignored", digit=digit)
    return None
