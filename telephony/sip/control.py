"""Call control for direct SIP calls: hang up with BYE, transfer by REFER or as a B2BUA.

``SipCallControl`` is the ``telephony.control.CallControl`` of one call the user agent
answered. It drives a ``telephony.sip.transfer.TransferMachine`` with what the network says
and carries out the actions the machine returns. Two modes (``IVA_SIP_TRANSFER_MODE``):

- ``refer``: blind transfer (RFC 3515). A REFER in the caller's dialog asks the caller's phone
  to call the target; its NOTIFYs report progress; on ``SIP/2.0 200`` we BYE the caller. Needs
  a caller (trunk, PBX, phone) that accepts REFER; once it has, we hear nothing more.
- ``bridge`` (the default when unset): warm transfer as a back-to-back user agent. We INVITE
  the agent from a new RTP endpoint, speak the handoff summary to them
  (``IVA_SIP_TRANSFER_BRIEFING``), then relay caller ⇄ agent audio and keep transcribing both
  sides into the call record (``telephony.sip.bridge``). Works with any caller, keeps the
  transcript, costs a relay per transferred call. The default because the transcript after
  pick-up is part of the product and many SIP trunks refuse REFER.

``transfer`` returns once the caller is connected (the NOTIFY 200, or the bridge running) and
raises :class:`SipTransferError` otherwise: refused REFER, failing sipfrag, agent busy or not
answering within ``IVA_SIP_AGENT_ANSWER_TIMEOUT_S``, agent hanging up during the briefing, caller
hanging up meanwhile. The handover then offers the caller a callback, as for any bridge.

The user agent (``telephony.sip.useragent``) gives the control a ``SipCallPort`` for the call
and forwards two things to it: ``notify_received`` (a NOTIFY in the caller's dialog; answer
with the status it returns) and ``caller_hung_up`` (the caller's BYE).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from telephony.sip.bridge import AudioLeg, LegClosedError, MediaBridge, Speaker, briefing_text
from telephony.sip.dialog import Dialog, DialogState
from telephony.sip.errors import SdpError, SipError, SipParseError
from telephony.sip.headers import SipUri
from telephony.sip.message import Request, Response
from telephony.sip.refer import build_refer, refer_event_id, transfer_progress
from telephony.sip.sdp import MediaSession, SessionDescription, accept_answer, make_offer
from telephony.sip.transfer import (
    Action,
    TransferEvent,
    TransferMachine,
    TransferMode,
    TransferState,
    agent_response_event,
    progress_event,
    refer_response_event,
)
from telephony.twilio.monitor import MonitorSink

__all__ = ["AgentMedia", "SipCallControl", "SipCallPort", "SipTransferConfig",
           "SipTransferError"]

log = logging.getLogger("iva.sip.control")

E = TransferEvent


class SipTransferError(Exception):
    """The call could not be moved; ``status`` is the SIP status that said so, if any, and
    ``state`` where the transfer stopped (``failed``, or ``ended`` when the caller left)."""

    def __init__(self, message: str, *, status: int | None = None,
                 state: TransferState = TransferState.FAILED) -> None:
        super().__init__(message)
        self.status = status
        self.state = state


class AgentMedia(AudioLeg, Protocol):
    """A fresh, opened RTP endpoint for the agent leg (``RtpSession`` is one): its ``port``
    goes in our offer, the agreed session (the agent's address, codec, ptime) configures it."""

    port: int
    def configure(self, media: MediaSession) -> None: ...
    async def close(self) -> None: ...


class SipCallPort(Protocol):
    """What the control needs from the user agent, for one answered call."""

    @property
    def call_id(self) -> str: ...
    @property
    def dialog(self) -> Dialog:
        """The caller's dialog (we are its UAS)."""
        ...

    async def send_in_dialog(self, dialog: Dialog, request: Request) -> Response:
        """Send ``request`` (built by ``dialog``) through a client transaction; its final
        response (a 408 when the transaction timed out)."""
        ...

    @property
    def media_address(self) -> str:
        """The address our SDP offers for RTP (``SipUserAgent.media_address``)."""
        ...

    async def invite(self, target: str, *, sdp_offer: bytes,
                     on_bye: Callable[[], None]) -> tuple[Dialog | None, Response]:
        """Call ``target``: the dialog (None on failure) and the final response, with the 2xx
        ACKed. ``on_bye`` is called when the agent's BYE comes later. Cancelling the awaiting
        task must CANCEL the INVITE (and ACK + BYE a 2xx that crosses it)."""
        ...

    async def open_agent_media(self) -> AgentMedia:
        """A new local RTP endpoint for calling the agent."""
        ...

    async def take_caller_media(self) -> AudioLeg:
        """End the conversation's use of the caller's RTP (its pipeline stops, the call is
        recorded as transferred) and hand the caller's RTP session over to the bridge."""
        ...

    async def end_call(self) -> None:
        """The call is over for us: stop the conversation and the caller's media (idempotent;
        after our BYE or the caller's)."""
        ...


@dataclass(frozen=True, slots=True)
class SipTransferConfig:
    mode: TransferMode | None = None  # None: bridge (see the module docstring)
    target_configured: bool = False
    briefing: bool = True
    agent_answer_timeout_s: float = 30.0
    refer_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> SipTransferConfig:
        mode = getattr(settings, "sip_transfer_mode", None)
        return cls(mode=TransferMode(mode) if mode else None,
                   target_configured=bool(getattr(settings, "transfer_target", None)),
                   briefing=bool(getattr(settings, "sip_transfer_briefing", True)),
                   agent_answer_timeout_s=float(getattr(settings, "sip_agent_answer_timeout_s",
                                                        30.0)),
                   refer_timeout_s=float(getattr(settings, "sip_refer_timeout_s", 30.0)))

    @property
    def effective_mode(self) -> TransferMode:
        return self.mode or TransferMode.BRIDGE


_Item = tuple[TransferEvent, str]  # an event and what to say about it in errors and logs


class SipCallControl:
    """``telephony.control.CallControl`` for one direct SIP call (see the module docstring)."""

    def __init__(self, port: SipCallPort, config: SipTransferConfig, *,
                 sink: MonitorSink | None = None, speak: Speaker | None = None,
                 pace_briefing: bool = True) -> None:
        self._port = port
        self._config = config
        self._sink = sink
        self._speak = speak if config.briefing else None
        self._pace = pace_briefing
        self.machine: TransferMachine | None = None
        self._events: asyncio.Queue[_Item] = asyncio.Queue()
        self._refer_seq: int | None = None
        self._bridge: MediaBridge | None = None
        self._agent_dialog: Dialog | None = None
        self._agent_media: AgentMedia | None = None
        self._relay: asyncio.Task[None] | None = None
        self._briefing: asyncio.Task[None] | None = None
        self._caller_ended = False

    # ------------------------------------------------------------------ CallControl
    @property
    def can_transfer(self) -> bool:
        return self._config.mode is not None or self._config.target_configured

    async def hang_up(self, *, reason: str) -> None:
        """BYE the caller (and, when bridged, the agent), then end the call."""
        log.info("call %s: hanging up (%s)", self._port.call_id, reason)
        machine = self.machine
        if machine is not None and machine.state is TransferState.BRIDGED and self._bridge:
            self._bridge.stop("hung_up")
            await self.wait_ended()
            return
        await self._bye_caller()
        await self._port.end_call()

    async def transfer(self, target: str, handoff: Any) -> None:
        """Connect the caller to ``target`` (a ``sip:`` URI); ``SipTransferError`` if not."""
        if self.machine is not None and not self.machine.done:
            raise SipTransferError("a transfer of this call is already under way")
        try:
            SipUri.parse(target)
        except SipParseError:
            raise SipTransferError(f"transfer target {target!r:.80} is not a SIP URI "
                                   "(sip:agent@host:port)") from None
        self.machine = TransferMachine()
        self._events = asyncio.Queue()
        if self._config.effective_mode is TransferMode.REFER:
            await self._refer(target)
        else:
            await self._warm(target, handoff)

    # ------------------------------------------------------------------ from the user agent
    def notify_received(self, notify: Request) -> int:
        """A NOTIFY in the caller's dialog: the status to answer it with."""
        machine = self.machine
        if machine is None or machine.mode is not TransferMode.REFER or machine.done:
            return 481  # no subscription of ours (RFC 6665 §4.1.3)
        try:
            progress = transfer_progress(notify)
        except SipParseError as exc:
            return exc.status or 400
        event_id = refer_event_id(notify)
        if event_id is not None and self._refer_seq is not None and \
                event_id != str(self._refer_seq):
            return 481
        self._events.put_nowait((progress_event(progress), "the caller's phone reports "
                                 f"{progress.status} {progress.reason}".strip()))
        return 200

    def caller_hung_up(self) -> None:
        """The caller's BYE (the user agent has answered it)."""
        self._caller_ended = True
        machine = self.machine
        if machine is None or machine.done:
            return
        if machine.state is TransferState.BRIDGED and self._bridge is not None:
            self._bridge.stop("caller")
        else:
            self._events.put_nowait((E.CALLER_HUNG_UP, "the caller hung up"))

    def _agent_hung_up(self) -> None:
        """The agent's BYE (the user agent has answered it)."""
        machine = self.machine
        if machine is None or machine.done:
            return
        self._agent_dialog = None  # the agent ended it; nothing to BYE
        if machine.state is TransferState.BRIDGED and self._bridge is not None:
            self._bridge.stop("agent")
        else:
            self._events.put_nowait((E.AGENT_HUNG_UP, "the agent hung up"))

    async def wait_ended(self) -> TransferState | None:
        """Wait for a bridged call to end (both legs hung up); the final state."""
        if self._relay is not None:
            await asyncio.shield(self._relay)
        return self.machine.state if self.machine else None

    # ------------------------------------------------------------------ blind: REFER
    async def _refer(self, target: str) -> None:
        machine, port = self._machine(), self._port
        dialog = port.dialog
        refer = build_refer(dialog, target, referred_by=dialog.local)
        self._refer_seq = refer.cseq.number
        machine.handle(E.REFER_SENT)
        log.info("call %s: REFER to %s", port.call_id, target)
        sending = asyncio.create_task(port.send_in_dialog(dialog, refer))
        sending.add_done_callback(self._refer_answered)
        detail = await self._run_until_done(self._config.refer_timeout_s, "REFER")
        if not sending.done():
            sending.cancel()
        if machine.state is not TransferState.SUCCEEDED:
            raise SipTransferError(f"blind transfer to {target} failed: {detail}",
                                   status=_status_in(detail))
        log.info("call %s: the caller's phone reached %s (%s)", port.call_id, target, detail)
        await port.end_call()

    def _refer_answered(self, sending: asyncio.Task[Response]) -> None:
        if sending.cancelled():
            return
        if sending.exception() is not None:
            self._events.put_nowait((E.REFER_REJECTED, f"REFER not sent: {sending.exception()}"))
            return
        response = sending.result()
        if response.status >= 200:
            self._events.put_nowait((refer_response_event(response.status),
                                     f"REFER answered {response.status} {response.reason}"))

    # ------------------------------------------------------------------ warm: B2BUA
    async def _warm(self, target: str, handoff: Any) -> None:
        machine, port = self._machine(), self._port
        media = self._agent_media = await port.open_agent_media()
        offer = make_offer(address=port.media_address, port=media.port,
                           session_id=secrets.randbelow(2**31), session_version=1)
        machine.handle(E.INVITE_SENT)
        log.info("call %s: calling agent %s", port.call_id, target)
        calling = asyncio.create_task(port.invite(target, sdp_offer=bytes(offer),
                                                  on_bye=self._agent_hung_up))
        answered: dict[str, MediaSession] = {}
        calling.add_done_callback(lambda task: self._agent_answered(task, offer, answered))
        try:
            detail = await self._run_until_done(self._config.agent_answer_timeout_s, "agent",
                                                stop_at=TransferState.AGENT_ANSWERED)
            if machine.state is TransferState.AGENT_ANSWERED and "session" not in answered:
                detail = await self._run_until_done(None, "agent")  # its unusable SDP
            if machine.state is TransferState.AGENT_ANSWERED:
                media.configure(answered["session"])
                self._bridge = MediaBridge(call_id=port.call_id, agent=media, sink=self._sink,
                                           speak=self._speak, pace=self._pace)
                detail = await self._brief(handoff)
        finally:
            if not calling.done():
                calling.cancel()  # CANCEL (the port's contract); wait until it is sent
                await asyncio.gather(calling, return_exceptions=True)
        if machine.state is not TransferState.BRIDGED:
            await self._bye_agent()
            await media.close()
            raise SipTransferError(f"warm transfer to {target} failed: {detail}",
                                   status=_status_in(detail), state=machine.state)

    def _agent_answered(self, calling: asyncio.Task[tuple[Dialog | None, Response]],
                        offer: SessionDescription, answered: dict[str, MediaSession]) -> None:
        if calling.cancelled():
            return
        if calling.exception() is not None:
            self._events.put_nowait((E.AGENT_REFUSED, f"INVITE failed: {calling.exception()}"))
            return
        dialog, response = calling.result()
        event = agent_response_event(response.status)
        detail = f"the agent answered {response.status} {response.reason}"
        if event is E.AGENT_ANSWERED:
            self._agent_dialog = dialog
            try:
                answered["session"] = accept_answer(offer, SessionDescription.parse(response.body))
            except SdpError as exc:  # answered, but with no audio we can use: end that leg
                self._events.put_nowait((event, detail))
                event, detail = E.AGENT_HUNG_UP, f"the agent's SDP is unusable: {exc}"
        self._events.put_nowait((event, detail))

    async def _brief(self, handoff: Any) -> str:
        """From agent_answered to bridged (or failed/ended): the briefing, then the relay."""
        bridge = self._bridge
        assert bridge is not None
        if self._speak is None:
            await self._apply(E.BRIDGE_STARTED)
            return "bridged"
        self._briefing = asyncio.create_task(bridge.brief(briefing_text(handoff)))
        self._briefing.add_done_callback(self._briefed)
        await self._apply(E.BRIEFING_STARTED)
        return await self._run_until_done(None, "briefing", stop_at=TransferState.BRIDGED)

    def _briefed(self, briefing: asyncio.Task[None]) -> None:
        if briefing.cancelled():
            return
        exc = briefing.exception()
        if isinstance(exc, LegClosedError):
            self._events.put_nowait((E.AGENT_HUNG_UP, "the agent hung up during the briefing"))
            return
        if exc is not None:  # no speech: the agent still gets the caller, and the desk summary
            log.warning("call %s: briefing failed, bridging without it: %r", self._port.call_id,
                        exc)
        self._events.put_nowait((E.BRIEFING_DONE, "briefed"))

    async def _relay_until_end(self, caller: AudioLeg) -> None:
        bridge = self._bridge
        assert bridge is not None
        try:
            ended = await bridge.run(caller)
            event = {"caller": E.CALLER_HUNG_UP, "agent": E.AGENT_HUNG_UP}.get(ended, E.HUNG_UP)
            await self._apply(event)
            log.info("call %s: bridged call over (%s)", self._port.call_id, event.value)
        except Exception:  # a background task: say what broke, then still close the media
            log.exception("call %s: the bridge failed", self._port.call_id)
        finally:
            if self._agent_media is not None:
                await self._agent_media.close()

    # ------------------------------------------------------------------ the machine's actions
    def _machine(self) -> TransferMachine:
        assert self.machine is not None
        return self.machine

    async def _run_until_done(self, timeout_s: float | None, what: str, *,
                              stop_at: TransferState | None = None) -> str:
        """Feed queued events to the machine until it is done (or reaches ``stop_at``); a
        ``timed_out`` event after ``timeout_s``. Returns the detail of the last event."""
        machine = self._machine()
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        detail = ""
        while not machine.done and machine.state is not stop_at:
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                event, text = await asyncio.wait_for(self._events.get(), remaining)
            except TimeoutError:
                event, text = E.TIMED_OUT, f"no answer from the {what} within {timeout_s:g} s"
            if not machine.allows(event):  # the peer out of order (a NOTIFY after the end)
                log.info("call %s: %s ignored in transfer state %s", self._port.call_id,
                         event.value, machine.state.value)
                continue
            detail = text
            await self._apply(event)
        return detail

    async def _apply(self, event: TransferEvent) -> None:
        for action in self._machine().handle(event):
            await self._do(action)

    async def _do(self, action: Action) -> None:
        if action is Action.BYE_CALLER:
            await self._bye_caller()
            await self._port.end_call()
        elif action is Action.BYE_AGENT:
            await self._bye_agent()
        elif action is Action.START_BRIDGE:
            caller = await self._port.take_caller_media()
            self._relay = asyncio.create_task(self._relay_until_end(caller),
                                              name=f"sip-bridge-{self._port.call_id}")
        elif action is Action.STOP_BRIEFING and self._briefing is not None:
            self._briefing.cancel()
        elif action is Action.STOP_BRIDGE and self._bridge is not None:
            self._bridge.stop()
        # ACK_AGENT: the port's invite() ACKs the 2xx; CANCEL_AGENT: cancelling the INVITE
        # task (done where it is awaited); SPEAK_BRIEFING: the briefing task, started with it.

    async def _bye_caller(self) -> None:
        dialog = self._port.dialog
        if self._caller_ended or dialog.state is DialogState.TERMINATED:
            return
        self._caller_ended = True
        await self._send_bye(dialog, "caller")

    async def _bye_agent(self) -> None:
        dialog, self._agent_dialog = self._agent_dialog, None
        if dialog is not None and dialog.state is not DialogState.TERMINATED:
            await self._send_bye(dialog, "agent")

    async def _send_bye(self, dialog: Dialog, leg: str) -> None:
        try:
            response = await self._port.send_in_dialog(dialog, dialog.bye())
        except (SipError, OSError) as exc:
            log.warning("call %s: BYE to the %s failed: %s", self._port.call_id, leg, exc)
            return
        if not response.success:
            log.info("call %s: the %s answered our BYE with %d", self._port.call_id, leg,
                     response.status)


def _status_in(detail: str) -> int | None:
    """The SIP status named in an event's detail ("... answered 486 Busy Here")."""
    for word in detail.split():
        if len(word) == 3 and word.isdigit() and 300 <= int(word) < 700:
            return int(word)
    return None
