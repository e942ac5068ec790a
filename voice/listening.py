"""The caller's side of the conversation: VAD → end of turn → ASR, and barge-in.

``CallerTurnProcessor`` consumes the caller's 16 kHz audio frames and emits one
``CallerTurnFrame`` per finished turn. Decisions, in order of the audio:

* Speech starts (``TurnDetector``). If the assistant is talking, this may be a barge-in.
* Overlapping speech is transcribed once it has lasted ``barge_in_check_ms``: words that are
  not a backchannel interrupt then; speech that lasts ``backchannel_max_ms`` interrupts
  whatever it says; a shorter burst is transcribed when it ends: "uh-huh", "okay", "right" are backchannels (recorded, ignored),
  anything else interrupts and becomes the caller's turn.
* After ``hesitation_ms`` of silence, ASR and the turn model (smart-turn) start, speculatively
  and in parallel; after ``pause_ms`` a "complete" verdict ends the turn with the transcript
  (more speech before that throws the work away). An "incomplete" verdict (a caller dictating
  digits, "my order number is ...") waits until ``timeout_ms`` of silence.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from nlu.slots import DigitDictationDetector, extract_order_number, extract_postcode
from voice.asr import Transcript, WhisperTranscriber
from voice.frames import CallerTurnFrame
from voice.session import CallSession
from voice.turns import (
    SilenceTimeout,
    SpeechHesitated,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
)
from voice.vad import SileroModel, SmartTurnModel

log = logging.getLogger("iva.listening")

SAMPLE_RATE = 16_000
_BYTES_PER_MS = SAMPLE_RATE * 2 // 1000
_PRE_ROLL_MS = 300  # audio kept from before the VAD fired, so first syllables are not lost
_LAST_WORDS_TIMEOUT_S = 10.0  # for the transcript of a turn the caller hung up on


class VoiceSink(Protocol):
    """Who else listens to the caller's speech (``voice.mood.CallMood``: the voice's mood)."""

    def speech_started(self) -> None: ...
    def feed(self, pcm16k: bytes) -> None: ...
    def speech_stopped(self) -> None: ...
    def barge_in(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ListeningParams:
    vad_threshold: float = 0.5
    speech_start_ms: int = 60
    hesitation_ms: int = 120
    pause_ms: int = 200
    timeout_ms: int = 800
    dictation_timeout_ms: int = 1500
    barge_in_min_speech_ms: int = 200
    backchannel_max_ms: int = 700
    barge_in_check_ms: int = 400
    complete_threshold: float = 0.5
    max_turn_ms: int = 20_000
    backchannels: tuple[str, ...] = ("uh-huh", "okay", "right")


_WORD = re.compile(r"[a-z']+")

# The codes the assistant asks for, by the slot name of its question: their length in digits,
# and how to tell that a turn gave one.
_CODE_DIGITS: dict[str, int] = {"order_number": 4, "postcode": 5}
# What the recogniser is primed with while the assistant waits for a code: digits spaced out,
# so "four three zero zero four" comes back as "4 3 0 0 4", not "4th read, error, 0-4".
ASR_HINTS: dict[str, str] = {"order_number": "Order number 1 0 0 1.",
                              "postcode": "Postcode 9 4 1 1 0."}
_CODE_GIVEN: dict[str, Callable[[str], object]] = {
    "order_number": extract_order_number, "postcode": extract_postcode,
}


# A sentence that ends on one of these is still going ("my order number is ...", "and ...").
_OPEN_ENDINGS = frozenset("""
    and or but so because then the a an my your is are was to of for with from at in on
    um uh er erm hmm well wait actually like number order zero oh one two three four five six
    seven eight nine ten hold
""".split())


# Words that open an interruption.
_INTERRUPT_CUES = frozenset("""
    wait stop no nope sorry hold hang actually excuse pardon but hey hello what agent person
    representative human operator cancel
""".split())


class PreRoll:
    """The last :data:`_PRE_ROLL_MS` of audio before the VAD fired, so a turn keeps its first
    syllables (and Whisper hears a little silence before the first word, as it expects)."""

    def __init__(self, ms: int = _PRE_ROLL_MS) -> None:
        self._chunks: deque[bytes] = deque()
        self._bytes = 0
        self._limit = ms * _BYTES_PER_MS

    def push(self, pcm: bytes) -> None:
        self._chunks.append(pcm)
        self._bytes += len(pcm)
        while self._bytes > self._limit:
            self._bytes -= len(self._chunks.popleft())

    def take(self) -> list[bytes]:
        """The kept audio, oldest first; the pre-roll starts empty again."""
        chunks = list(self._chunks)
        self._chunks.clear()
        self._bytes = 0
        return chunks


def turn_segment(pcm16: bytes, vad: SileroModel, params: ListeningParams = ListeningParams(),
                 *, chunk_ms: int = 20) -> bytes:
    """The audio of the first turn in ``pcm16`` (16 kHz) as :class:`CallerTurnProcessor` hands
    it to the recogniser: from :class:`PreRoll` before the VAD fired to the last short silence
    after speech (where the speculative transcription starts), or to the end of the audio.

    For offline evaluation (``iva eval nlu --speech``), so a synthetic caller's recording is
    transcribed with the leading and trailing silence a live call would give it, whatever
    silence the voice itself put around the words. Empty when the VAD hears no speech.
    """
    stream, pre_roll = vad.stream(), PreRoll()
    detector = TurnDetector(
        threshold=params.vad_threshold, start_ms=params.speech_start_ms,
        hesitation_ms=params.hesitation_ms, pause_ms=params.pause_ms,
        timeout_ms=params.timeout_ms,
    )
    step = chunk_ms * _BYTES_PER_MS
    segment: list[bytes] | None = None
    heard = 0  # bytes of the segment up to the last short silence
    vad_ms = 0
    for at in range(0, len(pcm16), step):
        chunk = pcm16[at:at + step]
        if segment is None:
            pre_roll.push(chunk)
        else:
            segment.append(chunk)
        for prob in stream.feed(chunk):
            vad_ms += detector.window_ms
            for event in detector.push(vad_ms, prob):
                if isinstance(event, SpeechStarted) and segment is None:
                    segment = pre_roll.take()
                elif isinstance(event, SpeechHesitated) and segment is not None:
                    heard = sum(len(c) for c in segment)
                elif isinstance(event, SpeechResumed):
                    heard = 0  # more words: the transcription waits for the next silence
    if segment is None:
        return b""
    whole = b"".join(segment)
    return whole[:heard] if heard else whole


def looks_complete(text: str) -> bool:
    """Whisper's punctuation as a turn-end signal: a question mark, or a full stop or
    exclamation after a word that does not leave the sentence open. Digits being dictated
    ("1, 0, 0 1.") never look complete: more may follow."""
    text = text.strip()
    if not text or text[-1] not in ".?!":
        return False
    words = _WORD.findall(text.lower())
    last = text.rstrip(".?! ").split()[-1] if text.rstrip(".?! ") else ""
    if not words or last[-1:].isdigit():
        return False
    return text.endswith("?") or words[-1] not in _OPEN_ENDINGS


def is_backchannel(text: str, backchannels: tuple[str, ...]) -> bool:
    """True when every word of ``text`` belongs to a backchannel phrase ("uh huh, okay")."""
    allowed = {w for phrase in backchannels for w in _WORD.findall(phrase.lower())}
    words = _WORD.findall(text.lower().replace("-", " "))
    return bool(words) and all(w in allowed for w in words)


class CallerTurnProcessor(FrameProcessor):
    """VAD, end of turn, ASR and barge-in for one call."""

    def __init__(
        self,
        *,
        session: CallSession,
        vad: SileroModel,
        turn_model: SmartTurnModel | None,
        asr: WhisperTranscriber,
        executor: Executor,
        params: ListeningParams,
        voice_sink: VoiceSink | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self._session = session
        self._voice = voice_sink
        self._vad = vad.stream()
        self._turn_model = turn_model
        self._asr = asr
        self._executor = executor
        self._params = params
        self._detector = TurnDetector(
            threshold=params.vad_threshold, start_ms=params.speech_start_ms,
            hesitation_ms=params.hesitation_ms, pause_ms=params.pause_ms,
            timeout_ms=params.timeout_ms,
        )
        self._media_ms = 0
        self._vad_ms = 0
        self._pre_roll = PreRoll()
        self._segment: list[bytes] | None = None
        self._segment_bytes = 0
        self._overlap = False  # the current segment started while the assistant was busy
        self._barged_in = False
        self._last_speech_at = 0.0
        self._decision: asyncio.Task[None] | None = None
        self._asr_job: asyncio.Future[Transcript] | None = None
        self._turn_job: asyncio.Future[float] | None = None
        self._early_check: asyncio.Task[None] | None = None
        self._timed_out = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self._on_audio(frame.audio)
            return
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await self._cancel_decision()
        await self._keep_last_words()
        await super().cleanup()

    async def _keep_last_words(self) -> None:
        """The call is ending (the caller hung up, or the line dropped) with a turn still open:
        speech not yet followed by a long enough pause, or its transcript still coming. What the
        caller said last goes into the record as an unanswered caller turn: "this is useless"
        before a hang-up is what a supervisor most needs to read. At most
        ``_LAST_WORDS_TIMEOUT_S`` is spent on it."""
        segment, job = self._segment, self._asr_job
        if segment is None or self._session.ended or not self._session.started:
            return
        self._asr_job = self._turn_job = None
        start_ms = self._detector.segment_start_ms or 0
        ended = self._detector.last_speech_end_ms
        end_ms = ended if ended >= start_ms else self._vad_ms  # still speaking when it ended
        try:
            if job is None or job.cancelled():  # cancelling the decision cancels its wait
                look = functools.partial(self._asr.transcribe, _to_float(segment))
                job = asyncio.get_running_loop().run_in_executor(self._executor, look)
            transcript = await asyncio.wait_for(job, _LAST_WORDS_TIMEOUT_S)
        except Exception:  # a timeout or a failing recogniser must not hold up the hang-up
            log.warning("call %s: the caller's last words were not transcribed",
                        self._session.call_id, exc_info=True)
            self._session.event("last_words_lost", start_ms=start_ms, end_ms=end_ms)
            return
        finally:
            self._segment = None
        if transcript.text:
            self._session.caller_turn(transcript.text, start_ms=start_ms, end_ms=end_ms,
                                      meta={"unanswered": "call ended"})

    # ------------------------------------------------------------------ audio path
    async def _on_audio(self, pcm: bytes) -> None:
        if not self._session.started or self._session.ended:
            return
        self._media_ms += len(pcm) // _BYTES_PER_MS
        if self._segment is not None:
            self._segment.append(pcm)
            self._segment_bytes += len(pcm)
            if self._voice is not None:
                self._voice.feed(pcm)
            if self._segment_bytes > self._params.max_turn_ms * _BYTES_PER_MS:
                await self._finish_turn(self._detector.last_speech_end_ms, forced=True)
        else:
            self._pre_roll.push(pcm)
        for prob in self._vad.feed(pcm):
            self._vad_ms += 32
            if prob >= self._params.vad_threshold:
                self._last_speech_at = time.monotonic()
            for event in self._detector.push(self._vad_ms, prob):
                await self._on_turn_event(event)
            if (self._overlap and not self._barged_in and self._segment is not None
                    and prob >= self._params.vad_threshold):
                # Speech so far in this burst (up to now, while still speaking): a backchannel
                # is short, so speech that goes on past backchannel_max_ms is a real barge-in.
                spoken = self._vad_ms - (self._detector.segment_start_ms or self._vad_ms)
                if spoken >= max(self._params.backchannel_max_ms, self._params.barge_in_min_speech_ms):
                    await self._barge_in("long speech")
                elif spoken >= self._params.barge_in_check_ms and self._early_check is None:
                    self._early_check = self.create_task(self._check_words(), name="barge-check")

    async def _check_words(self) -> None:
        """Speech over the answer has lasted ``barge_in_check_ms``: if its words so far are not
        a backchannel ("wait", "no", "actually ..."), interrupt now rather than at
        ``backchannel_max_ms``."""
        if self._segment is None:
            return
        # A 4 s window is plenty for half a second of speech and ~3x faster than the default.
        look = functools.partial(self._asr.transcribe, _to_float(self._segment), window_s=4.0)
        transcript = await asyncio.get_running_loop().run_in_executor(self._executor, look)
        words = _WORD.findall(transcript.text.lower())
        # Half a second of "uh-huh" can come out as junk words, so only a clear cue ("wait",
        # "no", "stop", ...) or a run of words interrupts this early.
        cue = any(w in _INTERRUPT_CUES for w in words) or len(words) >= 3
        if (cue and not is_backchannel(transcript.text, self._params.backchannels)
                and self._overlap and not self._barged_in):
            await self._barge_in(f"words after {self._params.barge_in_check_ms} ms")

    async def _on_turn_event(self, event: object) -> None:
        if isinstance(event, SpeechStarted):
            self._segment = self._pre_roll.take()
            self._segment_bytes = sum(len(c) for c in self._segment)
            self._overlap = self._session.assistant_busy
            self._barged_in = False
            self._early_check = None
            if self._voice is not None:
                self._voice.speech_started()
        elif isinstance(event, SpeechHesitated):
            self._start_speculation()
        elif isinstance(event, SpeechResumed):
            await self._cancel_decision()
            self._asr_job = self._turn_job = None  # they heard only part of the turn
        elif isinstance(event, SpeechPaused):
            await self._cancel_decision()
            self._timed_out = False
            self._decision = self.create_task(self._decide(event.end_ms), name="turn-decision")
        elif isinstance(event, SilenceTimeout):
            # An "incomplete" verdict waits for this; a verdict still running sees the flag.
            self._timed_out = True
            if self._segment is not None and (self._decision is None or self._decision.done()):
                await self._finish_turn(event.end_ms)

    # ------------------------------------------------------------------ decisions
    def _start_speculation(self) -> None:
        """A short silence: transcribe the segment and ask the turn model now, in parallel, so
        both answers are ready (or nearly) when the pause is long enough to end the turn. More
        speech throws the work away."""
        if self._segment is None:
            return
        loop = asyncio.get_running_loop()
        audio = _to_float(self._segment)
        hint = ASR_HINTS.get(self._session.expecting or "", "")
        self._asr_job = loop.run_in_executor(
            self._executor, functools.partial(self._asr.transcribe, audio, hint=hint))
        self._turn_job = None
        if self._turn_model is not None and not self._overlap:
            self._turn_job = loop.run_in_executor(
                self._executor, self._turn_model.completion_probability, audio)

    async def _decide(self, end_ms: int) -> None:
        """The caller has paused: is the turn over? Runs as a task; more speech cancels it."""
        if self._segment is None:
            return
        if self._asr_job is None:
            self._start_speculation()
        asr_job = self._asr_job
        assert asr_job is not None
        transcript = await asr_job
        # A backchannel is only one while the assistant is still talking: "okay" after it has
        # asked "shall I connect you?" and stopped is an answer.
        if self._overlap and not self._barged_in and self._session.assistant_busy:
            if not transcript.text or is_backchannel(transcript.text, self._params.backchannels):
                self._session.event("backchannel", text=transcript.text)
                log.info("call %s: backchannel ignored", self._session.call_id)
                self._reset_segment()
                return
            await self._barge_in("short interruption")
        if self._dictating(transcript.text):
            # "one zero ... zero one": a pause between digit groups does not end the turn.
            if self._detector.wait_longer(self._params.dictation_timeout_ms):
                self._session.event("dictating_digits")
                self._timed_out = False
                return
        elif not self._timed_out and not await self._turn_complete(transcript.text):
            # Unfinished ("my order number is ..."): SilenceTimeout or more speech decides.
            return
        await self._emit(transcript, end_ms)

    async def _turn_complete(self, text: str) -> bool:
        """The turn model's verdict, overruled when the words plainly end a sentence: smart-turn
        reads prosody, and flat synthetic or tired voices can sound unfinished. A complete
        code the assistant has just asked for ("it's one zero zero one") ends the turn at once."""
        expecting = self._session.expecting or ""
        if expecting in _CODE_GIVEN and _CODE_GIVEN[expecting](text):
            return True
        if self._turn_model is None:
            return True
        if self._turn_job is None and self._segment is not None:
            self._turn_job = asyncio.get_running_loop().run_in_executor(
                self._executor, self._turn_model.completion_probability, _to_float(self._segment))
        assert self._turn_job is not None
        probability = await self._turn_job
        if probability >= self._params.complete_threshold:
            return True
        if looks_complete(text):
            self._session.event("turn_complete_by_text", probability=round(probability, 3))
            return True
        self._session.event("turn_incomplete", probability=round(probability, 3))
        return False

    def _dictating(self, text: str) -> bool:
        """Whether ``text`` stops in the middle of a code (more digits to come), judged
        against the length of the code the assistant asked for, if it asked for one."""
        expected = _CODE_DIGITS.get(self._session.expecting or "")
        return DigitDictationDetector(expected_digits=expected).is_dictating(text)

    async def _finish_turn(self, end_ms: int, *, forced: bool = False) -> None:
        """Close the turn without waiting for a verdict (silence timeout, over-long turn)."""
        await self._cancel_decision()
        if self._segment is None:
            return
        if self._asr_job is None or forced:
            self._start_speculation()
        assert self._asr_job is not None
        transcript = await self._asr_job
        if forced:
            self._session.event("turn_too_long", seconds=round(transcript.audio_s, 1))
        await self._emit(transcript, end_ms)

    async def _emit(self, transcript: Transcript, end_ms: int) -> None:
        text = transcript.text
        start_ms = self._detector.segment_start_ms or end_ms
        speech_end_at = self._last_speech_at or time.monotonic()
        timings = {"asr_ms": int(transcript.compute_s * 1000),
                   "endpoint_ms": int((time.monotonic() - speech_end_at) * 1000)}
        self._reset_segment()
        if self._voice is not None:
            self._voice.speech_stopped()
        if not text:
            self._session.event("noise", start_ms=start_ms, end_ms=end_ms)
            return
        await self.push_frame(
            CallerTurnFrame(text=text, start_ms=start_ms, end_ms=end_ms,
                            speech_end_at=speech_end_at, timings=timings,
                            alternatives=transcript.alternatives)
        )

    async def _barge_in(self, why: str) -> None:
        if self._barged_in:
            return
        self._barged_in = True
        if not self._session.assistant_busy:
            return
        if self._voice is not None:
            self._voice.barge_in()
        turn = self._session.interrupted(speech_onset_ms=self._detector.segment_start_ms)
        log.info("call %s: barge-in (%s) during answer %s", self._session.call_id, why,
                 turn.seq if turn else "-")
        await self.broadcast_interruption()

    def _reset_segment(self) -> None:
        self._segment = None
        self._early_check = None
        self._asr_job = self._turn_job = None
        self._overlap = False
        self._barged_in = False
        self._detector.end_turn()
        self._detector.timeout_ms = self._params.timeout_ms

    async def _cancel_decision(self) -> None:
        task, self._decision = self._decision, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            await self.cancel_task(task)


def _to_float(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype=np.int16).astype(np.float32) / 32768.0
