"""Call control a bridge offers the conversation: the same interface for every way in.

The conversation (``voice``) decides *that* a call ends or moves; the bridge knows *how*
(closing a Twilio stream or updating the call over its REST API, an ARI redirect, a SIP BYE or
REFER). Implementations live next to their bridge, where they can be tested.
"""

from __future__ import annotations

from typing import Any, Protocol


class CallHooks(Protocol):
    """What a bridge tells the call's session (``voice.session.CallSession`` implements it)."""

    @property
    def started(self) -> bool: ...
    @property
    def call_id(self) -> str | None: ...
    def begin(self, call_id: str, *, caller: str | None, meta: dict[str, Any] | None = None) -> None: ...
    def mark_played(self, name: str) -> None: ...
    def audio_sent(self) -> None: ...
    def event(self, type: str, **data: Any) -> None: ...


class CallControl(Protocol):
    """Actions on the live call, whatever carries it."""

    async def hang_up(self, *, reason: str) -> None:
        """End the call for both sides."""
        ...

    @property
    def can_transfer(self) -> bool:
        """Whether :meth:`transfer` is configured on this line (credentials, an ARI, ...)."""
        ...

    async def transfer(self, target: str, handoff: Any) -> None:
        """Connect the caller to ``target`` (a number, a SIP URI, a queue: what the bridge
        understands); ``handoff`` (``review.handoffs.Handoff``) is what the agent will see.
        Raises the bridge's error when the call cannot be moved."""
        ...
