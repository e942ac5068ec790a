"""``iva call``: a caller simulator that dials a running server over the Twilio protocol.

It plays Twilio and the phone together. Like Twilio it sends ``connected`` and ``start``, then
streams the caller's audio continuously at real-time pace (one 160-byte μ-law ``media`` every
20 ms, digital silence when the caller is quiet), and types keypad digits as ``dtmf``. Like the
phone it plays the assistant's audio from a buffer drained in real time, echoes each ``mark``
when playback reaches it and, on ``clear``, drops the buffer and echoes the pending marks.

A turn speaks a WAV file (any rate, mono or stereo) or types digits. It starts once the
assistant has finished speaking (its audible audio has played out and ``quiet_s`` has passed
with no more; silence a server streams while idle does not count), or with
``barge_in_after_s``, that long after the first audio of the answer being given, to speak over
it. Audio that goes on without a pause or a ``clear`` belongs to the answer being given; new
audio after a pause is the answer to the turn being (or just) spoken. Latency is measured on
the wire: from the caller's end of speech (the last 20 ms frame above a small energy
threshold; trailing silence in the file does not count) to the first audible ``media`` of the
answer. Times are ``time.monotonic()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from telephony.audio import pcm16_to_ulaw, read_wav, resample, ulaw_to_pcm16, write_wav
from telephony.twilio import protocol as tw

log = logging.getLogger("iva.caller")

FRAME_S = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law, what Twilio sends per media message
SILENCE = b"\xff" * FRAME_BYTES  # μ-law digital silence
DTMF_GAP_S = 0.25
SPEECH_RMS_FLOOR = 120.0  # a 20 ms frame below this RMS (about -49 dBFS) is silence...
SPEECH_RMS_RELATIVE = 1 / 30  # ...and so is one 30 dB below the file's loudest frame
MAX_ANSWER_S = 120.0  # an answer still playing after this long is not waited for


class CallError(Exception):
    """The call could not be placed: bad URL, connection refused, handshake rejected."""


@dataclass
class CallerTurn:
    """Speak ``wav`` or type ``dtmf`` digits; ``barge_in_after_s`` speaks over the answer."""

    wav: Path | None = None
    dtmf: str | None = None
    barge_in_after_s: float | None = None

    def __post_init__(self) -> None:
        if (self.wav is None) == (self.dtmf is None):
            raise ValueError("a turn is either a WAV file or DTMF digits")
        if self.dtmf is not None and (not self.dtmf or set(self.dtmf) - tw.DTMF_DIGITS):
            raise ValueError(f"{self.dtmf!r}: DTMF digits are 0-9, *, #, A-D")
        if self.barge_in_after_s is not None and self.barge_in_after_s < 0:
            raise ValueError("barge_in_after_s must be >= 0")

    def describe(self) -> str:
        return f"dtmf:{self.dtmf}" if self.dtmf is not None else str(self.wav)


@dataclass
class AssistantSpeech:
    """One answer as the caller heard it: ``audio_pcm8k`` is what played (clears applied)."""

    started_at: float  # first audible media arrived
    ended_at: float  # its last audio played (or was cleared)
    audio_pcm8k: bytes
    marks: list[str]
    cleared: bool

    @property
    def seconds(self) -> float:
        return len(self.audio_pcm8k) / 16000


@dataclass
class TurnResult:
    turn: CallerTurn
    speech_end_at: float | None
    answer: AssistantSpeech | None
    latency_s: float | None
    clear_received_at: float | None
    speech_start_at: float | None = None


@dataclass
class CallResult:
    call_sid: str
    greeting: AssistantSpeech | None
    turns: list[TurnResult]  # one per turn performed (fewer if the server hung up first)
    assistant_audio_pcm8k: bytes = b""  # everything that played, in order, gaps left out
    closed_by_server: bool = False


# ------------------------------------------------------------------------------ the handset
@dataclass(eq=False)
class _Speech:
    started_at: float
    audible_end: float  # when its audible audio will have played, as far as known yet
    played: bytearray = field(default_factory=bytearray)
    heard: int = 0  # bytes of ``played`` up to its last audible chunk (trailing silence cut)
    marks: list[str] = field(default_factory=list)
    cleared: bool = False
    ended_at: float | None = None


class _Playback:
    """The phone's output buffer: audio and marks in arrival order, drained in real time."""

    def __init__(self) -> None:
        # (speech, audio, audible) or (speech, mark name, None)
        self._queue: deque[tuple[_Speech | None, bytes | str, bool | None]] = deque()
        self.pending_bytes = 0
        self.recording = bytearray()

    def add_audio(self, speech: _Speech | None, ulaw: bytes, audible: bool) -> None:
        self._queue.append((speech, ulaw, audible))
        self.pending_bytes += len(ulaw)

    def add_mark(self, speech: _Speech | None, name: str) -> list[str]:
        """Marks to echo now: this one if nothing is left to play before it."""
        if self._queue:
            self._queue.append((speech, name, None))
            return []
        return [_echoed(speech, name)]

    def play(self, budget: int, now: float) -> list[str]:
        """Play up to ``budget`` bytes; returns the marks reached."""
        echoed: list[str] = []
        while self._queue:
            speech, item, audible = self._queue[0]
            if isinstance(item, str):
                echoed.append(_echoed(speech, item))
            elif budget <= 0:
                break
            else:
                played, rest = item[:budget], item[budget:]
                budget -= len(played)
                self.pending_bytes -= len(played)
                self.recording += played
                if speech is not None:
                    speech.played += played
                    if audible:
                        speech.heard, speech.ended_at = len(speech.played), now + len(played) / 8000
                if rest:
                    self._queue[0] = (speech, rest, audible)
                    break
            self._queue.popleft()
        return echoed

    def clear(self, now: float) -> tuple[list[str], set[_Speech]]:
        """Drop the buffer: (marks to echo at once, speeches that lost audible audio)."""
        marks = [_echoed(s, item) for s, item, _ in self._queue if isinstance(item, str)]
        cut = {s for s, _, audible in self._queue if s is not None and audible}
        self._queue.clear()
        self.pending_bytes = 0
        return marks, cut


def _echoed(speech: _Speech | None, name: str) -> str:
    if speech is not None:
        speech.marks.append(name)
    return name


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
            if speech is None and audible:
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


# ------------------------------------------------------------------------------ CLI
def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("turns", nargs="*", metavar="TURN",
                        help="a WAV file to speak, or dtmf:DIGITS to type (e.g. dtmf:1001#)")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/twilio/stream",
                        help="the server's Media Streams URL (default %(default)s)")
    parser.add_argument("--from", dest="caller", default="+15550100", metavar="NUMBER",
                        help="caller number, sent as the From parameter (default %(default)s)")
    parser.add_argument("--barge-in-after", type=float, metavar="SECONDS",
                        help="speak each WAV turn after the first this long after the answer "
                        "began, over it, instead of waiting for it to end")
    parser.add_argument("--record", type=Path, metavar="PATH.wav",
                        help="write what the assistant said, as played (8 kHz WAV)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="how long to wait for an answer to begin (default %(default)s)")
    parser.add_argument("--final-listen", type=float, default=6.0, metavar="SECONDS",
                        help="after the last turn, listen this long at most (default %(default)s)")
    parser.add_argument("--abrupt", action="store_true",
                        help="hang up by dropping the connection (no stop message)")


def _turns_from(raw: list[str], barge_in_after: float | None) -> list[CallerTurn]:
    turns: list[CallerTurn] = []
    for item in raw:
        if item.startswith("dtmf:"):
            turns.append(CallerTurn(dtmf=item.removeprefix("dtmf:")))
            continue
        if not Path(item).is_file():
            raise ValueError(f"{item}: no such WAV file")
        read_wav(item)  # fail on a bad file before dialling
        spoken_before = any(t.wav is not None for t in turns)
        turns.append(CallerTurn(wav=Path(item),
                                barge_in_after_s=barge_in_after if spoken_before else None))
    return turns


def _summary(result: CallResult) -> dict[str, object]:
    def ms(seconds: float | None) -> int | None:
        return None if seconds is None else round(seconds * 1000)

    def speech(s: AssistantSpeech | None) -> dict[str, object] | None:
        return None if s is None else {"seconds": round(s.seconds, 2), "marks": s.marks,
                                       "cleared": s.cleared}

    return {"call_sid": result.call_sid, "greeting": speech(result.greeting),
            "closed_by_server": result.closed_by_server,
            "turns": [{"turn": n, "sent": t.turn.describe(), "answer": speech(t.answer),
                       "latency_ms": ms(t.latency_s), "clear": t.clear_received_at is not None}
                      for n, t in enumerate(result.turns, 1)]}


async def main_call(args: argparse.Namespace) -> int:
    """``iva call``: 0 when every turn was answered, 1 otherwise, 2 when the call failed."""
    try:
        turns = _turns_from(args.turns, args.barge_in_after)
    except ValueError as exc:  # includes AudioFormatError
        sys.stderr.write(f"iva call: {exc}\n")
        return 2
    try:
        result = await place_call(args.url, turns, caller=args.caller,
                                  answer_timeout_s=args.timeout,
                                  final_listen_s=args.final_listen, abrupt=args.abrupt)
    except CallError as exc:
        sys.stderr.write(f"iva call: {exc}\n")
        return 2
    if args.record:
        try:
            write_wav(args.record, result.assistant_audio_pcm8k, 8000)
        except OSError as exc:
            sys.stderr.write(f"iva call: cannot write {args.record}: {exc.strerror or exc}\n")
            return 2
    answered = len(result.turns) == len(turns) and all(t.answer for t in result.turns)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(_summary(result), indent=2) + "\n")
        return 0 if answered else 1
    greeting = result.greeting
    out.write(f"call {result.call_sid}: greeting "
              f"{f'{greeting.seconds:.1f} s' if greeting else 'not heard'}\n")
    for n, t in enumerate(result.turns, 1):
        answer = f"answer {t.answer.seconds:.1f} s" if t.answer else "NO ANSWER"
        latency = f"{t.latency_s * 1000:.0f} ms" if t.latency_s is not None else "-"
        clear = "yes" if t.clear_received_at is not None else "no"
        out.write(f"turn {n}: sent {t.turn.describe()} -> {answer}, latency {latency}, "
                  f"clear {clear}\n")
    if len(result.turns) < len(turns):
        out.write(f"the server hung up before turn {len(result.turns) + 1}\n")
    if args.record:
        out.write(f"assistant audio written to {args.record}\n")
    return 0 if answered else 1
