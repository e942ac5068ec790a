"""A scripted SIP phone over loopback UDP for the user agent's tests, and a fake runner.

``SipPeer`` sends request text and collects the datagrams it gets back, parsed; its own RTP
socket sends and receives packets. ``FakeRunner`` stands in for the conversation engine: a
call "runs" until it is cancelled or sent an ``EndFrame``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from typing import Any

from telephony.sip.message import Request, Response, parse_message


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class Udp:
    """A loopback UDP socket that keeps what it receives."""

    def __init__(self, transport: asyncio.DatagramTransport, collector: _Collector) -> None:
        self.transport = transport
        self.collector = collector
        self.port: int = transport.get_extra_info("sockname")[1]

    @classmethod
    async def open(cls, port: int = 0) -> Udp:
        loop = asyncio.get_running_loop()
        transport, collector = await loop.create_datagram_endpoint(
            _Collector, local_addr=("127.0.0.1", port))
        return cls(transport, collector)  # type: ignore[arg-type]

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        self.transport.sendto(data, address)

    async def receive(self, timeout_s: float = 2.0) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.collector.queue.get(), timeout_s)

    def drain(self) -> list[bytes]:
        out = []
        while not self.collector.queue.empty():
            out.append(self.collector.queue.get_nowait()[0])
        return out

    def close(self) -> None:
        self.transport.close()


def offer_sdp(rtp_port: int, *, codecs: str = "0 101", direction: str = "sendrecv",
              address: str = "127.0.0.1", version: int = 1) -> str:
    lines = ["v=0", f"o=peer 1 {version} IN IP4 {address}", "s=-", f"c=IN IP4 {address}",
             "t=0 0", f"m=audio {rtp_port} RTP/AVP {codecs}", "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000", "a=rtpmap:101 telephone-event/8000",
             "a=fmtp:101 0-15", "a=ptime:20", f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


class SipPeer:
    """One side of a call: builds requests, remembers the dialog, reads responses."""

    def __init__(self, sip: Udp, rtp: Udp, ua_port: int, *, user: str = "alice") -> None:
        self.sip = sip
        self.rtp = rtp
        self.ua = ("127.0.0.1", ua_port)
        self.user = user
        self.call_id = secrets.token_hex(8) + "@127.0.0.1"
        self.tag = secrets.token_hex(4)
        self.remote_tag: str | None = None
        self.cseq = 1
        self.branch = ""
        self.received: list[Request | Response] = []

    @classmethod
    async def open(cls, ua_port: int, **kwargs: Any) -> SipPeer:
        return cls(await Udp.open(), await Udp.open(), ua_port, **kwargs)

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def request(self, method: str, *, body: str = "", cseq: int | None = None,
                branch: str | None = None, extra: str = "", to_tag: str | None = None,
                content_type: str = "application/sdp") -> str:
        if cseq is None:
            if method not in ("ACK", "CANCEL"):
                self.cseq += 1 if method != "INVITE" or self.remote_tag else 0
            cseq = self.cseq
        self.branch = branch or ("z9hG4bK" + secrets.token_hex(6))
        tag = to_tag if to_tag is not None else self.remote_tag
        to = f"<sip:iva@{self.ua[0]}:{self.ua[1]}>" + (f";tag={tag}" if tag else "")
        head = [f"{method} sip:iva@{self.ua[0]}:{self.ua[1]} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip.port};branch={self.branch};rport",
                "Max-Forwards: 70", f"From: <sip:{self.user}@127.0.0.1>;tag={self.tag}",
                f"To: {to}", f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}",
                f"Contact: <sip:{self.user}@127.0.0.1:{self.sip.port}>"]
        if extra:
            head.append(extra.strip())
        if body:
            head.append(f"Content-Type: {content_type}")
        head.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(head) + "\r\n\r\n" + body

    def send(self, text: str | bytes) -> None:
        self.sip.send(text.encode() if isinstance(text, str) else text, self.ua)

    async def next(self, timeout_s: float = 2.0) -> Request | Response:
        data, _ = await self.sip.receive(timeout_s)
        message = parse_message(data)
        self.received.append(message)
        return message

    async def response(self, status: int, *, method: str | None = None,
                       timeout_s: float = 3.0) -> Response:
        """The next response with ``status`` (others skipped; requests answered 200)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            left = deadline - asyncio.get_running_loop().time()
            message = await self.next(max(left, 0.01))
            if isinstance(message, Request):
                self.answer(message)
                continue
            if message.status == status and (method is None or message.cseq.method == method):
                if message.to.tag and 101 <= status < 300 and message.cseq.method == "INVITE":
                    self.remote_tag = message.to.tag
                return message

    async def request_in(self, method: str, timeout_s: float = 3.0) -> Request:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            message = await self.next(max(deadline - asyncio.get_running_loop().time(), 0.01))
            if isinstance(message, Request) and message.method == method:
                return message

    def answer(self, request: Request, status: int = 200) -> None:
        if request.method == "ACK":
            return
        head = [f"SIP/2.0 {status} OK"] + [f"Via: {v}" for v in request.headers.values("Via")]
        head += [f"From: {request.header('From')}", f"To: {request.header('To')}",
                 f"Call-ID: {request.call_id}", f"CSeq: {request.header('CSeq')}",
                 "Content-Length: 0"]
        self.send("\r\n".join(head) + "\r\n\r\n")

    def ack(self) -> None:
        self.send(self.request("ACK", cseq=self.cseq))

    async def call(self, *, codecs: str = "0 101") -> Response:
        """INVITE, 100, 180, 200, ACK: an answered call."""
        self.send(self.request("INVITE", body=offer_sdp(self.rtp.port, codecs=codecs)))
        ok = await self.response(200, method="INVITE")
        self.ack()
        return ok


class FakeSession:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.started = False
        self.call_id: str | None = None
        self.caller: str | None = None
        self.outcome: str | None = None
        self.events: list[tuple[str, dict]] = []
        self.on_goodbye_heard: Any = None

    def begin(self, call_id: str, *, caller: str | None, meta: dict | None = None) -> None:
        self.started, self.call_id, self.caller = True, call_id, caller

    def end(self, outcome: str) -> None:
        self.outcome = outcome

    def event(self, type: str, **data: Any) -> None:  # noqa: A002 - the CallHooks name
        self.events.append((type, data))

    def mark_played(self, name: str) -> None:
        pass

    def audio_sent(self) -> None:
        pass


class FakeTask:
    def __init__(self, transport: Any, control: Any) -> None:
        self.transport = transport
        self.control = control
        self.done = asyncio.Event()
        self.frames: list[Any] = []

    async def cancel(self) -> None:
        self.done.set()

    async def queue_frame(self, frame: Any) -> None:
        self.frames.append(frame)
        self.done.set()


class FakeRunner:
    """Begins the session as the serializer would and waits for the call's end."""

    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []
        self.tasks: list[FakeTask] = []

    def new_session(self, channel: str) -> FakeSession:
        session = FakeSession(channel)
        self.sessions.append(session)
        return session

    def build_call(self, *, transport: Any, session: Any, audio_out_rate: int,
                   control: Any = None) -> FakeTask:
        task = FakeTask(transport, control)
        self.tasks.append(task)
        return task

    async def run(self, task: FakeTask) -> None:
        session = self.sessions[self.tasks.index(task)]
        serializer = task.transport._input._params.serializer
        await serializer.deserialize("start")
        assert session.started
        await task.done.wait()


# ------------------------------------------------------------------------------ fuzzing
def fuzz_bases(ua_port: int, peer_port: int) -> list[bytes]:
    """Messages to mutate: requests of every kind, including an INVITE that offers only G.722
    (so that the mutants that still parse are refused with 488 rather than starting calls)."""
    peer = SipPeer.__new__(SipPeer)
    peer.__init__(_Fixed(peer_port), _Fixed(peer_port + 2), ua_port)  # type: ignore[arg-type]
    bases = [peer.request("INVITE", body=offer_sdp(peer_port + 2, codecs="9")),
             peer.request("OPTIONS"), peer.request("BYE", to_tag="nosuchdialog"),
             peer.request("REGISTER"), peer.request("CANCEL", cseq=1),
             peer.request("INFO", to_tag="x", body="Signal=5\r\n",
                          content_type="application/dtmf-relay"),
             peer.request("ACK", cseq=1, to_tag="y")]
    return [base.encode() for base in bases]


class _Fixed:
    def __init__(self, port: int) -> None:
        self.port = port


_NASTY = [b"\x00", b"\xff\xfe", b"\r\n", b"\r\n\r\n", b":", b";", b"<", b">", b'"', b"%",
          b"sip:", b"SIP/2.0", b"Content-Length: 99999\r\n", b"CSeq: x INVITE\r\n",
          b"Via: SIP/2.0/UDP [::1\r\n", b"a" * 3000, b"\t", b" ", b"=", b"@@", b"\xc3\x28"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutant: a few random byte-level and line-level edits."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(8)
        position = rng.randrange(len(out) + 1)
        if choice == 0 and out:  # flip a byte
            out[min(position, len(out) - 1)] = rng.randrange(256)
        elif choice == 1:  # cut
            out = out[:position]
        elif choice == 2:  # insert something nasty
            out[position:position] = rng.choice(_NASTY)
        elif choice == 3 and out:  # delete a span
            out[position:position + rng.randint(1, 40)] = b""
        elif choice == 4:  # drop, duplicate or swap header lines
            lines = bytes(out).split(b"\r\n")
            index = rng.randrange(len(lines))
            action = rng.randrange(3)
            if action == 0:
                del lines[index]
            elif action == 1:
                lines.insert(index, lines[index])
            else:
                other = rng.randrange(len(lines))
                lines[index], lines[other] = lines[other], lines[index]
            out = bytearray(b"\r\n".join(lines))
        elif choice == 5:  # random bytes
            out[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif choice == 6:  # a header value replaced by junk
            lines = bytes(out).split(b"\r\n")
            index = rng.randrange(len(lines))
            name = lines[index].partition(b":")[0]
            lines[index] = name + b": " + rng.choice(_NASTY)
            out = bytearray(b"\r\n".join(lines))
        else:  # change the case of a stretch (method, header names)
            out[position:position + 8] = bytes(out[position:position + 8]).swapcase()
    return bytes(out)


def mutants(bases: list[bytes], count: int, *, seed: int = 5060) -> list[bytes]:
    rng = random.Random(seed)
    return [mutate(rng.choice(bases), rng) for _ in range(count)]
