"""The assistant's side: decide what to say (``DialogueProcessor``) and say it
(``SpeechSynthesisProcessor``), sentence by sentence, with marks so the bridge can tell what the
caller heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

import numpy as np
import soxr
from pipecat.frames.frames import (
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup

from nlu.router import Router
from telephony.frames import CallStartedFrame, SpeechMarkFrame
from voice.frames import AssistantReplyFrame, CallerTurnFrame
from voice.session import AssistantTurn, CallSession
from voice.tts import PiperSynthesizer, duration_ms, split_sentences

log = logging.getLogger("iva.speaking")

DTMF_TERMINATOR = "#"


class DialogueProcessor(FrameProcessor):
    """Turns caller turns (speech or keypad) into replies; greets when the call starts."""

    def __init__(self, *, session: CallSession, router: Router, greeting: str,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._session = session
        self._router = router
        self._greeting = greeting

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallStartedFrame):
            await self.push_frame(frame, direction)
            await self.push_frame(AssistantReplyFrame(text=self._greeting, intent="greeting"))
        elif isinstance(frame, CallerTurnFrame):
            await self._answer(frame.text, dtmf=frame.dtmf, start_ms=frame.start_ms,
                               end_ms=frame.end_ms, speech_end_at=frame.speech_end_at,
                               timings=frame.timings)
        elif isinstance(frame, InputDTMFFrame):
            await self._on_dtmf(frame)
        else:
            await self.push_frame(frame, direction)

    async def _on_dtmf(self, frame: InputDTMFFrame) -> None:
        digit = str(frame.button.value)
        self._session.dtmf(digit)
        if digit == DTMF_TERMINATOR:
            digits, self._session.dtmf_buffer = self._session.dtmf_buffer, ""
            now = self._session.now_ms()
            await self._answer("", dtmf=digits, start_ms=now, end_ms=now,
                               speech_end_at=time.monotonic())
        else:
            self._session.dtmf_buffer += digit

    async def _answer(self, text: str, *, dtmf: str, start_ms: int, end_ms: int,
                      speech_end_at: float | None, timings: dict[str, int] | None = None) -> None:
        started = time.perf_counter()
        reply = self._router.route(text, dtmf=dtmf)
        meta: dict[str, object] = {**(timings or {}),
                                   "route_ms": int((time.perf_counter() - started) * 1000)}
        if dtmf:
            meta["dtmf"] = dtmf
        self._session.caller_turn(
            text or f"[keypad] {dtmf}#", start_ms=start_ms, end_ms=end_ms, intent=reply.intent,
            confidence=round(reply.confidence, 3), meta=meta,
        )
        if reply.passage_ids:
            self._session.event("kb_passages", passages=reply.passage_ids)
        await self.push_frame(AssistantReplyFrame(
            text=reply.text, intent=reply.intent, confidence=reply.confidence,
            speech_end_at=speech_end_at, passage_ids=list(reply.passage_ids),
            end_call=reply.end_call,
        ))


class SpeechSynthesisProcessor(FrameProcessor):
    """Speaks ``AssistantReplyFrame`` text with piper; a barge-in stops it at once."""

    def __init__(self, *, session: CallSession, synthesizer: PiperSynthesizer, executor: Executor,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._session = session
        self._synth = synthesizer
        self._executor = executor
        self._out_rate = 8000
        self._speaking: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, AssistantReplyFrame):
            await self._stop_speaking()
            turn = self._session.reply_started(
                frame.text, intent=frame.intent, confidence=frame.confidence,
                speech_end_at=frame.speech_end_at, end_call=frame.end_call,
            )
            self._speaking = self.create_task(self._speak(turn), name=f"speak-{turn.seq}")
        elif isinstance(frame, InterruptionFrame):
            await self._stop_speaking()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._out_rate = setup.audio_out_sample_rate or self._out_rate

    async def cleanup(self) -> None:
        await self._stop_speaking()
        await super().cleanup()

    async def _stop_speaking(self) -> None:
        task, self._speaking = self._speaking, None
        if task is not None and not task.done():
            await self.cancel_task(task)

    async def _speak(self, turn: AssistantTurn) -> None:
        loop = asyncio.get_running_loop()
        try:
            for index, sentence in enumerate(split_sentences(turn.text)):
                started = time.perf_counter()
                pcm = await loop.run_in_executor(self._executor, self._synth.synthesize, sentence)
                if index == 0:
                    self._session.note(turn, tts_first_ms=int((time.perf_counter() - started) * 1000))
                pcm = _resample(pcm, self._synth.sample_rate, self._out_rate)
                mark = self._session.sentence_queued(turn, sentence, duration_ms(pcm, self._out_rate))
                await self.push_frame(
                    TTSAudioRawFrame(audio=pcm, sample_rate=self._out_rate, num_channels=1,
                                     context_id=f"r{turn.seq}")
                )
                await self.push_frame(SpeechMarkFrame.named(mark))
            await self.push_frame(TTSStoppedFrame(context_id=f"r{turn.seq}"))
        except Exception:
            log.exception("call %s: speech synthesis failed", self._session.call_id)
            self._session.event("tts_error", answer=turn.seq)
        finally:
            self._session.synthesis_finished(turn)


def _resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16)
    return soxr.resample(samples, src_rate, dst_rate, quality="HQ").astype(np.int16).tobytes()
