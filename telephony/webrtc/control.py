"""Call control for browser calls: hang up by closing the peer connection; transfer by waiting
for the agent who accepted the handoff to answer in their browser (``telephony.webrtc.agent``).

A browser call can reach only that kind of agent, so the bridge names its own transfer target
(``fixed_target``) instead of using ``IVA_TRANSFER_TARGET``, which is a phone number or SIP URI.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Protocol

__all__ = ["BROWSER_AGENT", "WebRTCCallControl", "WebRTCTransferError"]

log = logging.getLogger("iva.webrtc")

BROWSER_AGENT: Final = "browser:agent-desk"


class WebRTCTransferError(Exception):
    """The agent did not answer in the browser in time (or the call ended first)."""


class AgentWaiter(Protocol):
    """What control needs from the call (``telephony.webrtc.call.BrowserCall``)."""

    @property
    def call_id(self) -> str: ...
    async def end(self, *, outcome: str) -> None: ...
    async def wait_for_agent(self, handoff_id: str, timeout_s: float) -> str: ...


class WebRTCCallControl:
    """``telephony.control.CallControl`` for one browser call."""

    fixed_target = BROWSER_AGENT

    def __init__(self, call: AgentWaiter, *, answer_timeout_s: float) -> None:
        self._call = call
        self._answer_timeout_s = answer_timeout_s

    @property
    def can_transfer(self) -> bool:
        return True

    async def hang_up(self, *, reason: str) -> None:
        log.info("call %s: hanging up (%s)", self._call.call_id, reason)
        await self._call.end(outcome="completed")

    async def transfer(self, target: str, handoff: Any) -> None:
        """Returns once the agent's browser is connected to the call; raises
        :class:`WebRTCTransferError` when that does not happen within the timeout."""
        handoff_id = str(getattr(handoff, "id", handoff))
        agent = await self._call.wait_for_agent(handoff_id, self._answer_timeout_s)
        log.info("call %s: %s answered in the browser", self._call.call_id, agent)
