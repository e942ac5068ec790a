"""A SIP phone's side of a call, for the end-to-end tests and the benchmark: INVITE/200/ACK and
BYE over UDP (``tests.sip_peer.SipPeer``), then G.711 μ-law RTP both ways on the loopback.

Like the Asterisk lines (``tests.e2e.asterisk_lines``) it sends one 20 ms packet every 20 ms
(speech when queued, silence otherwise, as a phone without silence suppression does) and keeps
each packet of the assistant's audio with its arrival time; the service paces its RTP in real
time, so arrival is playback.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from telephony.audio import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.rtp.packet import RtpError, RtpPacket, RtpSender, is_rtcp
from telephony.sip.errors import SipParseError
from telephony.sip.message import Request
from telephony.sip.sdp import SessionDescription
from tests.e2e.asterisk_lines import Line
from tests.sip_peer import SipPeer

PCMU = 0  # the static payload type of G.711 μ-law (RFC 3551), what SipPeer offers first


class SipCallFailed(Exception):
    """The INVITE was not answered with a usable 200 (or no SDP came with it)."""


@dataclass
class RtpLine(Line):
    """A SIP call from ``user`` to the service's SIP port, its audio as PCMU RTP at 8 kHz."""

    peer: SipPeer | None = None
    remote: tuple[str, int] | None = None  # where the service wants our RTP (its SDP answer)
    sender: RtpSender = field(default_factory=lambda: RtpSender(PCMU))
    hung_up_by_server: bool = False

    @property
    def user(self) -> str:
        assert self.peer is not None
        return self.peer.user

    @classmethod
    async def dial(cls, sip_port: int, *, user: str | None = None) -> RtpLine:
        """Call ``sip:iva@127.0.0.1:<sip_port>`` from ``user`` (a fresh one by default: the
        service records it as the caller, which is how its call record is found)."""
        peer = await SipPeer.open(sip_port, user=user or f"bench{secrets.randbelow(10**8):08d}")
        try:
            ok = await peer.call(codecs=f"{PCMU} 101")
            if not ok.body:
                raise SipCallFailed("the 200 to our INVITE has no SDP answer")
            answer = SessionDescription.parse(ok.body)
            audio = next((m for m in answer.media if m.kind == "audio" and m.port), None)
            connection = (audio.connection if audio else None) or answer.connection
            if audio is None or connection is None:
                raise SipCallFailed(f"no audio in the SDP answer: {ok.body[:200]!r}")
        except (TimeoutError, SipCallFailed):
            peer.close()
            raise
        line = cls(rate=8000, peer=peer, remote=(connection.address, audio.port))
        line.tasks = [asyncio.create_task(line.stream()), asyncio.create_task(line.receive()),
                      asyncio.create_task(line.signalling())]
        return line

    async def send_frame(self, pcm: bytes) -> None:
        assert self.peer is not None and self.remote is not None
        self.peer.rtp.send(bytes(self.sender.audio(pcm16_to_ulaw(pcm))), self.remote)

    async def receive(self) -> None:
        """The service's RTP: PCMU packets decoded into ``heard`` as they arrive."""
        assert self.peer is not None
        queue = self.peer.rtp.collector.queue
        while not self.closed.is_set():
            data, _ = await queue.get()
            now = time.monotonic()
            if is_rtcp(data):
                continue
            try:
                packet = RtpPacket.parse(data)
            except RtpError:
                continue
            if packet.payload_type == PCMU:
                self.heard.append((now, ulaw_to_pcm16(packet.payload)))

    async def signalling(self) -> None:
        """Requests from the service in the dialog: a BYE ends the call (answered 200)."""
        assert self.peer is not None
        while not self.closed.is_set():
            try:
                message = await self.peer.next(timeout_s=3600)
            except SipParseError:
                continue
            if isinstance(message, Request):
                self.peer.answer(message)
                if message.method == "BYE":
                    self.hung_up_by_server = True
                    self.closed.set()

    async def hang_up(self, *, wait_s: float = 2.0) -> None:
        """BYE (unless the service has hung up), its 200 awaited briefly, then the sockets close."""
        assert self.peer is not None
        hung_up = self.hung_up_by_server
        await self.stop()  # the signalling task no longer reads: the 200 is ours to read
        if not hung_up:
            self.peer.send(self.peer.request("BYE"))
            try:
                await self.peer.response(200, method="BYE", timeout_s=wait_s)
            except TimeoutError:
                pass
        self.peer.close()
