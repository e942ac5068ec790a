"""Following a Twilio call after it has been handed to a human: ``WS /twilio/monitor``.

The transfer TwiML starts a listen-only Media Stream on both tracks before it dials the agent
(``<Start><Stream track="both_tracks">``). Twilio then sends the caller's audio (track
``inbound``) and what the caller hears, the agent (track ``outbound``), as μ-law 8 kHz. Each
track is cut into utterances by voice activity, transcribed, and added to the same call record
as ``caller`` and ``agent`` turns, and pushed to the agent desk: the transcript goes on after
pick-up. Nothing is ever sent back on this stream.

Each track is cut by a :class:`telephony.segmenter.TrackSegmenter` (pure: audio in, finished
utterances out); the route around it is thin.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from telephony.audio import Resampler, ulaw_to_pcm16
from telephony.segmenter import TrackSegmenter, Utterance, VadStream
from telephony.twilio.protocol import Media, Start, Stop, TwilioProtocolError, parse_inbound

# TrackSegmenter, Utterance and VadStream live in telephony.segmenter; they are re-exported for
# the modules that import them from here.
__all__ = ["MonitorSink", "TrackSegmenter", "Utterance", "VadStream", "run_monitor"]

log = logging.getLogger("iva.twilio.monitor")


SPEAKERS = {"inbound": "caller", "outbound": "agent"}


class MonitorSink(Protocol):
    """What the monitor needs from the conversation side (``voice.engine``)."""

    def vad_stream(self) -> VadStream: ...
    async def transcribe(self, audio: np.ndarray) -> str: ...
    def record_after_transfer(self, call_id: str, turn: dict[str, Any]) -> None: ...
    def monitor_finished(self, call_id: str) -> None: ...


async def run_monitor(websocket: WebSocket, sink: MonitorSink, *,
                      max_message_bytes: int) -> None:
    """One listen-only stream (see the module docstring)."""
    await websocket.accept()
    call_id: str | None = None
    started_at = datetime.now(UTC)
    segmenters: dict[str, tuple[TrackSegmenter, Resampler]] = {}
    jobs: list[asyncio.Task[None]] = []

    def transcribe(utterance: Utterance) -> None:
        async def job() -> None:
            text = (await sink.transcribe(utterance.audio)).strip()
            if text and call_id:
                sink.record_after_transfer(call_id, {
                    "speaker": utterance.speaker, "text": text, "start_ms": utterance.start_ms,
                    "end_ms": utterance.end_ms, "stream_started_at": started_at})
        jobs.append(asyncio.create_task(job()))

    try:
        while True:
            raw = await websocket.receive_text()
            if len(raw) > max_message_bytes:
                await websocket.close(code=1009, reason="message too large")
                return
            try:
                event = parse_inbound(raw)
            except TwilioProtocolError as exc:
                log.warning("monitor stream %s: bad message: %s", call_id or "-", exc)
                continue
            if isinstance(event, Start):
                call_id, started_at = event.call_sid, datetime.now(UTC)
                log.info("call %s: following the call after its transfer", call_id)
            elif isinstance(event, Media) and call_id:
                speaker = SPEAKERS.get(event.track)
                if speaker is None:
                    continue
                if speaker not in segmenters:
                    segmenters[speaker] = (TrackSegmenter(speaker, sink.vad_stream()),
                                           Resampler(8000, 16000))
                segmenter, resampler = segmenters[speaker]
                for utterance in segmenter.feed(resampler.process(ulaw_to_pcm16(event.payload))):
                    transcribe(utterance)
            elif isinstance(event, Stop):
                break
    except WebSocketDisconnect:
        pass
    finally:
        for segmenter, _ in segmenters.values():
            for utterance in segmenter.flush():
                transcribe(utterance)
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        if call_id:
            sink.monitor_finished(call_id)
            log.info("call %s: monitor stream ended", call_id)

