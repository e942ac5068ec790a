"""Asterisk's side of a call, for the end-to-end tests: an AudioSocket connection over TCP and a
chan_websocket connection, each streaming the caller's audio in real time (one 20 ms frame every
20 ms, silence between utterances, as a PBX channel does) and keeping what the assistant sent
with its arrival time (the service paces its audio, so arrival is playback)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets

from telephony.asterisk import audiosocket as aus
from telephony.asterisk import chan_websocket as cw
from telephony.audio import read_wav, resample

FRAME_S = 0.02
AUDIBLE_RMS = 200.0  # a 20 ms chunk of the assistant's audio louder than this is speech


def speech_pcm(wav: Path, rate: int) -> bytes:
    return resample(*read_wav(wav), rate)


def _audible(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return bool(len(samples)) and float(np.sqrt(np.mean(samples ** 2))) > AUDIBLE_RMS


@dataclass
class Line:
    """What both kinds of line share: the outgoing frame queue and the heard audio."""

    rate: int
    frame_bytes: int = 0  # of 16-bit PCM per 20 ms
    outgoing: deque[bytes] = field(default_factory=deque)
    heard: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, pcm at rate)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frame_bytes = self.rate * 2 // 50

    async def send_frame(self, pcm: bytes) -> None:  # pragma: no cover - per line
        raise NotImplementedError

    async def stream(self) -> None:
        """One frame every 20 ms on a steady clock: speech when queued, else silence."""
        start, n = time.monotonic(), 0
        silence = bytes(self.frame_bytes)
        try:
            while not self.closed.is_set():
                n += 1
                await asyncio.sleep(max(0.0, start + n * FRAME_S - time.monotonic()))
                await self.send_frame(self.outgoing.popleft() if self.outgoing else silence)
        except (ConnectionError, OSError, websockets.ConnectionClosed):
            self.closed.set()

    async def say(self, wav: Path) -> float:
        """Speak ``wav``; returns when its last frame has gone (the end of speech)."""
        pcm = speech_pcm(wav, self.rate)
        for i in range(0, len(pcm), self.frame_bytes):
            self.outgoing.append(pcm[i:i + self.frame_bytes].ljust(self.frame_bytes, b"\0"))
        while self.outgoing and not self.closed.is_set():
            await asyncio.sleep(0.01)
        return time.monotonic()

    def audible_since(self, t: float) -> float | None:
        return next((at for at, pcm in self.heard if at > t and _audible(pcm)), None)

    async def answer(self, after: float, *, quiet_s: float = 1.5, timeout_s: float = 25.0) -> bytes:
        """The assistant's next answer after ``after``: from its first audible chunk until it
        has been quiet for ``quiet_s``; b"" if none came within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (began := self.audible_since(after)) is None:
            if time.monotonic() > deadline or self.closed.is_set():
                return b""
            await asyncio.sleep(0.05)
        while not self.closed.is_set() and time.monotonic() < began + 60:
            last = max(at for at, pcm in self.heard if _audible(pcm))
            if time.monotonic() - last > quiet_s:
                break
            await asyncio.sleep(0.05)
        last = max(at for at, pcm in self.heard if _audible(pcm))
        return b"".join(pcm for at, pcm in self.heard if began <= at <= last)

    async def wait_closed(self, timeout_s: float = 10.0) -> bool:
        try:
            await asyncio.wait_for(self.closed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self.closed.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@dataclass
class AudioSocketLine(Line):
    """Asterisk's ``AudioSocket(<uuid>,host:port)``: the UUID, then slin at 8 kHz."""

    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    hung_up_by_server: bool = False

    @classmethod
    async def dial(cls, port: int, *, call_id: str | None = None) -> AudioSocketLine:
        line = cls(rate=8000, **({"call_id": call_id} if call_id else {}))
        line.reader, line.writer = await asyncio.open_connection("127.0.0.1", port)
        await line.send(aus.Uuid.from_string(line.call_id))
        line.tasks = [asyncio.create_task(line.stream()), asyncio.create_task(line.receive())]
        return line

    async def send(self, packet: aus.Packet | bytes) -> None:
        assert self.writer is not None
        self.writer.write(packet if isinstance(packet, bytes) else bytes(packet))
        await self.writer.drain()

    async def send_frame(self, pcm: bytes) -> None:
        await self.send(aus.Audio(pcm, 8000))

    async def receive(self) -> None:
        assert self.reader is not None
        parser = aus.AudioSocketParser()
        try:
            while data := await self.reader.read(4096):
                now = time.monotonic()
                for packet in parser.feed(data):
                    if isinstance(packet, aus.Audio):
                        self.heard.append((now, resample(packet.pcm, packet.rate, 8000)))
                    elif isinstance(packet, aus.Hangup):
                        self.hung_up_by_server = True
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()

    async def dtmf(self, digits: str, *, gap_s: float = 0.25) -> None:
        for digit in digits:
            await self.send(aus.Dtmf(digit))
            await asyncio.sleep(gap_s)

    async def hang_up(self) -> None:
        """As app_audiosocket does when the caller hangs up: the socket closes."""
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()
        await self.stop()


@dataclass
class WebSocketLine(Line):
    """Asterisk's ``Dial(WebSocket/<client>/c(<codec>))`` connecting to the service."""

    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    codec: cw.MediaCodec = field(default_factory=lambda: cw.codec_for("ulaw"))
    fmt: cw.ControlFormat = cw.ControlFormat.PLAIN
    ws: websockets.ClientConnection | None = None
    commands: list[tuple[float, cw.CommandMessage]] = field(default_factory=list)
    close_code: int | None = None

    @classmethod
    async def dial(cls, url: str, *, codec: str = "ulaw",
                   fmt: cw.ControlFormat = cw.ControlFormat.PLAIN,
                   call_id: str | None = None) -> WebSocketLine:
        media = cw.codec_for(codec)
        line = cls(rate=media.rate, codec=media, fmt=fmt,
                   **({"call_id": call_id} if call_id else {}))
        line.ws = await websockets.connect(url, subprotocols=["media"], max_size=2 ** 24)
        await line.ws.send(cw.media_start_message(
            line.call_id, f"WebSocket/iva-{line.call_id[:8]}", format=media.name,
            optimal_frame_size=media.frame_bytes(20), channel_id=f"ws-{line.call_id[:8]}",
            fmt=fmt))
        line.tasks = [asyncio.create_task(line.stream()), asyncio.create_task(line.receive())]
        return line

    async def send_frame(self, pcm: bytes) -> None:
        assert self.ws is not None
        await self.ws.send(self.codec.encode(pcm))

    async def receive(self) -> None:
        assert self.ws is not None
        try:
            async for message in self.ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self.heard.append((now, self.codec.decode(message)))
                    continue
                command = cw.parse_command(message)
                self.commands.append((now, command))
                if command.command is cw.Command.MARK_MEDIA and command.correlation_id:
                    # Arrival is playback here: the mark has reached the head of the queue.
                    await self.ws.send(cw.mark_processed_message(command.correlation_id,
                                                                 fmt=self.fmt))
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.close_code = self.ws.close_code
            self.closed.set()

    def received(self, command: cw.Command) -> list[float]:
        return [at for at, message in self.commands if message.command is command]

    async def dtmf(self, digits: str, *, gap_s: float = 0.25) -> None:
        assert self.ws is not None
        for digit in digits:
            await self.ws.send(cw.dtmf_end_message(digit, fmt=self.fmt))
            await asyncio.sleep(gap_s)

    async def send_text(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send(text)

    async def hang_up(self) -> None:
        """As chan_websocket does when the caller hangs up: the WebSocket closes."""
        if self.ws is not None:
            await self.ws.close()
        await self.stop()
