"""Warm transfer of one call to a human agent, transport-neutral.

When the assistant decides a human must take over (the caller asked, a policy such as billing
disputes, or the escalation predictor), the dialogue has already told the caller it is bringing
in a specialist. :class:`Handover` then:

1. builds the handoff: who is calling, what they want, what was tried, how they feel, why the
   transfer, and the transcript so far; and offers it on the agent desk;
2. plays hold tones once the announcement has been heard, while the caller waits;
3. when an agent accepts: asks the bridge's ``CallControl.transfer(target, handoff)`` to connect
   the call (Twilio: a REST update with ``<Dial>``), and marks the call ``transferred``;
4. when nobody accepts within ``timeout_s`` (or the transfer fails): stops the hold tones and
   offers a callback or a message, which becomes a ticket on the desk.

The caller's words while on hold are recorded and shown to the agent, not answered.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np
from pipecat.frames.frames import Frame, TTSAudioRawFrame

from nlu.assistant import Assistant, Reply
from review.handoffs import AgentDesk, Handoff
from review.redaction import redact
from voice.frames import AssistantReplyFrame
from voice.session import CallSession

__all__ = ["Handover", "TransferControl", "hold_tones"]

log = logging.getLogger("iva.handover")

TRANSFER_FAILED = ("I'm sorry, I couldn't connect you just now. I can have someone call you "
                   "back at this number, or you can leave a message. Which would you prefer?")


class TransferControl(Protocol):
    """The part of ``telephony.control.CallControl`` a handover uses."""

    @property
    def can_transfer(self) -> bool: ...
    async def transfer(self, target: str, handoff: Any) -> None: ...


def hold_tones(sample_rate: int, seconds: float = 1.0, *, phase_s: float = 0.0) -> bytes:
    """Soft hold music (int16 mono PCM): a slow four-note chime, one note every 0.6 s, each
    fading but never silent, so the caller hears that the line is alive. ``phase_s``
    continues the pattern seamlessly from one chunk to the next."""
    t = phase_s + np.arange(int(sample_rate * seconds)) / sample_rate
    index = np.floor(t / 0.6).astype(np.int64) % 4
    note = np.array([523.25, 392.0, 329.63, 392.0])[index]
    local = np.mod(t, 0.6)
    envelope = 0.25 + 0.75 * np.exp(-4.0 * local) * np.minimum(1.0, local * 50)
    wave = np.sin(2 * math.pi * note * t) + 0.25 * np.sin(4 * math.pi * note * t)
    return (wave * envelope * 0.1 * 32767).astype(np.int16).tobytes()


class Handover:
    """The warm transfer of one call (see the module docstring); one per call."""

    def __init__(self, *, session: CallSession, desk: AgentDesk, control: TransferControl | None,
                 target: str | None, timeout_s: float, push: Callable[[Frame], Awaitable[None]],
                 summarize: Callable[[CallSession, Assistant, str], dict[str, Any]],
                 sentiment: Callable[[], dict[str, Any]] = dict, hold_audio: bool = True,
                 audio_out_rate: Callable[[], int] = lambda: 8000) -> None:
        self._session = session
        self._desk = desk
        self._control = control
        self._target = target
        self._timeout_s = timeout_s
        self._push = push
        self._summarize = summarize
        self._sentiment = sentiment
        self._hold_audio = hold_audio
        self._audio_out_rate = audio_out_rate
        self.handoff: Handoff | None = None
        self._forward: Callable[[dict[str, Any]], None] | None = None

    @property
    def active(self) -> bool:
        return self.handoff is not None and self.handoff.status in ("waiting", "accepted",
                                                                    "connected")

    async def run(self, reason: str, assistant: Assistant) -> None:
        """The whole transfer; run it as a task of the dialogue processor."""
        session = self._session
        call_id = session.call_id or "unknown"
        handoff = Handoff(
            call_id=call_id, reason=reason, summary=self._summarize(session, assistant, reason),
            transcript=list(session.transcript), sentiment=self._sentiment(),
            target=self._target, channel=session.channel, caller=session.caller,
        )
        self.handoff = handoff
        session.event("handoff", handoff_id=handoff.id, reason=reason)
        answer = self._desk.offer(handoff)
        self._forward = lambda turn: self._desk.add_transcript(call_id, turn)
        session.turn_listeners.append(self._forward)
        session.on_hold = True
        hold = asyncio.create_task(self._hold(), name=f"hold-{call_id}")
        try:
            try:
                decision = await asyncio.wait_for(asyncio.shield(answer), self._timeout_s)
            except TimeoutError:
                decision = None
            if decision is None or not decision.accepted:
                self._desk.withdraw(handoff.id, status="no_agent",
                                    detail=f"no agent within {self._timeout_s:g} s")
                session.event("handoff_no_agent", handoff_id=handoff.id)
                await self._stop_hold(hold)
                await self._offer_callback(assistant, assistant.no_agent_available())
                return
            session.event("handoff_accepted", handoff_id=handoff.id, agent=decision.agent)
            await self._connect(handoff, assistant, hold)
        finally:
            await self._stop_hold(hold)

    async def _announcement_heard(self, *, limit_s: float = 20.0) -> None:
        """Wait (briefly) until the caller has heard what the assistant is saying, so that a
        fast agent does not cut off "I'll connect you with an agent"."""
        waited = 0.0
        while self._session.assistant_busy and waited < limit_s:
            await asyncio.sleep(0.1)
            waited += 0.1

    async def _connect(self, handoff: Handoff, assistant: Assistant,
                       hold: asyncio.Task[None]) -> None:
        session = self._session
        await self._announcement_heard()
        problem = None
        if self._control is None or not self._control.can_transfer:
            problem = "this line cannot transfer calls (no call control configured)"
        elif not self._target:
            problem = "no transfer target configured (IVA_TRANSFER_TARGET)"
        else:
            try:
                await self._control.transfer(self._target, handoff)
            except Exception as exc:  # the bridge's error, whatever it is: the caller hears why
                problem = f"transfer failed: {exc}"
        if problem is not None:
            log.warning("call %s: %s", session.call_id, problem)
            self._desk.set_status(handoff.id, "failed", detail=problem)
            session.event("transfer_failed", handoff_id=handoff.id, detail=problem[:300])
            await self._stop_hold(hold)
            reply = assistant.no_agent_available()
            await self._offer_callback(assistant, Reply(reply.intent, 1.0, TRANSFER_FAILED))
            return
        self._desk.set_status(handoff.id, "connected")
        session.final_outcome = "transferred"
        session.event("transfer", handoff_id=handoff.id, target=self._target)

    async def _offer_callback(self, assistant: Assistant, reply: Reply) -> None:
        self._session.on_hold = False
        await self._push(AssistantReplyFrame(text=reply.text, intent=reply.intent,
                                             confidence=1.0))

    def ticket(self, ticket: dict[str, Any]) -> None:
        """The caller chose a callback or left a message: the handoff becomes a ticket."""
        handoff = self.handoff
        if handoff is None:
            return
        status = "message" if ticket.get("kind") == "message" else "callback"
        if "text" in ticket:  # a caller's message may hold a card or phone number
            ticket = {**ticket, "text": redact(str(ticket["text"])).text}
        self._desk.set_status(handoff.id, status, ticket=ticket)
        self._session.event("ticket", handoff_id=handoff.id, kind=status)

    def call_ended(self) -> None:
        if self._forward is not None and self._forward in self._session.turn_listeners:
            self._session.turn_listeners.remove(self._forward)
        if self._session.call_id:
            self._desk.call_ended(self._session.call_id)

    async def _hold(self) -> None:
        """Hold tones, paced in real time, after the announcement has been heard."""
        await self._announcement_heard()
        if not self._hold_audio:
            return
        rate = self._audio_out_rate()
        phase = 0.0
        while True:
            pcm = hold_tones(rate, 1.0, phase_s=phase)
            phase += 1.0
            await self._push(TTSAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=1))
            await asyncio.sleep(0.95)

    async def _stop_hold(self, hold: asyncio.Task[None]) -> None:
        if not hold.done():
            hold.cancel()
            try:
                await hold
            except asyncio.CancelledError:
                pass
