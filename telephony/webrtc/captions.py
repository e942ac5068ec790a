"""What the caller's page and the server say to each other on the WebRTC data channel.

Server → page (JSON objects):

- ``{"type": "caption", "id", "speaker", "text", "final"}``: a line of the live captions.
  ``speaker`` is ``caller``, ``assistant`` or ``agent``; ``id`` is stable per turn, so an
  assistant line shown as it starts speaking (``final: false``) is replaced by what the caller
  actually heard once it ends (``final: true``; shorter after a barge-in).
- ``{"type": "call", "state", "call_id"}``: ``connected``, ``transferred`` (a person took the
  call), ``ended``.

Page → server: ``{"type": "hangup"}``. pipecat's own messages (``ping``, ``signalling``) are
handled by its connection before they get here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CALL_STATES", "SPEAKERS", "call_message", "caption_message", "is_hangup"]

SPEAKERS: Final = frozenset({"caller", "assistant", "agent"})
CALL_STATES: Final = frozenset({"connected", "transferred", "ended"})
MAX_CAPTION_CHARS: Final = 2000
MAX_PAGE_MESSAGE_CHARS: Final = 4096


def caption_message(turn: Mapping[str, Any], *, final: bool = True) -> dict[str, Any]:
    """The caption of a transcript turn (``voice.session.CallSession.transcript`` entries:
    ``{"speaker", "text", "start_ms", ...}``). Raises ``ValueError`` for an unknown speaker."""
    speaker = turn.get("speaker")
    if speaker not in SPEAKERS:
        raise ValueError(f"no captions for speaker {speaker!r}")
    start_ms = int(turn.get("start_ms") or 0)
    text = " ".join(str(turn.get("text") or "").split())[:MAX_CAPTION_CHARS]
    return {"type": "caption", "id": f"{speaker}-{start_ms}", "speaker": speaker,
            "text": text, "final": final}


def call_message(state: str, call_id: str | None) -> dict[str, Any]:
    if state not in CALL_STATES:
        raise ValueError(f"unknown call state {state!r}")
    return {"type": "call", "state": state, "call_id": call_id}


def is_hangup(message: object) -> bool:
    """Whether a message from the page asks to end the call (a dict, or its JSON text)."""
    if isinstance(message, str):
        if len(message) > MAX_PAGE_MESSAGE_CHARS:
            return False
        try:
            message = json.loads(message)
        except ValueError:
            return False
    return isinstance(message, Mapping) and message.get("type") == "hangup"
