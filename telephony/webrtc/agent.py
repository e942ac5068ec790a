"""An agent answering a browser call in their own browser: the agent's WebRTC connection.

Once an agent has accepted a handoff on the desk, their page makes its own peer connection to
the service (``POST /api/handoffs/{id}/webrtc/offer``). :class:`AgentLeg` then bridges audio:

    caller's browser ──Opus──▶ pipeline input (16 kHz) ──▶ PcmTrack ──Opus──▶ agent's speaker
    agent's microphone ──Opus──▶ 16 kHz ──▶ the call's pipeline output ──▶ caller's speaker
                                        └─▶ VAD utterances ──▶ whisper ──▶ "agent" turns

The agent's audio joins the caller's pipeline at its start, so it takes the same path as the
assistant's voice (the recording's right track, real-time pacing). The assistant has left the
call by then (``voice.handover``: the session stays on hold, so caller turns are recorded and
not answered). The agent's words are cut into utterances by the shared Silero model and
transcribed by the shared whisper model, then written to the call record as ``agent`` turns.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

from telephony.segmenter import TrackSegmenter, Utterance, VadStream
from telephony.webrtc.captions import is_hangup

__all__ = ["AgentLeg", "AgentSpeech", "PcmTrack"]

log = logging.getLogger("iva.webrtc.agent")

RATE = 16_000
FRAME_MS = 20


class AgentSpeech(Protocol):
    """The shared models (``voice.engine.ConversationEngine`` provides them)."""

    def vad_stream(self) -> VadStream: ...
    async def transcribe(self, audio: np.ndarray) -> str: ...


class PcmTrack(MediaStreamTrack):
    """An outgoing audio track fed with 16-bit mono PCM as it arrives, sent in 20 ms frames
    paced in real time; silence while nothing is buffered. At most ``max_buffer_ms`` is kept,
    so a stall on the far side never turns into a growing delay."""

    kind = "audio"

    def __init__(self, sample_rate: int = RATE, *, max_buffer_ms: int = 300) -> None:
        super().__init__()
        self._rate = sample_rate
        self._frame_samples = sample_rate * FRAME_MS // 1000
        self._max_bytes = sample_rate * max_buffer_ms // 1000 * 2
        self._buffer = bytearray()
        self._start: float | None = None
        self._pts = 0

    @property
    def buffered_ms(self) -> int:
        return len(self._buffer) // 2 * 1000 // self._rate

    def feed(self, pcm: bytes) -> None:
        self._buffer.extend(pcm)
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            del self._buffer[:excess + excess % 2]

    def next_chunk(self) -> bytes:
        """The next 20 ms to send: buffered audio when a whole frame is there, else silence."""
        size = self._frame_samples * 2
        if len(self._buffer) < size:
            return bytes(size)
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / self._rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = np.frombuffer(self.next_chunk(), dtype=np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self._rate)
        self._pts += self._frame_samples
        return frame


class AgentLeg:
    """The agent's peer connection to one call (see the module docstring)."""

    def __init__(self, connection: SmallWebRTCConnection, *, agent: str, speech: AgentSpeech,
                 to_caller: Callable[[bytes], Awaitable[None]],
                 on_words: Callable[[str, int, int], None], now_ms: Callable[[], int],
                 on_connected: Callable[[], None],
                 on_gone: Callable[[], Awaitable[None]]) -> None:
        self.connection = connection
        self.agent = agent
        self.outgoing = PcmTrack(RATE)
        self.connected = False
        self._speech = speech
        self._to_caller = to_caller
        self._on_words = on_words
        self._now_ms = now_ms
        self._on_connected = on_connected
        self._on_gone = on_gone
        self._receiver: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._segmenter: TrackSegmenter | None = None
        self._started_ms = 0
        self._closed = False

    async def start(self) -> None:
        """Listen for the connection's events; audio flows once it is connected."""
        connection = self.connection

        @connection.event_handler("connected")
        async def _connected(_connection: SmallWebRTCConnection) -> None:
            if self.connected or self._closed:
                return
            self.connected = True
            connection.replace_audio_track(self.outgoing)
            self._started_ms = self._now_ms()
            self._segmenter = TrackSegmenter("agent", self._speech.vad_stream())
            self._receiver = asyncio.create_task(self._receive(), name=f"agent-{self.agent}")
            log.info("agent %s: connected in the browser", self.agent)
            self._on_connected()

        @connection.event_handler("closed")
        async def _closed(_connection: SmallWebRTCConnection) -> None:
            if not self._closed:
                log.info("agent %s: left the call", self.agent)
                await self._on_gone()

        @connection.event_handler("app-message")
        async def _message(_connection: SmallWebRTCConnection, message: Any) -> None:
            if is_hangup(message) and not self._closed:
                log.info("agent %s: hung up", self.agent)
                await self._on_gone()

        await connection.connect()  # connection events fire from now on

    def hear(self, pcm16k: bytes) -> None:
        """The caller's audio, for the agent's speaker."""
        if self.connected and not self._closed:
            self.outgoing.feed(pcm16k)

    async def _receive(self) -> None:
        track = self.connection.audio_input_track()
        if track is None:
            log.warning("agent %s: the browser sent no audio track", self.agent)
            return
        resampler = AudioResampler(format="s16", layout="mono", rate=RATE)
        while not self._closed:
            try:
                frame = await asyncio.wait_for(track.recv(), timeout=2.0)
            except TimeoutError:
                continue
            except MediaStreamError:
                return
            if frame is None:
                await asyncio.sleep(0.01)
                continue
            for part in resampler.resample(frame):
                pcm = part.to_ndarray().astype(np.int16).tobytes()
                await self._to_caller(pcm)
                assert self._segmenter is not None
                for utterance in self._segmenter.feed(pcm):
                    self._transcribe(utterance)

    def _transcribe(self, utterance: Utterance) -> None:
        async def job() -> None:
            text = (await self._speech.transcribe(utterance.audio)).strip()
            if text:
                self._on_words(text, self._started_ms + utterance.start_ms,
                               self._started_ms + utterance.end_ms)
        task = asyncio.create_task(job())
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def close(self, *, wait_s: float = 5.0) -> None:
        """Stop the audio, finish transcribing what the agent said, close the connection."""
        if self._closed:
            return
        self._closed = True
        if self._receiver is not None:
            self._receiver.cancel()
            try:
                await self._receiver
            except (asyncio.CancelledError, Exception):
                pass
        if self._segmenter is not None:
            for utterance in self._segmenter.flush():
                self._transcribe(utterance)
        if self._jobs:
            await asyncio.wait(set(self._jobs), timeout=wait_s)
        self.outgoing.stop()
        try:
            await self.connection.disconnect()
        except Exception:  # already closed by the browser
            log.debug("agent %s: connection already closed", self.agent)
