"""One SIP call's life above the transactions: ``SipLeg`` (a dialog with its media and
callbacks) and ``SipCall`` (an answered incoming call running the conversation).

``SipCall.run`` answers the INVITE (SDP answer, RTP port, 180, 200), runs the pipeline over
the call's ``RtpSession`` with a ``SipSerializer``, and cleans up: the call record ends with
the outcome (``completed`` when either side hangs up, ``error`` when the pipeline fails or the
ACK never comes, ``interrupted_by_restart``, ``transferred``), and a dialog still up gets a BYE.

Transfers: when the runner has settings (``ConversationEngine``), the call's control is a
``telephony.sip.control.SipCallControl`` over a ``UserAgentPort``. A warm transfer takes the
caller's RTP session from the pipeline (``hand_over_media``: the pipeline stops reading and
sending, and no longer closes it) and the call lives on as a bridge until a leg hangs up;
the RTP session is closed then. The pipeline itself is ended only after ``transfer`` has
returned, so that the handover, which runs inside the pipeline, records the transfer first.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pipecat.frames.frames import EndFrame
from pipecat.pipeline.task import PipelineTask

from telephony.link import LinkParams, LinkTransport
from telephony.rtp.session import DTMF_PREFIX, RtpSession
from telephony.sip.bridge import Speaker
from telephony.sip.callport import UserAgentPort
from telephony.sip.control import SipCallControl, SipTransferConfig
from telephony.sip.dialog import Dialog, DialogState
from telephony.sip.errors import SdpError, SipError
from telephony.sip.message import Request
from telephony.sip.sdp import MediaSession, SessionDescription, answer_offer
from telephony.sip.serializer import SIP_CHANNEL, WIRE_RATE, SipSerializer
from telephony.sip.transaction import State

if TYPE_CHECKING:
    from telephony.sip.server import Flow
    from telephony.sip.useragent import SipUserAgent, _Entry

log = logging.getLogger("iva.sip")


class SipLeg:
    """A dialog of ours (an answered caller, or an agent we called) and what hangs off it.

    ``on_bye()`` runs when the peer hangs up, ``on_notify(request)`` for each in-dialog NOTIFY
    (already answered 200), ``on_media(session)`` after a re-INVITE changed the media.
    """

    def __init__(self, ua: SipUserAgent, dialog: Dialog | None, flow: Flow) -> None:
        self.ua = ua
        self._dialog = dialog
        self.flow = flow
        self.rtp: RtpSession | None = None
        self.invite_entry: _Entry | None = None  # our latest INVITE server transaction
        self.on_bye: Callable[[], None] | None = None
        self.on_notify: Callable[[Request], object] | None = None
        self.on_media: Callable[[MediaSession], None] | None = None
        self.sdp_id = secrets.randbelow(2**31)
        self.sdp_version = 1
        self.local_sdp: SessionDescription | None = None

    @property
    def dialog(self) -> Dialog:
        assert self._dialog is not None, "the leg has no dialog yet"
        return self._dialog

    def acked(self) -> None:
        """The ACK for our 2xx came."""

    def remote_hung_up(self) -> None:
        if self.on_bye is not None:
            self.on_bye()

    def received(self, request: Request) -> int:
        """An in-dialog NOTIFY or INFO; returns the status to answer it with."""
        if request.method == "NOTIFY" and self.on_notify is not None:
            status = self.on_notify(request)
            return status if isinstance(status, int) else 200
        if request.method == "INFO" and self.rtp is not None:
            digit = _dtmf_relay(request)
            if digit is not None:
                self.rtp._put(DTMF_PREFIX + digit)
        return 200

    def reinvite(self, request: Request, entry: _Entry) -> None:
        """A re-INVITE: answer its offer (hold, unhold, a new address) on the same port."""
        dialog = self.dialog
        if self.rtp is None or not request.body:
            if self.local_sdp is None:
                self.ua.respond(entry, dialog.response(request, 488))
            else:  # an offerless re-INVITE: our current SDP is the offer (the ACK answers)
                self.ua.respond(entry, dialog.response(request, 200, body=bytes(self.local_sdp),
                                                       content_type="application/sdp"))
            return
        try:
            offer = SessionDescription.parse(request.body)
            answer = answer_offer(offer, address=self.ua.media_address, port=self.rtp.port,
                                  session_id=self.sdp_id, session_version=self.sdp_version + 1)
        except SdpError as exc:
            self.ua.respond(entry, dialog.response(request, exc.status or 488))
            return
        self.sdp_version += 1
        self.local_sdp = answer.sdp
        self.rtp.configure(answer.session)
        self.ua.respond(entry, dialog.response(request, 200, body=bytes(answer.sdp),
                                               content_type="application/sdp"))
        if self.on_media is not None:
            self.on_media(answer.session)


class TransferRunner(Protocol):
    """What a transfer needs from the conversation runner (``voice.engine``) beyond running
    calls: its settings, a voice for the briefing, and the ``MonitorSink`` methods that
    transcribe the bridged call into its record."""

    settings: Any
    speak: Speaker

    def vad_stream(self) -> Any: ...
    async def transcribe(self, audio: Any) -> str: ...
    def record_after_transfer(self, call_id: str, turn: dict[str, Any]) -> None: ...
    def monitor_finished(self, call_id: str) -> None: ...


class SipConversationControl:
    """``telephony.control.CallControl`` of a SIP call's conversation: hang-up by BYE, and
    transfers through ``SipCallControl`` when the call has one (none are offered without)."""

    def __init__(self, call: SipCall, transfers: SipCallControl | None = None) -> None:
        self._call = call
        self._transfers = transfers

    @property
    def can_transfer(self) -> bool:
        return self._transfers is not None and self._transfers.can_transfer

    async def hang_up(self, *, reason: str) -> None:
        if self._call.bridged and self._transfers is not None:
            await self._transfers.hang_up(reason=reason)
        else:
            await self._call.hang_up(reason)

    async def transfer(self, target: str, handoff: Any) -> None:
        if self._transfers is None:
            raise SipError("SIP transfers are not configured on this line")
        call = self._call
        call.transferring = True
        try:
            await self._transfers.transfer(target, handoff)
        finally:
            call.transferring = False
            if call.bridged or call.end_deferred:
                # spawned, so it runs after the handover (our caller, inside the pipeline) has
                # marked the call transferred: nothing awaits between our return and that
                call.end_conversation()


class SipCall(SipLeg):
    """An incoming call, from the INVITE to the end of its conversation."""

    def __init__(self, ua: SipUserAgent, invite: Request, entry: _Entry) -> None:
        super().__init__(ua, None, entry.flow)
        self.invite = invite
        self.invite_entry = entry
        self.key = entry.tx.key
        self.call_id = secrets.token_hex(12)
        self.caller = invite.from_.uri.user
        self.outcome = "completed"
        self.session: Any = None
        self.task: asyncio.Task[None] | None = None
        self.pipeline: PipelineTask | None = None
        self.ending = False
        self.remote_gone = False
        self.transfers: SipCallControl | None = None
        self.transferring = False  # SipCallControl.transfer is running
        self.end_deferred = False  # ... and asked for the conversation to end
        self.bridged = False  # the caller's media belongs to a warm transfer's bridge
        self._media: _ConversationMedia | None = None
        entry.on_failed = self._no_ack
        self.on_media = self._media_changed

    # ------------------------------------------------------------------ the life of a call
    async def run(self) -> None:
        try:
            if await self._answer():
                await self._converse()
        except asyncio.CancelledError:
            pass  # CANCELled, or stopped before the pipeline began
        finally:
            await self._clean_up()

    async def _answer(self) -> bool:
        ua, invite, entry = self.ua, self.invite, self.invite_entry
        assert entry is not None
        try:
            if not invite.body or (invite.content_type or "application/sdp") != "application/sdp":
                raise SdpError("the INVITE carries no SDP offer", status=488)
            offer = SessionDescription.parse(invite.body)
            self.rtp = await ua.open_rtp()
            answer = answer_offer(offer, address=ua.media_address, port=self.rtp.port,
                                  session_id=self.sdp_id, session_version=self.sdp_version)
            self._dialog = Dialog.from_invite(invite, contact=ua.contact(self.flow.transport))
        except SipError as exc:
            log.info("SIP call from %s refused: %s", self.flow.peer[0], exc)
            ua._reply(entry, invite, exc.status or 500)
            return False
        except OSError as exc:
            log.error("SIP call refused: no RTP port (%s)", exc)
            ua._reply(entry, invite, 503)
            return False
        self.rtp.configure(answer.session)
        self.local_sdp = answer.sdp
        ua.register_leg(self)
        ua.respond(entry, self.dialog.response(invite, 180))
        if ua.ring_s > 0:
            await asyncio.sleep(ua.ring_s)
        if entry.tx.state is not State.PROCEEDING:
            return False
        ua.respond(entry, self.dialog.response(invite, 200, body=bytes(answer.sdp),
                                               content_type="application/sdp"))
        return True

    async def _converse(self) -> None:
        ua, rtp = self.ua, self.rtp
        assert rtp is not None and rtp.media is not None
        runner: Any = ua.runner
        session = self.session = runner.new_session(SIP_CHANNEL)
        session.on_goodbye_heard = self._on_goodbye
        serializer = SipSerializer(hooks=session, call_id=self.call_id, caller=self.caller,
                                   meta={"sip_call_id": self.invite.call_id,
                                         "sip_peer": f"{self.flow.peer[0]}:{self.flow.peer[1]}",
                                         "codec": rtp.media.codec.name})
        media = self._media = _ConversationMedia(rtp)
        transport = LinkTransport(media, LinkParams(
            audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=16_000,
            audio_out_sample_rate=WIRE_RATE, audio_out_10ms_chunks=2,  # 20 ms packets
            audio_out_end_silence_secs=0, serializer=serializer))

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: LinkTransport) -> None:
            self._stop_pipeline()

        if getattr(runner, "settings", None) is not None:  # the engine: transfers are possible
            transferring: TransferRunner = runner
            config = SipTransferConfig.from_settings(transferring.settings)
            self.transfers = SipCallControl(
                UserAgentPort(self, agent_answer_timeout_s=config.agent_answer_timeout_s),
                config, sink=transferring, speak=transferring.speak)
            self.on_notify = self.transfers.notify_received
            self.on_bye = self.transfers.caller_hung_up
        rtp.begin()
        self.pipeline = runner.build_call(transport=transport, session=session,
                                          audio_out_rate=WIRE_RATE,
                                          control=SipConversationControl(self, self.transfers))
        if self.remote_gone or self.ending:  # hung up while we were setting up
            return
        try:
            await runner.run(self.pipeline)
        except Exception:
            self.outcome = "error"
            log.exception("call %s: pipeline failed", self.call_id)

    async def _clean_up(self) -> None:
        ua = self.ua
        if self.session is not None:
            self.session.end(self.outcome)
        if self.rtp is not None and self.session is not None:
            stats = self.rtp.stats
            log.info("call %s: RTP in %d out %d, lost %d, late %d, unexpected %d, garbage %d, "
                     "dtmf %d", self.call_id, stats.packets_in, stats.packets_out, stats.lost,
                     stats.late, stats.unexpected_source, stats.garbage, stats.dtmf)
        if self.bridged and self.transfers is not None:
            await self.transfers.wait_ended()  # the bridge runs until a leg hangs up
        if self.rtp is not None:
            await self.rtp.close()
        ua.calls.pop(self.key, None)
        if self._dialog is not None:
            if self._dialog.state is DialogState.CONFIRMED and not self.remote_gone:
                await ua.bye(self)
            ua.forget_leg(self)

    # ------------------------------------------------------------------ events
    def cancelled(self, entry: _Entry) -> None:
        """CANCEL before the 200: 487 for the INVITE and no call."""
        if self._dialog is not None:
            self.ua.respond(entry, self._dialog.response(self.invite, 487))
        else:
            self.ua._reply(entry, self.invite, 487)
        self.outcome = "cancelled"
        if self.task is not None:
            self.task.cancel()

    def remote_hung_up(self) -> None:
        self.remote_gone = True
        if self.bridged:  # the conversation is over: only the bridge hears of it (on_bye)
            super().remote_hung_up()
            return
        self.outcome = "completed"
        if self.session is not None:
            self.session.event("hang_up", by="caller")
        if self.transferring:  # the transfer hears of it (on_bye) and ends the agent's leg
            self.end_deferred = True  # first; then the conversation ends
        else:
            self._stop_pipeline()
        super().remote_hung_up()

    def interrupt(self, outcome: str) -> None:
        """The service stops: end the call now."""
        self.outcome = outcome
        if self.bridged and self.transfers is not None:
            self.ua.spawn(self.transfers.hang_up(reason=outcome))
        elif self.pipeline is None and self.task is not None:
            self.task.cancel()
        else:
            self._stop_pipeline()

    def _stop_pipeline(self) -> None:
        if self.pipeline is not None:
            self.ua.spawn(self.pipeline.cancel())

    def hand_over_media(self) -> RtpSession:
        """A warm transfer takes the caller's RTP session: the pipeline no longer reads, sends
        or closes it (the pipeline ends once the transfer has returned)."""
        assert self.rtp is not None and self._media is not None
        self.bridged = True
        self._media.detach()
        return self.rtp

    def end_conversation(self) -> None:
        """The conversation is over (transferred away, or BYE sent by the transfer): end the
        pipeline, but not while a transfer is still running inside it."""
        if self.transferring:
            self.end_deferred = True
            return
        self.ending = True
        self._stop_pipeline()

    def _no_ack(self, reason: str) -> None:
        log.warning("call %s: %s; hanging up", self.call_id, reason)
        self.outcome = "error"
        self.ua.spawn(self.hang_up(reason))

    def _on_goodbye(self) -> None:
        if self.session is not None:
            self.session.event("hang_up", by="assistant")
        self.ua.spawn(self.hang_up("goodbye"))

    def _media_changed(self, media: MediaSession) -> None:
        if self.session is not None:
            self.session.event("hold" if media.held else "resumed",
                               direction=media.direction.value)

    async def hang_up(self, reason: str) -> None:
        """Our side ends the call: BYE (the 200 awaited briefly), then the pipeline ends."""
        if self.ending:
            return
        self.ending = True
        log.info("call %s: hanging up (%s)", self.call_id, reason)
        if self._dialog is not None and not self.remote_gone:
            await self.ua.bye(self)
        if self.pipeline is not None:
            await self.pipeline.queue_frame(EndFrame())


class _ConversationMedia:
    """The pipeline's view of the caller's ``RtpSession`` (a ``telephony.link.MediaLink``),
    which a warm transfer can take away: once ``detach``ed, reading waits for ever (at most
    the one 20 ms packet being awaited is lost), sending is dropped (hold tones still queued),
    and closing leaves the session open for the bridge."""

    def __init__(self, rtp: RtpSession) -> None:
        self._rtp = rtp
        self._detached = asyncio.Event()

    def detach(self) -> None:
        self._detached.set()

    async def receive(self) -> bytes | str | None:
        if not self._detached.is_set():
            message = await self._rtp.receive()
            if not self._detached.is_set():
                return message
        await asyncio.Event().wait()  # the pipeline is cancelled from here
        return None

    async def send(self, data: bytes | str) -> None:
        if not self._detached.is_set():
            await self._rtp.send(data)

    async def close(self) -> None:
        if not self._detached.is_set():
            await self._rtp.close()


def _dtmf_relay(request: Request) -> str | None:
    """The digit of an ``application/dtmf-relay`` INFO (``Signal=5``), if it is one."""
    if request.content_type not in ("application/dtmf-relay", "application/dtmf"):
        return None
    text = request.body.decode("ascii", errors="replace")
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal" and len(value.strip()) == 1:
            return value.strip()
    return text.strip() if len(text.strip()) == 1 else None
