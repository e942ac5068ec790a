"""Frames between a bridge and the conversation pipeline (transport-neutral).

A bridge pushes ``CallStartedFrame`` when it knows who is calling; the pipeline places a
``SpeechMarkFrame`` after each sentence's audio, and the bridge tells the call's session
(``CallHooks.mark_played``) when the far end has played up to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import OutputTransportMessageFrame, SystemFrame


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
