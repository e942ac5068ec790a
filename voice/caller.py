"""``iva call``: a caller simulator that dials a running server over the Twilio protocol.

It behaves like Twilio plus a phone: it streams the caller's audio continuously in real time
(20 ms μ-law chunks, digital silence between turns), plays the assistant's audio on a
simulated handset (a buffer drained in real time), echoes each ``mark`` when playback reaches
it, and on ``clear`` empties the buffer and echoes the pending marks at once, as Twilio does.

A turn speaks a WAV file (any rate) or types keypad digits. By default it starts once the
assistant has finished speaking; with ``barge_in_after_s`` it starts that long after the
assistant's answer began, to test interruption. Latency is measured on the wire: from the end
of the caller's speech (trailing silence in the file does not count) to the first audio of the
answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed

from telephony.audio import pcm16_to_ulaw, read_wav, resample, ulaw_to_pcm16, write_wav
from telephony.twilio import protocol as tw

log = logging.getLogger("iva.caller")

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
SILENCE = b"\xff" * FRAME_BYTES
_SPEECH_RMS = 300  # a 20 ms frame louder than this (16-bit) counts as speech


@dataclass
class CallerTurn:
    wav: Path | None = None
    dtmf: str | None = None
    barge_in_after_s: float | None = None

    def describe(self) -> str:
        return f"keypad {self.dtmf}" if self.dtmf else str(self.wav)


@dataclass
class AssistantSpeech:
    started_at: float
    ended_at: float | None = None
    audio_pcm8k: bytearray = field(default_factory=bytearray)
    marks: list[str] = field(default_factory=list)
    cleared: bool = False

    @property
    def seconds(self) -> float:
        return len(self.audio_pcm8k) / 16000


@dataclass
class TurnResult:
    turn: CallerTurn
    speech_start_at: float | None = None
    speech_end_at: float | None = None
    answer: AssistantSpeech | None = None
    latency_s: float | None = None
    clear_received_at: float | None = None


@dataclass
class CallResult:
    call_sid: str
    greeting: AssistantSpeech | None
    turns: list[TurnResult]
    assistant_audio_pcm8k: bytearray = field(default_factory=bytearray)


class _Handset:
    """Playback of what the server sends: a queue of audio and marks drained in real time."""

    def __init__(self) -> None:
        self.queue: list[bytes | str] = []  # μ-law chunks and mark names, in order
        self.speeches: list[AssistantSpeech] = []
        self.current: AssistantSpeech | None = None
        self.last_audio_at = 0.0
        self.recording = bytearray()
        self.first_audio_after: list[tuple[float, TurnResult]] = []  # waiting for an answer
        self.clear_waiters: list[TurnResult] = []

    @property
    def playing(self) -> bool:
        return any(isinstance(item, bytes) for item in self.queue)

    def received(self, event: tw.OutboundEvent, now: float) -> list[str]:
        """Returns the marks to echo at once."""
        if isinstance(event, tw.OutboundMedia):
            if self.current is None or self.current.ended_at is not None:
                self.current = AssistantSpeech(started_at=now)
                self.speeches.append(self.current)
                for waiting_since, result in list(self.first_audio_after):
                    if now >= waiting_since:
                        result.answer = self.current
                        if result.speech_end_at is not None:
                            result.latency_s = now - result.speech_end_at
                        self.first_audio_after.remove((waiting_since, result))
            self.queue.append(event.payload)
            self.last_audio_at = now
            return []
        if isinstance(event, tw.OutboundMark):
            if self.playing:
                self.queue.append(event.name)
                return []
            if self.current is not None:
                self.current.marks.append(event.name)
            return [event.name]
        # clear: drop what is buffered, echo the pending marks
        pending = [item for item in self.queue if isinstance(item, str)]
        self.queue.clear()
        if self.current is not None:
            self.current.cleared = True
            self.current.ended_at = now
        for result in self.clear_waiters:
            if result.clear_received_at is None:
                result.clear_received_at = now
        return pending

    def play(self, now: float, budget_bytes: int) -> list[str]:
        """Play ``budget_bytes`` of audio; returns marks reached."""
        echoed: list[str] = []
        while self.queue and (budget_bytes > 0 or isinstance(self.queue[0], str)):
            item = self.queue[0]
            if isinstance(item, str):
                echoed.append(item)
                if self.current is not None:
                    self.current.marks.append(item)
                self.queue.pop(0)
                continue
            take = item[:budget_bytes]
            pcm = ulaw_to_pcm16(take)
            self.recording.extend(pcm)
            if self.current is not None:
                self.current.audio_pcm8k.extend(pcm)
            budget_bytes -= len(take)
            if len(take) < len(item):
                self.queue[0] = item[len(take):]
            else:
                self.queue.pop(0)
        if not self.playing and self.current is not None and self.current.ended_at is None:
            self.current.ended_at = now
        return echoed

    def finished_speaking(self, now: float, quiet_s: float) -> bool:
        return (self.current is not None and not self.playing
                and now - self.last_audio_at >= quiet_s)


def _speech_bounds(pcm8k: bytes) -> tuple[int, int]:
    """First and last 20 ms frame holding speech (by energy)."""
    samples = np.frombuffer(pcm8k, dtype=np.int16).astype(np.float64)
    frames = len(samples) // FRAME_BYTES
    if frames == 0:
        return 0, 0
    rms = np.sqrt(np.mean(samples[: frames * FRAME_BYTES].reshape(frames, FRAME_BYTES) ** 2, axis=1))
    loud = np.nonzero(rms > _SPEECH_RMS)[0]
    if len(loud) == 0:
        return 0, frames
    return int(loud[0]), int(loud[-1]) + 1


async def place_call(url: str, turns: list[CallerTurn], *, caller: str = "+15550100",
                     call_sid: str | None = None, answer_timeout_s: float = 20.0,
                     final_listen_s: float = 6.0, quiet_s: float = 0.8, hang_up: bool = True,
                     abrupt: bool = False) -> CallResult:
    """Dial ``url`` (``ws://host:port/twilio/stream``) and play ``turns``; see the module doc."""
    call_sid = call_sid or "CA" + secrets.token_hex(16)
    stream_sid = "MZ" + secrets.token_hex(16)
    handset = _Handset()
    results = [TurnResult(turn) for turn in turns]
    greeting: AssistantSpeech | None = None
    ws = await websockets.connect(url, max_size=2**22, open_timeout=10)
    try:
        await ws.send(tw.connected_message())
        await ws.send(tw.start_message(stream_sid, call_sid, custom_parameters={"From": caller}))
        outbox: asyncio.Queue[bytes | str] = asyncio.Queue()  # audio frames or DTMF digits

        async def receive() -> None:
            async for message in ws:
                now = time.monotonic()
                event = tw.parse_outbound(message)
                for name in handset.received(event, now):
                    await ws.send(tw.inbound_mark_message(stream_sid, name))

        async def stream() -> None:
            chunk = 0
            next_at = time.monotonic()
            while True:
                item = SILENCE if outbox.empty() else outbox.get_nowait()
                if isinstance(item, str):
                    await ws.send(tw.dtmf_message(stream_sid, item))
                    continue
                chunk += 1
                await ws.send(tw.inbound_media_message(stream_sid, chunk, chunk * FRAME_MS, item))
                for name in handset.play(time.monotonic(), FRAME_BYTES):
                    await ws.send(tw.inbound_mark_message(stream_sid, name))
                next_at += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        receiver = asyncio.create_task(receive())
        streamer = asyncio.create_task(stream())
        try:
            await _wait_for(lambda: handset.finished_speaking(time.monotonic(), quiet_s),
                            answer_timeout_s, receiver)
            greeting = handset.speeches[0] if handset.speeches else None
            previous: TurnResult | None = None
            for result in results:
                await _play_turn(result, previous, handset, outbox, quiet_s, answer_timeout_s,
                                 receiver)
                previous = result
            await _wait_for(lambda: bool(handset.speeches) and handset.finished_speaking(
                time.monotonic(), quiet_s) and (results == [] or results[-1].answer is not None),
                final_listen_s, receiver)
            if hang_up and not abrupt:
                await ws.send(tw.stop_message(stream_sid, call_sid))
        finally:
            streamer.cancel()
            receiver.cancel()
            await asyncio.gather(streamer, receiver, return_exceptions=True)
            if abrupt:
                ws.transport.abort()  # a dropped line: no stop, no close handshake
                await asyncio.sleep(0.05)  # let the loop actually drop the socket
    finally:
        if not abrupt:
            await ws.close()
    return CallResult(call_sid, greeting, results, handset.recording)


async def _wait_for(condition, timeout_s: float, receiver: asyncio.Task[None]) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if receiver.done():
            exc = receiver.exception()
            if exc is not None and not isinstance(exc, ConnectionClosed):
                raise exc
            return False
        if condition():
            return True
        await asyncio.sleep(0.02)
    return False


async def _play_turn(result: TurnResult, previous: TurnResult | None, handset: _Handset,
                     outbox: asyncio.Queue[bytes | str], quiet_s: float, timeout_s: float,
                     receiver: asyncio.Task[None]) -> None:
    turn = result.turn
    if previous is not None:
        await _wait_for(lambda: previous.answer is not None, timeout_s, receiver)
    if turn.barge_in_after_s is not None:
        # Speak over the answer: wait for it to start, then for the offset.
        await _wait_for(lambda: handset.current is not None and handset.playing, timeout_s, receiver)
        started = handset.current.started_at if handset.current else time.monotonic()
        await asyncio.sleep(max(0.0, started + turn.barge_in_after_s - time.monotonic()))
        handset.clear_waiters.append(result)
    else:
        await _wait_for(lambda: handset.finished_speaking(time.monotonic(), quiet_s), timeout_s,
                        receiver)
    if turn.dtmf:
        result.speech_start_at = time.monotonic()
        for n, digit in enumerate(turn.dtmf, 1):
            if n == len(turn.dtmf):
                result.speech_end_at = time.monotonic()
                handset.first_audio_after.append((result.speech_end_at, result))
            await outbox.put(digit)
            await asyncio.sleep(0.25)
    else:
        pcm, rate = read_wav(turn.wav) if turn.wav else (b"", 8000)
        pcm8k = resample(pcm, rate, 8000)
        ulaw = pcm16_to_ulaw(pcm8k)
        first, last = _speech_bounds(pcm8k)
        frames = [ulaw[i:i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
                  for i in range(0, len(ulaw), FRAME_BYTES)]
        enqueued_at = time.monotonic() + outbox.qsize() * FRAME_MS / 1000
        for frame in frames:
            await outbox.put(frame)
        # The streamer sends one frame per 20 ms from now on: speech timing follows.
        result.speech_start_at = enqueued_at + first * FRAME_MS / 1000
        result.speech_end_at = enqueued_at + last * FRAME_MS / 1000
        handset.first_audio_after.append((result.speech_end_at, result))
        await asyncio.sleep(max(0.0, enqueued_at + len(frames) * FRAME_MS / 1000 - time.monotonic()))
    if turn.barge_in_after_s is not None:
        # An interruption is answered after the clear; give it time to arrive.
        await _wait_for(lambda: result.answer is not None, timeout_s / 2, receiver)


# ------------------------------------------------------------------------------ CLI
def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("turns", nargs="*", metavar="TURN",
                        help="a WAV file to speak, or dtmf:DIGITS to type (e.g. dtmf:1001#)")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/twilio/stream",
                        help="the server's Media Streams URL (default %(default)s)")
    parser.add_argument("--from", dest="caller", default="+15550100",
                        help="caller ID sent as the From parameter (default %(default)s)")
    parser.add_argument("--barge-in-after", type=float, metavar="SECONDS",
                        help="speak each WAV turn after the first this long after the answer "
                        "starts, over it, instead of waiting for it to end")
    parser.add_argument("--record", type=Path, metavar="PATH.wav",
                        help="write everything the assistant said (8 kHz WAV)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds to wait for an answer (default %(default)s)")


def _parse_turns(raw: list[str], barge_in_after: float | None) -> list[CallerTurn]:
    turns: list[CallerTurn] = []
    for item in raw:
        if item.startswith("dtmf:"):
            digits = item[5:]
            if not digits or any(d not in tw.DTMF_DIGITS for d in digits):
                raise ValueError(f"{item!r}: DTMF digits are 0-9 * # A-D")
            turns.append(CallerTurn(dtmf=digits))
        else:
            path = Path(item)
            if not path.is_file():
                raise ValueError(f"{item!r}: no such WAV file")
            spoken = sum(1 for t in turns if t.wav)
            turns.append(CallerTurn(wav=path, barge_in_after_s=barge_in_after if spoken else None))
    return turns


async def main_call(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        turns = _parse_turns(args.turns, args.barge_in_after)
    except ValueError as exc:
        sys.stderr.write(f"iva call: {exc}\n")
        return 2
    try:
        result = await place_call(args.url, turns, caller=args.caller,
                                  answer_timeout_s=args.timeout)
    except (OSError, websockets.InvalidURI, websockets.InvalidHandshake, TimeoutError) as exc:
        sys.stderr.write(f"iva call: cannot reach {args.url}: {exc}\n")
        return 2
    except ConnectionClosed as exc:
        sys.stderr.write(f"iva call: the server closed the call: {exc}\n")
        return 2
    if args.record:
        write_wav(args.record, bytes(result.assistant_audio_pcm8k), 8000)
    answered = all(t.answer is not None for t in result.turns)
    if args.json:
        out.write(json.dumps({
            "call_sid": result.call_sid,
            "greeting_s": round(result.greeting.seconds, 2) if result.greeting else None,
            "turns": [{"sent": t.turn.describe(),
                       "answer_s": round(t.answer.seconds, 2) if t.answer else None,
                       "latency_ms": round(t.latency_s * 1000) if t.latency_s is not None else None,
                       "clear": t.clear_received_at is not None} for t in result.turns],
        }, indent=2) + "\n")
        return 0 if answered else 1
    out.write(f"call {result.call_sid}\n")
    if result.greeting:
        out.write(f"  greeting: {result.greeting.seconds:.1f} s of speech\n")
    else:
        out.write("  greeting: none heard\n")
    for n, t in enumerate(result.turns, 1):
        answer = f"{t.answer.seconds:.1f} s answer" if t.answer else "NO ANSWER"
        latency = f"{t.latency_s * 1000:.0f} ms" if t.latency_s is not None else "-"
        clear = ", assistant interrupted (clear)" if t.clear_received_at else ""
        out.write(f"  turn {n}: {t.turn.describe()} → {answer}, latency {latency}{clear}\n")
    if args.record:
        out.write(f"  assistant audio written to {args.record}\n")
    out.write(f"  record: GET /api/calls/{result.call_sid}\n")
    return 0 if answered else 1
