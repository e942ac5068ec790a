"""The Asterisk bridges over loopback sockets with a scripted conversation (no models).

``AudioSocketServer`` on a TCP port and ``WS /asterisk/media`` under uvicorn, each driven by a
client playing Asterisk's part; the conversation is a ``Speaker`` that greets with a tone and a
mark, keeps the digits it hears, interrupts itself on ``*`` and says goodbye on ``9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from pipecat.frames.frames import Frame, InputDTMFFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from websockets.exceptions import ConnectionClosed

from telephony.asterisk import audiosocket as aus
from telephony.asterisk import chan_websocket as cw
from telephony.asterisk.audiosocket_server import AudioSocketServer
from telephony.asterisk.routes import asterisk_router
from telephony.frames import CallStartedFrame, SpeechMarkFrame
from tests.fakes import MemoryRecorder
from voice.session import CallSession

pytestmark = pytest.mark.unit


class Speaker(FrameProcessor):
    def __init__(self, *, session: CallSession, rate: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.rate = rate
        self.digits: list[str] = []
        self.audio_bytes = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallStartedFrame):
            await self.push_frame(frame, direction)
            await self.say(0.2)
        elif isinstance(frame, InputDTMFFrame):
            self.digits.append(frame.button.value)
            if frame.button.value == "*":
                await self.broadcast_interruption()
            elif frame.button.value == "9" and self.session.on_goodbye_heard:
                self.session.on_goodbye_heard()
            elif frame.button.value == "#":
                await self.say(1.0)
        else:
            if frame.__class__.__name__ == "InputAudioRawFrame":
                self.audio_bytes += len(frame.audio)  # type: ignore[attr-defined]
            await self.push_frame(frame, direction)

    async def say(self, seconds: float) -> None:
        turn = self.session.reply_started("Hello.", intent=None, confidence=None,
                                          speech_end_at=None)
        mark = self.session.sentence_queued(turn, "Hello.", int(seconds * 1000))
        self.session.synthesis_finished(turn)
        t = np.arange(int(seconds * self.rate)) / self.rate
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
        await self.push_frame(TTSAudioRawFrame(audio=pcm, sample_rate=self.rate, num_channels=1))
        await self.push_frame(SpeechMarkFrame.named(mark))


class FakeRunner:
    """``voice.engine.ConversationEngine``'s part a bridge uses, around a ``Speaker``."""

    def __init__(self) -> None:
        self.recorder = MemoryRecorder()
        self.speakers: list[Speaker] = []
        self.sessions: list[CallSession] = []

    def new_session(self, channel: str) -> CallSession:
        self.sessions.append(CallSession(self.recorder, channel=channel))
        return self.sessions[-1]

    def build_call(self, *, transport, session, audio_out_rate, control=None) -> PipelineTask:
        speaker = Speaker(session=session, rate=audio_out_rate)
        self.speakers.append(speaker)
        return PipelineTask(Pipeline([transport.input(), speaker, transport.output()]),
                            params=PipelineParams(audio_in_sample_rate=16_000,
                                                  audio_out_sample_rate=audio_out_rate),
                            enable_rtvi=False, idle_timeout_secs=None)

    async def run(self, task: PipelineTask) -> None:
        runner = PipelineRunner(handle_sigint=False, handle_sigterm=False)
        await runner.add_workers(task)
        await runner.run()

    def outcome(self, call_id: str) -> str | None:
        return self.recorder.calls[call_id]["outcome"]

    async def ended(self, call_id: str, timeout_s: float = 5.0) -> str | None:
        for _ in range(int(timeout_s / 0.02)):
            if call_id in self.recorder.calls and self.outcome(call_id):
                return self.outcome(call_id)
            await asyncio.sleep(0.02)
        return None


# ------------------------------------------------------------------------------ AudioSocket
@pytest.fixture
async def audiosocket() -> AsyncIterator[tuple[AudioSocketServer, FakeRunner]]:
    runner = FakeRunner()
    server = AudioSocketServer(runner, host="127.0.0.1", port=0, uuid_timeout_s=0.5)
    await server.start()
    yield server, runner
    await server.stop()


class AudioSocketPeer:
    """Asterisk's side of one AudioSocket connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = aus.AudioSocketParser()
        self.received: list[aus.Packet] = []

    @classmethod
    async def connect(cls, port: int) -> AudioSocketPeer:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, *packets: aus.Packet | bytes) -> None:
        self.writer.write(b"".join(p if isinstance(p, bytes) else bytes(p) for p in packets))
        await self.writer.drain()

    async def read_until(self, want, timeout_s: float = 3.0) -> bool:
        """Read packets until ``want(received)`` holds; False on EOF or timeout."""
        async def loop() -> bool:
            while not want(self.received):
                data = await self.reader.read(4096)
                if not data:
                    return False
                self.received.extend(self.parser.feed(data))
            return True
        try:
            return await asyncio.wait_for(loop(), timeout_s)
        except TimeoutError:
            return False

    def audio(self) -> list[aus.Audio]:
        return [p for p in self.received if isinstance(p, aus.Audio)]


async def test_an_audiosocket_call_is_greeted_hears_digits_and_ends_on_hangup(audiosocket):
    server, runner = audiosocket
    call_id = str(uuid.uuid4())
    peer = await AudioSocketPeer.connect(server.port)
    await peer.send(aus.Uuid.from_string(call_id), *[aus.Audio(bytes(320))] * 5, aus.Dtmf("4"))
    assert await peer.read_until(lambda got: sum(isinstance(p, aus.Audio) for p in got) >= 10)
    assert {len(p.pcm) for p in peer.audio()} == {320} and {p.rate for p in peer.audio()} == {8000}
    await peer.send(aus.Hangup())
    assert await runner.ended(call_id) == "completed"
    assert runner.recorder.calls[call_id]["channel"] == "asterisk_audiosocket"
    assert runner.speakers[0].digits == ["4"] and runner.speakers[0].audio_bytes > 0
    assert runner.sessions[0].latencies_ms == [] and runner.sessions[0].current.finished


async def test_a_malformed_packet_drops_only_its_own_connection(audiosocket):
    server, runner = audiosocket
    good_id, bad_id = str(uuid.uuid4()), str(uuid.uuid4())
    good = await AudioSocketPeer.connect(server.port)
    bad = await AudioSocketPeer.connect(server.port)
    await good.send(aus.Uuid.from_string(good_id))
    await bad.send(aus.Uuid.from_string(bad_id), b"\x42\x00\x00")
    assert not await bad.read_until(lambda got: False)  # EOF
    assert isinstance(bad.received[-1], aus.Hangup)
    assert await runner.ended(bad_id) == "error"
    assert "protocol_error" in runner.recorder.events(bad_id)
    await good.send(aus.Dtmf("#"))
    assert await good.read_until(lambda got: len([p for p in got if isinstance(p, aus.Audio)])
                                 >= 40)
    assert runner.outcome(good_id) is None  # still going
    await good.send(aus.Hangup())
    assert await runner.ended(good_id) == "completed"


async def test_a_connection_that_never_names_its_call_is_hung_up(audiosocket):
    server, runner = audiosocket
    peer = await AudioSocketPeer.connect(server.port)
    assert not await peer.read_until(lambda got: False)
    assert peer.received == [aus.Hangup()]
    assert runner.recorder.calls == {}  # no call began, nothing recorded


async def test_the_assistants_goodbye_hangs_up_in_band(audiosocket):
    server, runner = audiosocket
    call_id = str(uuid.uuid4())
    peer = await AudioSocketPeer.connect(server.port)
    await peer.send(aus.Uuid.from_string(call_id), aus.Dtmf("9"))
    assert not await peer.read_until(lambda got: False)
    assert isinstance(peer.received[-1], aus.Hangup)
    assert await runner.ended(call_id) == "completed"
    assert "hang_up" in runner.recorder.events(call_id)


async def test_a_dropped_line_and_a_shutdown_have_their_outcomes(audiosocket):
    server, runner = audiosocket
    dropped, running = str(uuid.uuid4()), str(uuid.uuid4())
    first = await AudioSocketPeer.connect(server.port)
    await first.send(aus.Uuid.from_string(dropped), b"\x10\x01\x40" + bytes(100))
    await asyncio.sleep(0.2)
    first.writer.close()
    assert await runner.ended(dropped) == "caller_hung_up"
    second = await AudioSocketPeer.connect(server.port)
    await second.send(aus.Uuid.from_string(running))
    await asyncio.sleep(0.3)
    assert server.active_calls == 1
    await server.stop()
    assert runner.outcome(running) == "interrupted_by_restart"
    assert server.active_calls == 0


# ------------------------------------------------------------------------------ chan_websocket
@pytest.fixture
async def media_url() -> AsyncIterator[tuple[str, FakeRunner]]:
    runner = FakeRunner()
    app = FastAPI()
    app.include_router(asterisk_router(runner, ari=None, max_message_bytes=65_500,
                                       start_timeout_s=1.0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}/asterisk/media", runner
    server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(serving, 5)


async def collect(ws, want, timeout_s: float = 3.0) -> tuple[list[str], bytes]:
    """Text and binary messages until ``want(texts, media)`` holds."""
    texts: list[str] = []
    media = bytearray()
    async def loop() -> None:
        while not want(texts, media):
            message = await ws.recv()
            if isinstance(message, str):
                texts.append(message)
            else:
                media.extend(message)
    await asyncio.wait_for(loop(), timeout_s)
    return texts, bytes(media)


async def test_a_websocket_call_answers_speaks_in_whole_frames_and_marks(media_url):
    url, runner = media_url
    async with websockets.connect(url + "?caller=%2B15550100", subprotocols=["media"]) as ws:
        assert ws.subprotocol == "media"
        await ws.send(cw.media_start_message("conn-1", "WebSocket/media-0001", channel_id="c1"))
        texts, media = await collect(ws, lambda t, m: any(x.startswith("MARK_MEDIA") for x in t))
        assert texts[0] == "ANSWER"
        assert len(media) >= 1600 and len(media) % 160 == 0  # 200 ms of whole ulaw frames
        mark = cw.parse_command(texts[-1]).correlation_id
        await ws.send(cw.mark_processed_message(mark))
        await ws.send(cw.dtmf_end_message("5"))
        await ws.send(b"\xff" * 160)
        await asyncio.sleep(0.2)
    assert await runner.ended("conn-1") == "completed"
    assert runner.recorder.calls["conn-1"]["caller"] == "+15550100"
    assert runner.speakers[0].digits == ["5"] and runner.sessions[0].current.finished


async def test_json_control_messages_are_answered_in_json_and_barge_in_flushes(media_url):
    url, runner = media_url
    async with websockets.connect(url) as ws:
        await ws.send(cw.media_start_message("conn-2", "WebSocket/media-0002", format="slin16",
                                             optimal_frame_size=640, fmt=cw.ControlFormat.JSON))
        texts, _ = await collect(ws, lambda t, m: len(t) >= 1)
        assert json.loads(texts[0]) == {"command": "ANSWER"}
        await ws.send(cw.dtmf_end_message("#", fmt=cw.ControlFormat.JSON))
        await ws.send(cw.dtmf_end_message("*", fmt=cw.ControlFormat.JSON))
        texts, _ = await collect(ws, lambda t, m: any("FLUSH_MEDIA" in x for x in t))
        assert {"command": "FLUSH_MEDIA"} in [json.loads(x) for x in texts]


async def test_a_malformed_message_closes_only_that_websocket(media_url):
    url, runner = media_url
    async with websockets.connect(url) as good, websockets.connect(url) as bad:
        await good.send(cw.media_start_message("good", "WebSocket/g"))
        await bad.send(cw.media_start_message("bad", "WebSocket/b"))
        await collect(bad, lambda t, m: "ANSWER" in t)
        await bad.send("MEDIA_START but not really")
        with pytest.raises(ConnectionClosed) as closed:
            await collect(bad, lambda t, m: False, timeout_s=3)
        assert closed.value.rcvd.code == 1007
        assert "'but' is not a name:value parameter" in closed.value.rcvd.reason
        assert await runner.ended("bad") == "error"
        await good.send(cw.dtmf_end_message("#"))
        _, media = await collect(good, lambda t, m: len(m) >= 8000)
        assert runner.outcome("good") is None


async def test_the_assistants_goodbye_says_hangup_then_closes(media_url):
    url, runner = media_url
    async with websockets.connect(url) as ws:
        await ws.send(cw.media_start_message("conn-3", "WebSocket/media-0003"))
        await ws.send(cw.dtmf_end_message("9"))
        texts = [message async for message in ws if isinstance(message, str)]
    assert texts == ["ANSWER", texts[1], "HANGUP"]  # ANSWER, the greeting's mark, HANGUP
    assert await runner.ended("conn-3") == "completed"
    assert "hang_up" in runner.recorder.events("conn-3")


async def test_a_first_message_that_is_not_media_start_is_refused(media_url):
    url, runner = media_url
    async with websockets.connect(url) as ws:
        await ws.send("{oops")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1007 and runner.recorder.calls == {}
