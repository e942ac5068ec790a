"""LinkTransport runs a pipeline over a non-WebSocket link: messages in and out through the
serializer, output audio paced in real time, the far end going away reported once."""

from __future__ import annotations

import asyncio
import time

import pytest
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer

from telephony.link import LinkParams, LinkTransport

pytestmark = pytest.mark.unit

RATE = 8000
CHUNK = b"\x01\x00" * 160  # 20 ms at 8 kHz


class QueueLink:
    def __init__(self) -> None:
        self.inbound: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self.sent: list[tuple[float, bytes | str]] = []
        self.closed = 0

    async def receive(self) -> bytes | str | None:
        return await self.inbound.get()

    async def send(self, data: bytes | str) -> None:
        self.sent.append((time.monotonic(), data))

    async def close(self) -> None:
        self.closed += 1


class RawSerializer(FrameSerializer):
    """Binary messages are 8 kHz PCM; text messages are interruption notices going out."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return frame.audio
        if isinstance(frame, InterruptionFrame):
            return "flush"
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, str):
            raise ValueError("garbage")
        return InputAudioRawFrame(audio=data, sample_rate=RATE, num_channels=1)


class Collect(FrameProcessor):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.audio: list[InputAudioRawFrame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.audio.append(frame)
        await self.push_frame(frame, direction)


def build(link: QueueLink, *, lead_ms: int = 40) -> tuple[LinkTransport, PipelineTask, Collect]:
    transport = LinkTransport(link, LinkParams(
        audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=RATE,
        audio_out_sample_rate=RATE, audio_out_10ms_chunks=2, audio_out_end_silence_secs=0,
        serializer=RawSerializer(), lead_ms=lead_ms))
    collect = Collect()
    task = PipelineTask(Pipeline([transport.input(), collect, transport.output()]),
                        params=PipelineParams(audio_in_sample_rate=RATE,
                                              audio_out_sample_rate=RATE),
                        enable_rtvi=False, enable_turn_tracking=False)
    return transport, task, collect


async def run_until(task: PipelineTask, condition, timeout: float = 5.0) -> None:
    runner = PipelineRunner(handle_sigint=False)
    running = asyncio.create_task(runner.run(task))
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(running, timeout)


async def test_audio_messages_from_the_far_end_reach_the_pipeline():
    link = QueueLink()
    _, task, collect = build(link)
    for _ in range(5):
        link.inbound.put_nowait(CHUNK)
    await run_until(task, lambda: len(collect.audio) >= 5)
    assert len(collect.audio) == 5
    assert collect.audio[0].audio == CHUNK and collect.audio[0].sample_rate == RATE
    assert link.closed >= 1


async def test_output_audio_is_paced_in_real_time_within_the_lead():
    link = QueueLink()
    _, task, _ = build(link, lead_ms=40)
    second = b"\x10\x00" * RATE  # one second of audio at 8 kHz
    await task.queue_frame(OutputAudioRawFrame(audio=second, sample_rate=RATE, num_channels=1))
    await run_until(task, lambda: sum(len(d) for _, d in link.sent if isinstance(d, bytes))
                    >= len(second), timeout=5.0)
    audio = [(t, d) for t, d in link.sent if isinstance(d, bytes)]
    assert sum(len(d) for _, d in audio) == len(second)
    # A second of audio cannot all go out at once: the last chunk leaves at least
    # 1 s - lead - one chunk after the first (generous lower bound on a noisy machine).
    assert audio[-1][0] - audio[0][0] >= 0.8


async def test_a_far_end_that_goes_away_is_reported():
    link = QueueLink()
    transport, task, _ = build(link)
    gone: list[bool] = []

    @transport.event_handler("on_client_disconnected")
    async def _gone(_transport: LinkTransport) -> None:
        gone.append(True)

    link.inbound.put_nowait(None)
    await run_until(task, lambda: bool(gone))
    assert gone == [True]


async def test_a_message_the_serializer_refuses_ends_the_link_not_the_process():
    link = QueueLink()
    transport, task, _ = build(link)
    gone: list[bool] = []

    @transport.event_handler("on_client_disconnected")
    async def _gone(_transport: LinkTransport) -> None:
        gone.append(True)

    link.inbound.put_nowait("not audio")
    await run_until(task, lambda: bool(gone))
    assert gone == [True]
