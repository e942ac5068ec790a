"""Browser calls without the models: the HTTP endpoints, and a real WebRTC peer (aiortc, in
the browser's place) calling through them into a pipeline that only carries audio. The
conversation is played by hand on the call's session."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from fastapi import FastAPI
from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask

from review.handoffs import AgentDesk, Handoff
from review.store import CallStore
from telephony.frames import SpeechMarkFrame
from telephony.webrtc.agent import PcmTrack
from telephony.webrtc.candidates import offer_host_addresses
from telephony.webrtc.control import BROWSER_AGENT, WebRTCCallControl, WebRTCTransferError
from telephony.webrtc.routes import BrowserCalls, webrtc_router
from telephony.webrtc.signalling import IceServer
from voice.session import CallSession

pytestmark = pytest.mark.unit


class AudioOnlyRunner:
    """The conversation side with no conversation: input → output, sessions kept for the test."""

    def __init__(self, store: CallStore) -> None:
        self.store = store
        self.sessions: list[CallSession] = []
        self.controls: list[Any] = []
        self.finished: list[str] = []

    def new_session(self, channel: str) -> CallSession:
        self.sessions.append(CallSession(self.store, channel=channel))
        return self.sessions[-1]

    def build_call(self, *, transport, session, audio_out_rate, control=None) -> PipelineTask:
        self.controls.append(control)
        return PipelineTask(Pipeline([transport.input(), transport.output()]),
                            params=PipelineParams(audio_in_sample_rate=16_000,
                                                  audio_out_sample_rate=audio_out_rate),
                            enable_rtvi=False, idle_timeout_secs=None)

    async def run(self, task: PipelineTask) -> None:
        runner = PipelineRunner(handle_sigint=False, handle_sigterm=False)
        await runner.add_workers(task)
        await runner.run()

    def monitor_finished(self, call_id: str) -> None:
        self.finished.append(call_id)

    def vad_stream(self) -> Any:
        return SimpleNamespace(feed=lambda pcm: [0.0] * (len(pcm) // 1024))

    async def transcribe(self, audio: np.ndarray) -> str:
        return ""


@pytest.fixture
def store(tmp_path: Path):
    with CallStore(tmp_path / "calls.sqlite3") as store:
        yield store


@pytest.fixture
def service(store):
    # Loopback only: both peers offer 127.0.0.1, and no STUN server is contacted.
    offer_host_addresses(["127.0.0.1"])
    runner = AudioOnlyRunner(store)
    desk = AgentDesk(store)
    calls = BrowserCalls(max_calls=2)
    app = FastAPI()
    app.include_router(webrtc_router(
        runner, desk=desk, ice_servers=[],
        max_calls=2, agent_answer_timeout_s=5.0, calls=calls,
        agent=lambda: SimpleNamespace(name="amy", is_supervisor=False)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://iva.test")
    yield SimpleNamespace(app=app, runner=runner, desk=desk, calls=calls, client=client)
    offer_host_addresses([])


class Browser:
    """A browser's side of one call, played by aiortc: audio both ways and the data channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("audio", direction="sendrecv")
        self.channel = self.pc.createDataChannel("iva")
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.channel.on("message", lambda raw: self.messages.put_nowait(json.loads(raw)))

    async def offer(self) -> dict[str, str]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def answered(self, reply: dict[str, str]) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"],
                                                                 type=reply["type"]))

    async def next_message(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.messages.get()
                if message.get("type") == kind:
                    return message


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


# --- the endpoints -------------------------------------------------------------------------

async def test_the_call_page_and_its_files_are_public(service):
    page = await service.client.get("/call")
    assert page.status_code == 200
    for testid in ("call", "hangup", "state", "error", "captions"):
        assert f'data-testid="{testid}"' in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self'
    assert "'self'" in page.headers["content-security-policy"]
    script = await service.client.get("/call/static/call.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert (await service.client.get("/call/static/../routes.py")).status_code == 404
    assert (await service.client.get("/call/static/secret.js")).status_code == 404


async def test_the_page_learns_the_ice_servers(store):
    app = FastAPI()
    app.include_router(webrtc_router(
        AudioOnlyRunner(store), desk=AgentDesk(store),
        ice_servers=[IceServer(urls=("stun:stun.example.com",))], max_calls=2,
        agent_answer_timeout_s=5.0, agent=lambda: SimpleNamespace(name="amy")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://iva.test") as client:
        config = (await client.get("/call/config")).json()
    assert config == {"iceServers": [{"urls": ["stun:stun.example.com"]}], "available": True}


async def test_a_malformed_offer_is_a_400_that_says_why(service):
    reply = await service.client.post("/call/offer", content=b"not json")
    assert reply.status_code == 400 and "JSON" in reply.json()["detail"]
    reply = await service.client.post("/call/offer", json={"sdp": "v=0\r\n", "type": "offer"})
    assert reply.status_code == 400 and "audio" in reply.json()["detail"]
    assert len(service.calls) == 0


async def test_an_offer_over_the_size_limit_is_refused_before_it_is_read(service):
    reply = await service.client.post("/call/offer", content=b"x" * (65 * 1024))
    assert reply.status_code == 413


async def test_an_sdp_that_aiortc_cannot_use_is_a_400(service):
    sdp = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
           "a=fingerprint:sha-256 AB\r\n")
    reply = await service.client.post("/call/offer", json={"sdp": sdp, "type": "offer"})
    assert reply.status_code == 400 and "could not be answered" in reply.json()["detail"]


async def test_when_every_line_is_busy_the_offer_is_refused_with_503(service):
    service.calls.max_calls = 0
    browser = Browser()
    reply = await service.client.post("/call/offer", json=await browser.offer())
    assert reply.status_code == 503 and reply.headers["retry-after"] == "30"
    assert "busy" in reply.json()["detail"]
    await browser.pc.close()


async def test_renegotiating_an_unknown_connection_is_a_404(service):
    browser = Browser()
    reply = await service.client.post("/call/offer",
                                      json={**await browser.offer(), "pc_id": "nope-1"})
    assert reply.status_code == 404
    await browser.pc.close()


async def test_the_agent_endpoint_answers_only_accepted_handoffs_of_browser_calls(service,
                                                                                   store):
    from datetime import UTC, datetime

    desk = service.desk
    for call_id in ("CA1", "CA2"):  # phone calls
        store.start_call(call_id=call_id, channel="twilio", caller="+15550100",
                         started_at=datetime.now(UTC))
    browser = Browser()
    offer = await browser.offer()

    async def post(handoff_id: str) -> httpx.Response:
        return await service.client.post(f"/api/handoffs/{handoff_id}/webrtc/offer", json=offer)

    assert (await post("Hnothing")).status_code == 404
    waiting = Handoff(call_id="CA1", reason="asked", summary={}, transcript=[], channel="twilio")
    desk.offer(waiting)
    assert (await post(waiting.id)).status_code == 409  # not accepted yet
    desk.accept(waiting.id, "bob")
    assert (await post(waiting.id)).status_code == 403  # bob's, not amy's
    mine = Handoff(call_id="CA2", reason="asked", summary={}, transcript=[], channel="twilio")
    desk.offer(mine)
    desk.accept(mine.id, "amy")
    reply = await post(mine.id)
    assert reply.status_code == 409 and "not a browser call" in reply.json()["detail"]
    await browser.pc.close()


# --- a call over real WebRTC -----------------------------------------------------------------

async def test_a_browser_call_begins_captions_its_turns_and_ends_when_the_page_hangs_up(
        service, store):
    browser = Browser()
    reply = await service.client.post("/call/offer", json=await browser.offer())
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["type"] == "answer" and answer["call_id"].startswith("WR")
    await browser.answered(answer)

    connected = await browser.next_message("call")
    call_id = connected["call_id"]
    assert connected == {"type": "call", "state": "connected", "call_id": answer["call_id"]}
    record = store.get_call(call_id)
    assert record["channel"] == "webrtc" and record["caller"] is None

    session = service.runner.sessions[0]
    session.caller_turn("How long do I have to return an item?", start_ms=1200, end_ms=3000)
    assert await browser.next_message("caption") == {
        "type": "caption", "id": "caller-1200", "speaker": "caller",
        "text": "How long do I have to return an item?", "final": True}
    session.caller_turn("My card is 4111 1111 1111 1111", start_ms=4000, end_ms=6000)
    caption = await browser.next_message("caption")
    assert "4111" not in caption["text"]  # captions carry the redacted transcript

    # An answer: captioned as it starts; its sentence counts as heard once the paced output
    # has sent it (the mark after it reaches the output); latency from the first audio.
    call = service.calls.get(call_id)
    turn = session.reply_started("Hello there.", intent="greeting", confidence=1.0,
                                 speech_end_at=None)
    mark = session.sentence_queued(turn, "Hello there.", 200)
    tone = (np.ones(4800, dtype=np.int16) * 3000).tobytes()  # 200 ms at 24 kHz
    queued_at = time.monotonic()
    await call.task.queue_frame(TTSAudioRawFrame(audio=tone, sample_rate=24_000, num_channels=1))
    await call.task.queue_frame(SpeechMarkFrame.named(mark))
    assert await browser.next_message("caption") == {
        "type": "caption", "id": f"assistant-{turn.start_ms}", "speaker": "assistant",
        "text": "Hello there.", "final": False}
    await until(lambda: turn.sentences[0].played)
    assert time.monotonic() - queued_at >= 0.15  # not before its 200 ms were sent, in real time
    assert turn.first_audio_at is not None
    session.synthesis_finished(turn)
    final = await browser.next_message("caption")
    assert final["id"] == f"assistant-{turn.start_ms}" and final["final"] is True

    browser.channel.send(json.dumps({"type": "hangup"}))
    await until(lambda: service.calls.get(call_id) is None)
    assert store.get_call(call_id)["outcome"] == "completed"
    assert service.runner.finished == [call_id]
    await browser.pc.close()


async def test_calls_in_progress_at_shutdown_are_ended_with_their_records(service, store):
    browser = Browser()
    answer = (await service.client.post("/call/offer", json=await browser.offer())).json()
    await browser.answered(answer)
    call_id = (await browser.next_message("call"))["call_id"]
    await service.calls.close()
    assert len(service.calls) == 0
    assert store.get_call(call_id)["outcome"] == "interrupted_by_restart"
    assert (await browser.next_message("signalling"))["message"] == {"type": "peerLeft"}
    await browser.pc.close()


async def answered_by_amy(service) -> tuple[Browser, Browser, Any]:
    """A browser call handed over and answered by amy in her browser: (caller, agent, call)."""
    caller = Browser()
    answer = (await service.client.post("/call/offer", json=await caller.offer())).json()
    await caller.answered(answer)
    call_id = (await caller.next_message("call"))["call_id"]
    call = service.calls.get(call_id)
    control = service.runner.controls[-1]
    assert isinstance(control, WebRTCCallControl) and control.fixed_target == BROWSER_AGENT

    handoff = Handoff(call_id=call_id, reason="caller asked for an agent", summary={},
                      transcript=[], channel="webrtc")
    service.desk.offer(handoff)
    service.desk.accept(handoff.id, "amy")
    transfer = asyncio.create_task(control.transfer(BROWSER_AGENT, handoff))
    await asyncio.sleep(0.1)
    assert not transfer.done()  # waiting for amy's browser

    agent = Browser()
    reply = await service.client.post(f"/api/handoffs/{handoff.id}/webrtc/offer",
                                      json=await agent.offer())
    assert reply.status_code == 200, reply.text
    await agent.answered(reply.json())
    async with asyncio.timeout(10):
        await transfer
    assert call.agent is not None and call.agent.connected and call.agent.agent == "amy"
    return caller, agent, call


async def test_when_the_caller_hangs_up_the_agents_page_is_told(service, store):
    caller, agent, call = await answered_by_amy(service)
    call.session.final_outcome = "transferred"
    caller.channel.send(json.dumps({"type": "hangup"}))
    left = await agent.next_message("signalling")
    assert left["message"] == {"type": "peerLeft"}
    await until(lambda: service.calls.get(call.call_id) is None)
    assert store.get_call(call.call_id)["outcome"] == "transferred"
    await caller.pc.close()
    await agent.pc.close()


async def test_an_agent_answers_in_the_browser_and_the_transfer_completes(service, store):
    caller, agent, call = await answered_by_amy(service)
    call_id = call.call_id

    # Until the handover has marked the call transferred, the caller is still hearing the
    # assistant or the hold tones: the agent's audio waits; then it flushes them and flows.
    queued: list[Any] = []

    async def capture(frame: Any) -> None:
        queued.append(frame)

    real_queue_frame, call.task.queue_frame = call.task.queue_frame, capture
    await call._play_to_caller(bytes(640))
    assert queued == []
    session = service.runner.sessions[0]
    session.final_outcome = "transferred"
    await call._play_to_caller(bytes(640))
    await call._play_to_caller(bytes(640))
    assert [type(f) for f in queued] == [InterruptionFrame, OutputAudioRawFrame,
                                         OutputAudioRawFrame]
    assert queued[1].sample_rate == 16_000
    assert (await caller.next_message("call"))["state"] == "transferred"
    call.task.queue_frame = real_queue_frame

    # What the agent says is written as the agent's, and captioned for the caller.
    call._agent_words("Hello, this is Amy.", 5000, 6200)
    caption = await caller.next_message("caption")
    assert caption["speaker"] == "agent" and caption["text"] == "Hello, this is Amy."

    agent.channel.send(json.dumps({"type": "hangup"}))  # the agent ends the call for both
    await until(lambda: service.calls.get(call_id) is None)
    record = store.get_call(call_id)
    assert record["outcome"] == "transferred"
    (turn,) = [t for t in record["turns"] if t["speaker"] == "agent"]
    assert turn["text"] == "Hello, this is Amy." and turn["after_transfer"] is True
    await caller.pc.close()
    await agent.pc.close()


async def test_a_transfer_nobody_answers_in_the_browser_fails_in_time():
    class NoAgent:
        call_id = "WR1"

        async def end(self, *, outcome: str) -> None:
            self.ended = outcome

        async def wait_for_agent(self, handoff_id: str, timeout_s: float) -> str:
            await asyncio.sleep(timeout_s)
            raise WebRTCTransferError(f"nobody answered {handoff_id}")

    call = NoAgent()
    control = WebRTCCallControl(call, answer_timeout_s=0.01)
    assert control.can_transfer
    with pytest.raises(WebRTCTransferError, match="H1"):
        await control.transfer(BROWSER_AGENT, SimpleNamespace(id="H1"))
    await control.hang_up(reason="test")
    assert call.ended == "completed"


# --- the agent's outgoing audio --------------------------------------------------------------

async def test_the_agents_track_sends_what_arrives_in_20_ms_frames_and_silence_otherwise():
    track = PcmTrack(16_000, max_buffer_ms=100)
    first = await track.recv()
    assert (first.sample_rate, first.samples, first.pts) == (16_000, 320, 0)
    assert not np.any(first.to_ndarray())  # nothing fed yet: silence
    tone = (np.ones(480, dtype=np.int16) * 1000).tobytes()  # 30 ms
    track.feed(tone)
    second = await track.recv()
    assert second.pts == 320 and np.all(second.to_ndarray() == 1000)
    third = await track.recv()  # 10 ms left: not a whole frame, so silence (no partial click)
    assert not np.any(third.to_ndarray())
    track.feed(bytes(16_000))  # 500 ms at once: only the newest 100 ms are kept
    assert track.buffered_ms == 100
    track.stop()
