"""``RtpSession``: one call's RTP over UDP, the network layer around the pure RTP modules.

It binds a UDP port on the SIP host (from a configurable range, so a firewall can open just
that), learns where to send from the SDP (``configure`` with the negotiated
``telephony.sip.sdp.MediaSession``) and is the call's ``telephony.link.MediaLink``:

- ``receive()`` yields, in order, ``"start"`` once (queued by ``begin``), then 8 kHz 16-bit
  PCM (``bytes``: one decoded packet each, lost packets as silence, and silence while no RTP
  comes) and DTMF digits (``str`` of the form ``"dtmf:5"``), and ``None`` once closed. ``telephony.sip.serializer`` turns
  them into frames.
- ``send(pcm)`` takes 8 kHz 16-bit PCM, encodes it with the negotiated codec and sends it as
  ``ptime`` packets (20 ms); a short remainder waits for the next call. On hold (the peer's
  SDP does not want our audio) nothing is sent, but the RTP clock keeps running.

Incoming packets are checked before anything else: from an address other than the one the
SDP names (or, after the first good packet, the exact address it came from: symmetric RTP
latches onto it, RFC 4961; other ports of that host are let in) they are counted in ``stats.unexpected_source`` and dropped;
bytes that are not RTP, or a payload type that was not negotiated, are counted in
``stats.garbage`` and dropped. Audio goes through a small ``JitterBuffer``; telephone events
(RFC 4733) through a ``DtmfReceiver``. RTCP multiplexed on the port is ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from dataclasses import dataclass

from telephony.audio import alaw_to_pcm16, pcm16_to_alaw, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.rtp.dtmf import DtmfReceiver, DtmfSender
from telephony.rtp.jitter import JitterBuffer, Lost
from telephony.rtp.packet import RtpError, RtpPacket, RtpSender, is_rtcp
from telephony.sip.sdp import Direction, MediaSession

log = logging.getLogger("iva.rtp")

START = "start"
DTMF_PREFIX = "dtmf:"
_QUEUE_LIMIT = 500  # 10 s of 20 ms packets: a pipeline that stalls longer loses the oldest


@dataclass(slots=True)
class RtpStats:
    packets_in: int = 0
    packets_out: int = 0
    unexpected_source: int = 0
    garbage: int = 0
    rtcp: int = 0
    late: int = 0
    lost: int = 0
    dtmf: int = 0
    dropped_backlog: int = 0
    filled: int = 0  # stretches of silence made up while no RTP came


def _codec_functions(name: str):  # noqa: ANN202 - a pair of bytes -> bytes functions
    if name.upper() == "PCMA":
        return alaw_to_pcm16, pcm16_to_alaw
    return ulaw_to_pcm16, pcm16_to_ulaw


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.session.datagram_received(data, addr)
        except Exception:  # never let one packet stop the endpoint
            self.session.stats.garbage += 1
            log.debug("RTP packet from %s dropped", addr, exc_info=True)

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error: %s", exc)


class RtpSession:
    """One call's RTP endpoint; ``open`` binds it, ``configure`` points it at the peer."""

    def __init__(self, host: str, *, ports: tuple[int, int] = (0, 0), jitter_depth: int = 3,
                 fill_after_s: float = 0.1, rng: random.Random | None = None) -> None:
        self.host = host
        self.fill_after_s = fill_after_s
        self.ports = ports
        self.port = 0
        self.stats = RtpStats()
        self.media: MediaSession | None = None
        self.remote: tuple[str, int] | None = None  # where we send
        self._expected_host: str | None = None  # the SDP's address: the only one let in
        self._latched: tuple[str, int] | None = None
        self._jitter = JitterBuffer(depth=jitter_depth)
        self._dtmf = DtmfReceiver()
        self._rng = rng or random.Random()
        self._sender: RtpSender | None = None
        self._decode = ulaw_to_pcm16
        self._encode = pcm16_to_ulaw
        self._carry = b""
        self._last_send = 0.0
        self._queue: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._transport: asyncio.DatagramTransport | None = None
        self.closed = False

    # ------------------------------------------------------------------ setup
    async def open(self) -> None:
        """Bind a port from ``ports`` (inclusive; (0, 0): any). Raises ``OSError`` when every
        port of the range is taken."""
        loop = asyncio.get_running_loop()
        low, high = self.ports
        candidates = [0] if low == 0 else list(range(low + low % 2, high + 1, 2)) or [low]
        self._rng.shuffle(candidates)  # even ports (RFC 3550 §11), in random order
        error: OSError | None = None
        for port in candidates[:200]:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(self.host, port))
            except OSError as exc:
                error = exc
                continue
            self._transport = transport  # type: ignore[assignment]
            self.port = transport.get_extra_info("sockname")[1]
            return
        raise error or OSError(f"no free RTP port in {low}-{high}")

    def configure(self, media: MediaSession) -> None:
        """Apply a negotiated session (the first answer, or a re-INVITE's: hold, new address)."""
        previous = self.media
        self.media = media
        self._decode, self._encode = _codec_functions(media.codec.name)
        if previous is None or (previous.remote_address, previous.remote_port) != (
                media.remote_address, media.remote_port):
            unspecified = _unspecified(media.remote_address)
            self._expected_host = None if unspecified else media.remote_address
            self.remote = None if unspecified or not media.remote_port else (
                media.remote_address, media.remote_port)
            self._latched = None
        if self._sender is None or (previous is not None and previous.codec != media.codec):
            self._sender = RtpSender(media.codec.payload_type,
                                     samples_per_packet=media.samples_per_packet, rng=self._rng)
            self._last_send = 0.0

    @property
    def held(self) -> bool:
        """The peer does not want our audio now."""
        return self.media is None or self.media.held

    @property
    def direction(self) -> Direction | None:
        return self.media.direction if self.media else None

    def begin(self) -> None:
        """Queue the ``"start"`` message that begins the call for the serializer."""
        self._queue.put_nowait(START)

    # ------------------------------------------------------------------ incoming
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        source = (addr[0], addr[1])
        if not self._source_ok(source):
            self.stats.unexpected_source += 1
            return
        if is_rtcp(data):
            self.stats.rtcp += 1
            return
        media = self.media
        try:
            packet = RtpPacket.parse(data)
        except RtpError as exc:
            self._garbage(str(exc))
            return
        if media is None:
            self._garbage("RTP before the SDP answer")
            return
        if media.telephone_event is not None and packet.payload_type == media.telephone_event:
            try:
                digit = self._dtmf.receive(packet)
            except RtpError as exc:
                self._garbage(str(exc))
                return
            self._latch(source)
            self.stats.packets_in += 1
            if digit is not None:
                self.stats.dtmf += 1
                self._put(DTMF_PREFIX + digit)
            return
        if packet.payload_type != media.codec.payload_type:
            self._garbage(f"payload type {packet.payload_type} was not negotiated")
            return
        self._latch(source)
        self.stats.packets_in += 1
        late = self._jitter.stats.late
        for item in self._jitter.push(packet, time.monotonic()):
            if isinstance(item, Lost):
                self.stats.lost += item.count
                self._put(bytes(2 * media.samples_per_packet * min(item.count, 5)))
            elif item.payload:
                self._put(self._decode(item.payload))
        self.stats.late += self._jitter.stats.late - late

    def _garbage(self, why: str) -> None:
        self.stats.garbage += 1
        if self.stats.garbage <= 3:  # a few lines per call at most
            log.debug("RTP packet on port %d dropped: %s", self.port, why)

    def _source_ok(self, source: tuple[str, int]) -> bool:
        if self._latched is not None:  # the host we latched onto; any port (DTMF players
            return source[0] == self._latched[0]  # and RTCP may use another socket)
        return self._expected_host is not None and source[0] == self._expected_host

    def _latch(self, source: tuple[str, int]) -> None:
        if self._latched is None:
            self._latched = source
            self.remote = source  # symmetric RTP: answer where the audio comes from

    def _put(self, message: bytes | str) -> None:
        if self._queue.qsize() >= _QUEUE_LIMIT:
            self.stats.dropped_backlog += 1
            return
        self._queue.put_nowait(message)

    # ------------------------------------------------------------------ MediaLink
    async def receive(self) -> bytes | str | None:
        """The next message; when RTP pauses for ``fill_after_s`` (a sender that stops between
        phrases, silence suppression, hold), that much silence, so the pipeline's voice
        activity detection still sees the caller stop speaking."""
        if self.closed and self._queue.empty():
            return None
        if self.media is None or self._queue.qsize():
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), self.fill_after_s)
        except TimeoutError:
            if self.closed:
                return None
            self.stats.filled += 1
            return bytes(2 * int(self.fill_after_s * self.media.codec.clock_rate))

    async def send(self, data: bytes | str) -> None:
        """8 kHz 16-bit PCM out as RTP packets; text is not audio and is ignored."""
        if isinstance(data, str) or self.closed or self.media is None or self._sender is None:
            return
        sender = self._sender
        step = 2 * self.media.samples_per_packet
        data = self._carry + data
        whole = len(data) - len(data) % step
        self._carry = data[whole:]
        self._mind_the_gap()
        for offset in range(0, whole, step):
            if self.held or self.remote is None:
                sender.silence()  # the clock runs on; the next packet starts a talkspurt
                continue
            packet = sender.audio(self._encode(data[offset:offset + step]))
            self._sendto(bytes(packet))

    def send_dtmf(self, digit: str, *, duration_ms: int = 100) -> None:
        """Send one keypad digit as RFC 4733 events (all packets at once: fine for a peer's
        jitter buffer, which orders them by timestamp)."""
        media = self.media
        if media is None or media.telephone_event is None or self._sender is None:
            raise RtpError("no telephone-event payload type was negotiated")
        sender = DtmfSender(self._sender, media.telephone_event)
        for packet in sender.packets(digit, duration_ms=duration_ms):
            self._sendto(bytes(packet))

    def _mind_the_gap(self) -> None:
        """After a pause in our audio the timestamp jumps by the time that passed and the
        next packet carries the marker bit (RFC 3551 §4.1)."""
        assert self._sender is not None and self.media is not None
        now = time.monotonic()
        if self._last_send:
            gap = now - self._last_send - 2 * self.media.ptime / 1000
            if gap > 0:
                self._sender.silence(int(gap * self.media.codec.clock_rate))
        self._last_send = now

    def _sendto(self, data: bytes) -> None:
        if self._transport is None or self.remote is None or self._transport.is_closing():
            return
        self._transport.sendto(data, self.remote)
        self.stats.packets_out += 1

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        self._queue.put_nowait(None)


def _unspecified(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False  # a host name: taken as it is
