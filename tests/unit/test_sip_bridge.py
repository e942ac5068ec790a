"""telephony.sip.bridge: the agent's briefing, the caller ⇄ agent relay and its transcript."""

from __future__ import annotations

import asyncio
import math
import socket
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from review.handoffs import Handoff
from telephony.audio import alaw_to_pcm16, pcm16_to_ulaw
from telephony.rtp.packet import RtpPacket
from telephony.rtp.session import RtpSession
from telephony.sip.bridge import LegClosedError, MediaBridge, briefing_text
from telephony.sip.sdp import PCMA, PCMU, Direction, MediaSession

pytestmark = pytest.mark.unit

FRAME = 320  # bytes of 20 ms of 8 kHz 16-bit PCM
CALLER_LEVEL, AGENT_LEVEL = 3000, 9000  # the fake ASR tells the speakers apart by loudness


def tone(ms: int, level: int, rate: int = 8000, hz: float = 440.0) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (level * np.sin(2 * math.pi * hz * t)).astype(np.int16).tobytes()


def quiet(ms: int, rate: int = 8000) -> bytes:
    return bytes(2 * rate * ms // 1000)


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i:i + FRAME].ljust(FRAME, b"\0") for i in range(0, len(pcm), FRAME)]


class FakeLeg:
    """An RtpSession as the bridge sees it: decoded PCM in and out, None when hung up."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.sent: list[bytes] = []
        self.digits: list[str] = []

    def say(self, pcm: bytes) -> None:
        for frame in frames(pcm):
            self.incoming.put_nowait(frame)

    def hang_up(self) -> None:
        self.incoming.put_nowait(None)

    async def receive(self) -> bytes | str | None:
        return await self.incoming.get()

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    def send_dtmf(self, digit: str) -> None:
        self.digits.append(digit)


class EnergyVadStream:
    """One probability per 512-sample window at 16 kHz: 1.0 when the window is loud."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.int16)

    def feed(self, pcm: bytes) -> list[float]:
        self._pending = np.concatenate((self._pending, np.frombuffer(pcm, dtype=np.int16)))
        probs = []
        while len(self._pending) >= 512:
            window, self._pending = self._pending[:512], self._pending[512:]
            probs.append(1.0 if np.sqrt(np.mean(window.astype(np.float64) ** 2)) > 500 else 0.0)
        return probs


@dataclass
class FakeSink:
    """The engine's MonitorSink: loud speech is the agent, softer the caller."""

    turns: list[dict[str, Any]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    def vad_stream(self) -> EnergyVadStream:
        return EnergyVadStream()

    async def transcribe(self, audio: np.ndarray) -> str:
        peak = float(np.max(np.abs(audio))) * 32768
        return "I'll take it from here." if peak > 6000 else "My order never arrived."

    def record_after_transfer(self, call_id: str, turn: dict[str, Any]) -> None:
        self.turns.append({"call_id": call_id, **turn})

    def monitor_finished(self, call_id: str) -> None:
        self.finished.append(call_id)


async def until(condition, timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def handoff() -> Handoff:
    return Handoff(call_id="C1", reason="caller asked for an agent",
                   summary={"text": "Dana Reyes (Plus member) called about an order. Order 10452"},
                   transcript=[])


# ------------------------------------------------------------------------------ briefing
def test_the_briefing_says_who_what_and_why():
    text = briefing_text(handoff())
    assert text == ("Incoming transfer from the assistant. Dana Reyes (Plus member) called about "
                    "an order. Order 10452. Reason for the transfer: caller asked for an agent. "
                    "Connecting you now.")


async def test_the_briefing_is_spoken_to_the_agent_alone_in_20_ms_frames_at_8_khz():
    spoken: list[str] = []

    async def speak(text: str) -> tuple[bytes, int]:
        spoken.append(text)
        return tone(1000, 5000, rate=22050), 22050  # piper's medium voices speak at 22.05 kHz

    agent = FakeLeg()
    bridge = MediaBridge(call_id="C1", agent=agent, sink=FakeSink(), speak=speak, pace=False)
    await bridge.brief("Incoming transfer.")
    assert spoken == ["Incoming transfer."]
    assert len(agent.sent) == 50 and {len(f) for f in agent.sent} == {FRAME}
    level = np.abs(np.frombuffer(b"".join(agent.sent), dtype=np.int16)).max()
    assert 4000 < level < 6000  # the tone, resampled, not silence


async def test_the_briefing_is_paced_in_real_time():
    async def speak(text: str) -> tuple[bytes, int]:
        return tone(300, 5000), 8000

    agent = FakeLeg()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await MediaBridge(call_id="C1", agent=agent, sink=None, speak=speak).brief("Hi.")
    assert len(agent.sent) == 15 and loop.time() - started >= 0.28


async def test_the_agent_hanging_up_during_the_briefing_stops_it_with_leg_closed():
    async def speak(text: str) -> tuple[bytes, int]:
        return tone(5000, 5000), 8000

    agent = FakeLeg()
    agent.hang_up()
    bridge = MediaBridge(call_id="C1", agent=agent, sink=None, speak=speak, pace=False)
    with pytest.raises(LegClosedError) as caught:
        await bridge.brief("A long summary.")
    assert caught.value.leg == "agent" and len(agent.sent) < 250


# ------------------------------------------------------------------------------ relay
async def test_the_relay_carries_audio_both_ways_and_records_caller_and_agent_turns():
    caller, agent, sink = FakeLeg(), FakeLeg(), FakeSink()
    bridge = MediaBridge(call_id="C1", agent=agent, sink=sink)
    caller_words = quiet(300) + tone(1200, CALLER_LEVEL) + quiet(1000)
    agent_words = quiet(2600) + tone(1000, AGENT_LEVEL) + quiet(1000)
    caller.say(caller_words)
    agent.say(agent_words)
    caller.incoming.put_nowait("dtmf:5")
    running = asyncio.create_task(bridge.run(caller))
    await until(lambda: caller.incoming.empty() and agent.incoming.empty())
    caller.hang_up()
    assert await running == "caller"

    assert b"".join(agent.sent) == b"".join(frames(caller_words))  # PCM crossed, unchanged
    assert b"".join(caller.sent) == b"".join(frames(agent_words))
    assert agent.digits == ["5"] and bridge.relayed == {"caller": 125, "agent": 230}
    assert [(t["speaker"], t["text"]) for t in sorted(sink.turns, key=lambda t: t["start_ms"])] \
        == [("caller", "My order never arrived."), ("agent", "I'll take it from here.")]
    first, second = sorted(sink.turns, key=lambda t: t["start_ms"])
    assert 200 <= first["start_ms"] <= 400 and 1400 <= first["end_ms"] <= 1700
    assert 2500 <= second["start_ms"] <= 2700
    assert all(t["call_id"] == "C1" and t["stream_started_at"] == bridge.started_at
               for t in sink.turns)
    assert sink.finished == ["C1"]


async def test_the_relay_ends_when_the_agent_leg_ends_or_when_stopped_and_flushes_speech():
    caller, agent, sink = FakeLeg(), FakeLeg(), FakeSink()
    bridge = MediaBridge(call_id="C1", agent=agent, sink=sink)
    agent.say(tone(800, AGENT_LEVEL))  # still talking when the line drops
    agent.hang_up()
    assert await bridge.run(caller) == "agent"
    assert [t["speaker"] for t in sink.turns] == ["agent"]

    bridge = MediaBridge(call_id="C2", agent=FakeLeg(), sink=None)
    running = asyncio.create_task(bridge.run(FakeLeg()))
    await asyncio.sleep(0.01)
    bridge.stop("hung_up")
    assert await running == "hung_up"


# ------------------------------------------------------------------------------ real RTP
class Peer:
    """A phone's RTP socket on loopback."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def receive(self) -> RtpPacket:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 2048), 2)
        return RtpPacket.parse(data)


async def test_a_pcmu_caller_and_a_pcma_agent_hear_each_other_through_real_rtp_sessions():
    caller_phone, agent_phone = Peer(), Peer()
    caller_rtp, agent_rtp = RtpSession("127.0.0.1"), RtpSession("127.0.0.1")
    await caller_rtp.open()
    await agent_rtp.open()
    caller_rtp.configure(MediaSession(PCMU, None, "127.0.0.1", caller_phone.port,
                                      Direction.SENDRECV, 20))
    agent_rtp.configure(MediaSession(PCMA, None, "127.0.0.1", agent_phone.port,
                                     Direction.SENDRECV, 20))
    bridge = MediaBridge(call_id="C1", agent=agent_rtp, sink=None)
    running = asyncio.create_task(bridge.run(caller_rtp))
    words = frames(tone(400, 8000))
    try:
        for seq, frame in enumerate(words):
            packet = RtpPacket(0, seq, seq * 160, 0x1234, pcm16_to_ulaw(frame), marker=seq == 0)
            caller_phone.sock.sendto(bytes(packet), ("127.0.0.1", caller_rtp.port))
        heard = [await agent_phone.receive() for _ in range(len(words) - 3)]  # jitter depth 3
    finally:
        bridge.stop()
        await running
        await caller_rtp.close()
        await agent_rtp.close()
        caller_phone.sock.close()
        agent_phone.sock.close()
    assert {p.payload_type for p in heard} == {8}  # PCMA on the agent's side
    agent_heard = np.frombuffer(b"".join(alaw_to_pcm16(p.payload) for p in heard), np.int16)
    sent = np.frombuffer(b"".join(words[:len(heard)]), np.int16)
    error = np.abs(agent_heard.astype(np.int32) - sent).max()
    assert error < 600  # two G.711 quantisations of a loud tone; the same sound
