"""SIP's sockets: one UDP endpoint and one TCP listener on the same port, and nothing more.

``SipTransports`` hands every datagram, and every message cut out of a TCP stream by
``SipStreamFramer``, to one callback with the ``Flow`` it came on: where responses (and, for
TCP, in-dialog requests) go back. A TCP stream that loses its framing is closed. The callback
is guarded: an exception in it is counted and logged at DEBUG, never raised into asyncio.

``salvage_response`` is the last resort for bytes ``parse_message`` refused: if the Via,
From, To, Call-ID and CSeq lines can still be picked out of a request, it builds the 400 (or
505, 513, ...) that reports the error; otherwise the message is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from telephony.sip.errors import SipParseError
from telephony.sip.message import SipStreamFramer, is_keepalive, reason_phrase

log = logging.getLogger("iva.sip")

MessageHandler = Callable[[bytes, "Flow"], None]


class Flow:
    """Where a message came from, and how to answer on the same transport."""

    transport = "UDP"
    reliable = False

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer

    def send(self, data: bytes, address: tuple[str, int] | None = None) -> None:
        raise NotImplementedError

    @property
    def open(self) -> bool:
        return True


class UdpFlow(Flow):
    def __init__(self, endpoint: asyncio.DatagramTransport, peer: tuple[str, int]) -> None:
        super().__init__(peer)
        self._endpoint = endpoint

    def send(self, data: bytes, address: tuple[str, int] | None = None) -> None:
        if not self._endpoint.is_closing():
            self._endpoint.sendto(data, address or self.peer)


class TcpFlow(Flow):
    transport = "TCP"
    reliable = True

    def __init__(self, writer: asyncio.StreamWriter, peer: tuple[str, int]) -> None:
        super().__init__(peer)
        self._writer = writer

    def send(self, data: bytes, address: tuple[str, int] | None = None) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    @property
    def open(self) -> bool:
        return not self._writer.is_closing()


@dataclass(slots=True)
class TransportStats:
    datagrams: int = 0
    keepalives: int = 0
    tcp_connections: int = 0
    tcp_framing_errors: int = 0
    handler_errors: int = 0


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransports) -> None:
        self.owner = owner
        self.endpoint: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.endpoint = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.endpoint is not None
        self.owner.stats.datagrams += 1
        if is_keepalive(data):
            self.owner.stats.keepalives += 1
            return
        self.owner.deliver(data, UdpFlow(self.endpoint, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        log.debug("SIP UDP socket error: %s", exc)


@dataclass(slots=True)
class SipTransports:
    host: str
    port: int
    handler: MessageHandler
    max_tcp_connections: int = 256
    stats: TransportStats = field(default_factory=TransportStats)
    udp: asyncio.DatagramTransport | None = None
    _tcp: asyncio.Server | None = None
    _readers: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        """Bind UDP, then TCP on the same port; raises ``OSError`` when UDP cannot bind. A TCP
        failure is logged and SIP runs over UDP only."""
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self),
                                                     local_addr=(self.host, self.port))
        self.udp = udp  # type: ignore[assignment]
        self.port = udp.get_extra_info("sockname")[1]
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
        except OSError as exc:
            log.error("SIP over TCP not started on %s:%d: %s (UDP only)", self.host, self.port,
                      exc.strerror or exc)

    async def stop(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for reader in list(self._readers):
            reader.cancel()
        if self._readers:
            await asyncio.wait(self._readers, timeout=2)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    def send_udp(self, data: bytes, address: tuple[str, int]) -> None:
        if self.udp is not None and not self.udp.is_closing():
            self.udp.sendto(data, address)

    def deliver(self, data: bytes, flow: Flow) -> None:
        try:
            self.handler(data, flow)
        except Exception:  # the handler's own guard failed: count it, keep listening
            self.stats.handler_errors += 1
            log.debug("SIP message from %s:%d dropped", *flow.peer, exc_info=True)

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername") or ("?", 0)
        if len(self._readers) >= self.max_tcp_connections:
            writer.close()
            return
        self._readers.add(task)
        self.stats.tcp_connections += 1
        flow = TcpFlow(writer, (peer[0], peer[1]))
        framer = SipStreamFramer()
        try:
            while data := await reader.read(65_536):
                try:
                    messages = framer.feed(data)
                except SipParseError as exc:
                    self.stats.tcp_framing_errors += 1
                    log.debug("SIP over TCP from %s:%d lost its framing: %s", *flow.peer, exc)
                    break
                for message in messages:
                    if not is_keepalive(message):
                        self.deliver(message, flow)
        except (ConnectionError, OSError):
            pass
        finally:
            self._readers.discard(task)
            writer.close()


# ------------------------------------------------------------------------------ salvage
_NEEDED = {"via": "Via", "v": "Via", "from": "From", "f": "From", "to": "To", "t": "To",
           "call-id": "Call-ID", "i": "Call-ID", "cseq": "CSeq"}


def salvage_response(data: bytes, error: SipParseError) -> bytes | None:
    """The error response for a request ``parse_message`` refused, if one can be addressed
    (the five headers a response copies are there); None for anything else (responses,
    ACKs, garbage: those are dropped)."""
    text = bytes(data[:65_535]).decode("utf-8", errors="replace").lstrip("\r\n")
    head = text.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    lines = [line.rstrip("\r") for line in head.split("\n")]
    start = lines[0].split(" ")
    if len(start) < 3 or start[0].upper().startswith("SIP/") or start[0].upper() == "ACK":
        return None
    found: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = _NEEDED.get(name.strip().lower())
        value = value.strip()
        if not colon or key is None or not value or not value.isprintable():
            continue
        found.setdefault(key, []).append(value)
    if not all(name in found for name in ("Via", "From", "To", "Call-ID", "CSeq")):
        return None
    if "ACK" in found["CSeq"][0].upper().split():
        return None
    status = error.status or 400
    lines_out = [f"SIP/2.0 {status} {reason_phrase(status)}"]
    lines_out += [f"Via: {value}" for value in found["Via"]]
    lines_out += [f"{name}: {found[name][0]}" for name in ("From", "To", "Call-ID", "CSeq")]
    return ("\r\n".join(lines_out) + "\r\nContent-Length: 0\r\n\r\n").encode()
