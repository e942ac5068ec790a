"""Placing one call: the Twilio side (connected, start, continuous media, dtmf) and the
turn-taking of a polite or interrupting caller."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from telephony.audio import pcm16_to_ulaw, read_wav, resample, ulaw_to_pcm16
from telephony.twilio import protocol as tw
from voice.caller.model import (
    DTMF_GAP_S,
    FRAME_BYTES,
    FRAME_S,
    MAX_ANSWER_S,
    SILENCE,
    SPEECH_RMS_FLOOR,
    SPEECH_RMS_RELATIVE,
    AssistantSpeech,
    CallError,
    CallerTurn,
    CallResult,
    TurnResult,
    _Playback,
    _Speech,
)

log = logging.getLogger("iva.caller")



# ------------------------------------------------------------------------------ the call
@dataclass(eq=False)
class _Slot:
    """A caller turn (``turn`` None for the greeting) and the answer it gets."""

    turn: CallerTurn | None
    speech_start_at: float | None = None
    speech_end_at: float | None = None  # the last voiced frame (or digit) sent so far
    answer: _Speech | None = None
    answered_after: float | None = None  # speech_end_at when the answer began
    clear_at: float | None = None
    spoken: bool = False  # every frame of the WAV has been sent


def speech_frames(pcm8k: bytes) -> tuple[list[bytes], list[bool]]:
    """20 ms μ-law frames of ``pcm8k``, and which of them hold speech (by energy)."""
    ulaw = pcm16_to_ulaw(pcm8k)
    frames = [ulaw[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
              for i in range(0, len(ulaw), FRAME_BYTES)] or [SILENCE]
    samples = np.frombuffer(pcm8k, dtype="<i2").astype(np.float64)
    samples = np.pad(samples, (0, len(frames) * FRAME_BYTES - len(samples)))  # 1 byte/sample
    rms = np.sqrt(np.mean(samples.reshape(len(frames), FRAME_BYTES) ** 2, axis=1))
    voiced = rms > max(SPEECH_RMS_FLOOR, rms.max() * SPEECH_RMS_RELATIVE)
    return frames, voiced.tolist() if voiced.any() else [True] * len(frames)


class _Call:
    def __init__(self, ws: ClientConnection, *, call_sid: str, quiet_s: float) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self.quiet_s = quiet_s
        self.playback = _Playback()
        self.greeting = _Slot(None, speech_end_at=time.monotonic())
        self.slots: list[_Slot] = []
        self.current = self.greeting  # the latest turn begun: new answers and clears are its
        self.speeches: list[_Speech] = []
        self.outgoing: deque[tuple[bytes, _Slot | None, int]] = deque()  # frame, turn, index
        self._voiced: list[bool] = []  # per frame of the utterance being spoken
        self.closed = asyncio.Event()
        self.closing = False  # we are hanging up
        self.closed_by_server = False
        self._sequence = 1

    async def send(self, build: Callable[[int], str]) -> None:
        self._sequence += 1
        await self.ws.send(build(self._sequence))

    async def echo(self, marks: list[str]) -> None:
        for name in marks:
            await self.send(lambda n, name=name: tw.inbound_mark_message(
                self.stream_sid, name, sequence_number=n))

    # ---------------------------------------------------------------- background tasks
    async def stream(self) -> None:
        """One media message every 20 ms, and the handset's playback on the same clock."""
        chunk, started = 0, time.monotonic()
        while not self.closed.is_set():
            chunk += 1
            delay = started + chunk * FRAME_S - time.monotonic()
            if delay < -0.2:  # the loop stalled: resynchronise rather than burst
                started, delay = time.monotonic() - chunk * FRAME_S, 0.0
            await asyncio.sleep(max(0.0, delay))
            await self.echo(self.playback.play(FRAME_BYTES, time.monotonic()))
            frame, slot, index = self.outgoing.popleft() if self.outgoing else (SILENCE, None, 0)
            await self.send(lambda n, c=chunk, f=frame: tw.inbound_media_message(
                self.stream_sid, c, (c - 1) * 20, f, sequence_number=n))
            if slot is not None:
                self._sent(slot, index, time.monotonic())

    async def receive(self) -> None:
        try:
            async for text in self.ws:
                now = time.monotonic()
                try:
                    event = tw.parse_outbound(text)
                except tw.TwilioProtocolError as exc:
                    log.warning("call %s: ignoring a bad message from the server: %s",
                                self.call_sid, exc)
                    continue
                if isinstance(event, tw.OutboundMedia):
                    self._on_media(event.payload, now)
                elif isinstance(event, tw.OutboundMark):
                    await self.echo(self.playback.add_mark(self._latest(), event.name))
                else:
                    await self.echo(self._on_clear(now))
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.closed_by_server = True
                log.info("call %s: the server closed the connection", self.call_sid)
            self.closed.set()

    def _latest(self) -> _Speech | None:
        return self.speeches[-1] if self.speeches else None

    def _going_on(self, speech: _Speech | None, now: float) -> bool:
        """Still playing, or stopped less than ``quiet_s`` ago (a pause between sentences)."""
        return speech is not None and not speech.cleared and now < speech.audible_end + self.quiet_s

    def _on_media(self, ulaw: bytes, now: float) -> None:
        audible = bool(ulaw.strip(b"\xff\x7f"))  # both μ-law zeros count as silence
        speech = self._latest()
        if not self._going_on(speech, now):
            # A new answer, to the turn being spoken or just spoken (even if the server decided
            # the caller had finished before the last voiced frame of the file was sent).
            speech = self.current.answer
            # Over a barge-in, what still arrives while the caller is talking is the end of the
            # interrupted answer, never the answer to the interruption.
            talking_over = (self.current.turn is not None and not self.current.spoken
                            and self.current.turn.barge_in_after_s is not None)
            if speech is None and audible and not talking_over:
                speech = self.current.answer = _Speech(started_at=now, audible_end=now)
                self.current.answered_after = self.current.speech_end_at
                self.speeches.append(speech)
        self.playback.add_audio(speech, ulaw, audible)
        if speech is not None and audible:
            speech.audible_end = now + self.playback.pending_bytes / 8000

    def _on_clear(self, now: float) -> list[str]:
        if self.current.clear_at is None:
            self.current.clear_at = now
        marks, cut = self.playback.clear(now)
        latest = self._latest()
        if latest is not None and self._going_on(latest, now):
            cut.add(latest)  # between two sentences: the server dropped the rest
        for speech in cut:
            speech.cleared, speech.audible_end = True, min(speech.audible_end, now)
            speech.ended_at = min(speech.ended_at or now, now)
        return marks

    # ---------------------------------------------------------------- the caller's side
    def answer_done(self, slot: _Slot, now: float) -> bool:
        return slot.answer is not None and not self._going_on(slot.answer, now)

    async def until(self, condition: Callable[[float], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition(now := time.monotonic()):
            if self.closed.is_set() or now >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def wait_to_speak(self, previous: _Slot, turn: CallerTurn | None,
                            answer_timeout_s: float) -> None:
        since = previous.speech_end_at or time.monotonic()
        if not await self.until(lambda now: previous.answer is not None,
                                since + answer_timeout_s - time.monotonic()):
            return
        answer = previous.answer
        if turn is not None and turn.barge_in_after_s is not None and answer is not None:
            at = answer.started_at + turn.barge_in_after_s
            await self.until(lambda now: now >= at, at - time.monotonic() + 0.1)
        else:
            await self.until(lambda now: self.answer_done(previous, now), MAX_ANSWER_S)

    async def speak(self, slot: _Slot, frames: list[bytes], voiced: list[bool]) -> None:
        self.current, self._voiced = slot, voiced
        self.outgoing.extend((frame, slot, i) for i, frame in enumerate(frames))
        await self.until(lambda now: slot.spoken, len(frames) * FRAME_S + 5.0)

    def _sent(self, slot: _Slot, index: int, at: float) -> None:
        if self._voiced[index]:
            slot.speech_start_at = slot.speech_start_at or at
            slot.speech_end_at = at
        slot.spoken = index == len(self._voiced) - 1

    async def type_digits(self, slot: _Slot, digits: str) -> None:
        self.current = slot
        for index, digit in enumerate(digits):
            if index:
                await asyncio.sleep(DTMF_GAP_S)
            await self.send(lambda n, d=digit: tw.dtmf_message(self.stream_sid, d,
                                                                 sequence_number=n))
            slot.speech_end_at = time.monotonic()
            slot.speech_start_at = slot.speech_start_at or slot.speech_end_at

    def result(self) -> CallResult:
        def public(speech: _Speech | None) -> AssistantSpeech | None:
            if speech is None:
                return None
            return AssistantSpeech(speech.started_at, speech.ended_at or speech.started_at,
                                   ulaw_to_pcm16(bytes(speech.played[:speech.heard])),
                                   list(speech.marks), speech.cleared)

        turns = []
        for slot in self.slots:
            assert slot.turn is not None
            latency = (slot.answer.started_at - slot.answered_after
                       if slot.answer is not None and slot.answered_after is not None else None)
            turns.append(TurnResult(slot.turn, slot.speech_end_at, public(slot.answer), latency,
                                    slot.clear_at, slot.speech_start_at))
        return CallResult(self.call_sid, public(self.greeting.answer), turns,
                          ulaw_to_pcm16(bytes(self.playback.recording)),
                          closed_by_server=self.closed_by_server)


async def place_call(url: str, turns: list[CallerTurn], *, caller: str = "+15550100",
                     call_sid: str | None = None, answer_timeout_s: float = 20.0,
                     final_listen_s: float = 6.0, quiet_s: float = 0.8, hang_up: bool = True,
                     abrupt: bool = False) -> CallResult:
    """Dial ``url`` (``ws://host:port/twilio/stream``), wait for the greeting, play ``turns``.

    After the last turn it listens for the answer, at most ``final_listen_s`` after the turn
    ended, then hangs up: ``stop`` and a WebSocket close (``hang_up``), a close without
    ``stop`` (``hang_up=False``), or, with ``abrupt``, a dropped TCP connection (no ``stop``,
    no close handshake). Raises ``CallError`` when the server cannot be reached.
    """
    utterances = {id(t): speech_frames(resample(*read_wav(t.wav), 8000))
                  for t in turns if t.wav is not None}
    call_sid = call_sid or "CA" + secrets.token_hex(16)
    try:
        ws = await websockets.connect(url, open_timeout=10, max_size=2**24)
    except (OSError, TimeoutError, InvalidURI, InvalidHandshake) as exc:
        raise CallError(f"cannot reach {url}: {exc}") from exc
    call = _Call(ws, call_sid=call_sid, quiet_s=quiet_s)
    log.info("call %s: connected to %s", call_sid, url)
    try:
        await ws.send(tw.connected_message())
        await ws.send(tw.start_message(call.stream_sid, call_sid,
                                       custom_parameters={"From": caller}))
    except ConnectionClosed as exc:
        raise CallError(f"{url} closed the connection at once ({exc})") from exc
    tasks = [asyncio.create_task(call.stream()), asyncio.create_task(call.receive())]
    try:
        previous = call.greeting
        for turn in turns:
            await call.wait_to_speak(previous, turn, answer_timeout_s)
            if call.closed.is_set():
                break
            call.slots.append(previous := _Slot(turn))
            log.info("call %s: turn %d: %s", call_sid, len(call.slots), turn.describe())
            if turn.dtmf is not None:
                await call.type_digits(previous, turn.dtmf)
            else:
                await call.speak(previous, *utterances[id(turn)])
        if not turns:
            await call.wait_to_speak(previous, None, answer_timeout_s)
        else:
            end = (previous.speech_end_at or time.monotonic()) + final_listen_s
            await call.until(lambda now: call.answer_done(previous, now) or now >= end,
                             max(0.0, end - time.monotonic()) + 0.1)
    except ConnectionClosed:
        pass  # the server hung up while we were sending; receive() noted it
    finally:
        call.closing = True
        tasks[0].cancel()
        try:
            if abrupt:
                ws.transport.abort()  # a dropped line: no stop, no closing handshake
            else:
                if hang_up:
                    await call.send(lambda n: tw.stop_message(call.stream_sid, call_sid,
                                                              sequence_number=n))
                await ws.close()
        except ConnectionClosed:
            pass
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, ConnectionClosed):
                log.error("call %s: the call loop failed: %r", call_sid, outcome)
    return call.result()


