"""The assistant's side: decide what to say (``DialogueProcessor``) and say it
(``SpeechSynthesisProcessor``), sentence by sentence, with marks so the bridge can tell what the
caller heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
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

from nlu.assistant import Assistant, Reply
from nlu.slots import DtmfCollector
from telephony.frames import CallStartedFrame, SpeechMarkFrame
from voice.frames import AssistantReplyFrame, CallerTurnFrame
from voice.handover import Handover
from voice.mood import ESCALATION_ANNOUNCEMENT, CallMood
from voice.session import AssistantTurn, CallSession
from voice.tts import PiperSynthesizer, duration_ms, split_sentences

log = logging.getLogger("iva.speaking")

SOMETHING_WENT_WRONG = ("Sorry, something went wrong on my side. "
                        "Could you say that again?")


AssistantFactory = Callable[[str, str | None], Assistant]
"""Makes the assistant of one call from its call id and caller ID."""


class DialogueProcessor(FrameProcessor):
    """Turns caller turns (speech or keypad) into replies; greets when the call starts.

    The call's :class:`~nlu.assistant.Assistant` is made when the bridge says who is calling.
    Keypad digits are collected until ``#`` or until ``dtmf_timeout_s`` passes without a key.
    """

    def __init__(self, *, session: CallSession, assistant_factory: AssistantFactory,
                 greeting: str, dtmf_timeout_s: float = 5.0,
                 handover_factory: Callable[[DialogueProcessor], Handover] | None = None,
                 mood: CallMood | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._session = session
        self._mood = mood
        self._mood_escalated = False
        self._handover = handover_factory(self) if handover_factory else None
        self._handover_task: asyncio.Task[None] | None = None
        self._make_assistant = assistant_factory
        self._assistant: Assistant | None = None
        self._greeting = greeting
        self._keypad = DtmfCollector(timeout_s=dtmf_timeout_s)
        self._keypad_timer: asyncio.Task[None] | None = None

    @property
    def assistant(self) -> Assistant:
        if self._assistant is None:
            self._assistant = self._make_assistant(self._session.call_id or "unknown", self._session.caller)
        return self._assistant

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallStartedFrame):
            self._assistant = self._make_assistant(frame.call_id, frame.caller)
            await self.push_frame(frame, direction)
            await self.push_frame(AssistantReplyFrame(text=self._greeting, intent="greeting"))
        elif isinstance(frame, CallerTurnFrame):
            await self._answer(frame.text, dtmf=frame.dtmf, start_ms=frame.start_ms,
                               end_ms=frame.end_ms, speech_end_at=frame.speech_end_at,
                               timings=frame.timings, alternatives=frame.alternatives)
        elif isinstance(frame, InputDTMFFrame):
            await self._on_dtmf(frame)
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await self._stop_keypad_timer()
        task, self._handover_task = self._handover_task, None
        if task is not None and not task.done():
            await self.cancel_task(task)
        if self._handover is not None:
            self._handover.call_ended()
        await super().cleanup()

    async def push_downstream(self, frame: Frame) -> None:
        """For the handover: hold tones and its replies go where the assistant's replies go."""
        await self.push_frame(frame)

    def _start_handover(self, reason: str) -> None:
        if self._handover is None or self._handover.active:
            return
        self._handover_task = self.create_task(self._handover.run(reason, self.assistant),
                                               name="handover")

    async def _on_dtmf(self, frame: InputDTMFFrame) -> None:
        key = str(frame.button.value)
        self._session.dtmf(key)
        await self._stop_keypad_timer()
        entry = self._keypad.press(key, time.monotonic())
        self._session.dtmf_buffer = self._keypad.digits
        if entry is not None:
            await self._keypad_entry(f"{entry}#")
        elif self._keypad.digits:
            self._keypad_timer = self.create_task(self._keypad_timeout(), name="dtmf-timeout")

    async def _keypad_timeout(self) -> None:
        deadline = self._keypad.deadline_s
        if deadline is None:
            return
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        entry = self._keypad.poll(time.monotonic())
        if entry:
            self._session.event("dtmf_timeout", digits=len(entry))
            self._session.dtmf_buffer = ""
            await self._keypad_entry(entry)

    async def _stop_keypad_timer(self) -> None:
        timer, self._keypad_timer = self._keypad_timer, None
        if timer is not None and not timer.done() and timer is not asyncio.current_task():
            await self.cancel_task(timer)

    async def _keypad_entry(self, keys: str) -> None:
        now = self._session.now_ms()
        await self._answer("", dtmf=keys, start_ms=now, end_ms=now, speech_end_at=time.monotonic())

    async def _answer(self, text: str, *, dtmf: str, start_ms: int, end_ms: int,
                      speech_end_at: float | None, timings: dict[str, int] | None = None,
                      alternatives: tuple[tuple[str, float], ...] = ()) -> None:
        if self._session.on_hold:
            await self._record_on_hold(text, dtmf=dtmf, start_ms=start_ms, end_ms=end_ms)
            return
        started = time.perf_counter()
        try:
            # Off the event loop: the backend, or an LLM endpoint, may take a while.
            reply = await asyncio.to_thread(self.assistant.respond, text, dtmf=dtmf,
                                            alternatives=alternatives)
        except asyncio.CancelledError:
            # The call ended while the turn was being answered: keep what the caller said. (An
            # interruption cannot cancel this: barge-in needs the assistant to be speaking, and
            # the reply to this turn has not started.)
            self._session.caller_turn(text or f"[keypad] {dtmf}", start_ms=start_ms,
                                      end_ms=end_ms, meta={**(timings or {}),
                                                           "unanswered": "call ended"})
            raise
        except Exception:
            log.exception("call %s: the assistant failed on a turn", self._session.call_id)
            self._session.event("assistant_error")
            reply = Reply("error", 0.0, SOMETHING_WENT_WRONG)
        route_ms = int((time.perf_counter() - started) * 1000)
        sentiment = None
        if self._mood is not None and text:
            reply, sentiment = self._watch_mood(text, reply)
        meta: dict[str, object] = {**(timings or {}), "route_ms": route_ms}
        if dtmf:
            meta["dtmf"] = dtmf.rstrip("#")
        if reply.slots:
            meta["slots"] = reply.slots
        if reply.flow:
            meta["flow"] = reply.flow
            meta["facts"] = reply.facts
        self._session.caller_turn(
            text or f"[keypad] {dtmf}", start_ms=start_ms, end_ms=end_ms, intent=reply.intent,
            confidence=round(reply.confidence, 3), sentiment=sentiment, meta=meta,
        )
        self._session.expecting = reply.expects
        if reply.passage_ids:
            self._session.event("kb_passages", passages=reply.passage_ids)
        if reply.escalate:
            self._session.event("escalation", reason=reply.escalate, intent=reply.intent,
                                flow=reply.flow, facts=reply.facts)
        await self.push_frame(AssistantReplyFrame(
            text=reply.text, intent=reply.intent, confidence=reply.confidence,
            speech_end_at=speech_end_at, passage_ids=list(reply.passage_ids),
            end_call=reply.end_call, escalate=reply.escalate, ticket=reply.ticket,
        ))
        if reply.escalate:
            self._start_handover(reply.escalate)
        if reply.ticket and self._handover is not None:
            self._handover.ticket(reply.ticket)

    def _watch_mood(self, text: str, reply: Reply) -> tuple[Reply, float]:
        """Sentiment of the turn and the escalation risk; a call that needs a human gets one,
        with the reasons, before frustration boils over."""
        mood = self._mood
        assert mood is not None
        acted_on = reply.intent if reply.confidence >= self.assistant.threshold else None
        turn, decision = mood.caller_turn(text, acted_on)
        if decision.changed:
            self._session.event("escalation_risk", **decision.event_data())
        busy = self._handover is not None and self._handover.handoff is not None
        if decision.escalate and not reply.escalate and not busy and not self._mood_escalated:
            self._mood_escalated = True  # once a call: after a handover, never again
            reason = "frustration: " + ("; ".join(decision.reasons) or "high escalation risk")
            self.assistant.flow = None
            reply = Reply("escalation", round(decision.risk, 3), ESCALATION_ANNOUNCEMENT,
                          escalate=reason, slots=reply.slots)
        mood.assistant_reply(reply)
        return reply, round(turn.score, 3)

    async def _record_on_hold(self, text: str, *, dtmf: str, start_ms: int, end_ms: int) -> None:
        """Waiting for an agent, or talking with one after the transfer: the caller's words are
        kept (the agent sees them), not answered."""
        after = self._session.final_outcome == "transferred"
        self._session.caller_turn(text or f"[keypad] {dtmf}", start_ms=start_ms, end_ms=end_ms,
                                  meta={"after_transfer": True} if after else {"on_hold": True})


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
