"""The benchmark's callers on the bridges other than Twilio: Asterisk AudioSocket (TCP),
Asterisk chan_websocket (WS /asterisk/media), direct SIP with RTP (UDP) and WebRTC (aiortc).

Every caller is a ``tests.e2e.asterisk_lines.Line``: one 20 ms frame sent every 20 ms on a
steady clock (speech when queued, silence otherwise), and the assistant's audio kept with its
arrival time. The service paces its output in real time, so arrival is playback. The measures
follow the Twilio caller's (``voice.caller``) so that the bridges compare:

* end of speech: when the last *voiced* 20 ms frame of the question went out (a frame is
  voiced by the Twilio caller's energy rule, ``SPEECH_RMS_FLOOR``/``SPEECH_RMS_RELATIVE``);
* answer: the first audible chunk received after it (``asterisk_lines.AUDIBLE_RMS``);
* barge-in stop: from the interruption's first voiced frame to chan_websocket's
  ``FLUSH_MEDIA`` (the analogue of Twilio's ``clear``), or, on bridges with no such message,
  to the last audible audio of the interrupted answer received while the caller talks.

WebRTC is timed on the wire too: an answer begins with the first RTP packet whose Opus payload
is more than digital silence (the Twilio caller's rule: any sound). What aiortc then decodes
comes 80-180 ms later on this machine (its receiver holds 4 packets before it hands out a
frame), which a browser's adaptive jitter buffer would mostly not add.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from telephony.asterisk import chan_websocket as cw
from telephony.webrtc.candidates import offer_host_addresses
from tests.e2e.asterisk_lines import AudioSocketLine, Line, WebSocketLine, _audible, speech_pcm
from tests.e2e.conftest import Server
from tests.e2e.rtp_line import RtpLine
from tests.e2e.test_sip_calls import call_of
from voice.caller.model import SPEECH_RMS_FLOOR, SPEECH_RMS_RELATIVE

BRIDGES = ("twilio", "audiosocket", "websocket", "sip", "webrtc")
MEASURES = ("client_latency_ms", "server_latency_ms", "endpoint_ms", "asr_ms", "route_ms",
            "tts_first_ms", "barge_in_stop_ms")
Figures = dict[str, list[float]]

OPUS_SILENCE_BYTES = 10  # an Opus packet of digital silence is 3 bytes; any sound, 100 or more
ANSWER_TIMEOUT_S = 20.0  # as the Twilio caller waits for an answer
LISTEN_S = 4.0  # after the end of speech, then hang up (the Twilio caller's final_listen_s)
BARGE_IN_AFTER_S = 1.0  # into the answer, as the Twilio barge-in calls do


def new_figures() -> Figures:
    return {key: [] for key in MEASURES}


def add_record_figures(record: dict, figures: Figures) -> None:
    """The server's figures of one call record: per caller turn the end-of-turn wait, ASR and
    routing times; per answer (not the greeting) ``latency_ms`` and TTS time to first audio."""
    for turn in record.get("turns", []):
        if turn["speaker"] == "caller":
            for key in ("endpoint_ms", "asr_ms", "route_ms"):
                if turn.get(key) is not None:
                    figures[key].append(float(turn[key]))
        elif turn["speaker"] == "assistant" and turn.get("intent") != "greeting":
            if turn.get("latency_ms") is not None:
                figures["server_latency_ms"].append(float(turn["latency_ms"]))
            if turn.get("tts_first_ms") is not None:
                figures["tts_first_ms"].append(float(turn["tts_first_ms"]))


# ------------------------------------------------------------------------------ speaking
class VoicedFrame(bytes):
    """A 20 ms frame of the caller's speech that counts as speech (not a pause)."""


def voiced_frames(pcm: bytes, frame_bytes: int) -> list[bytes]:
    """``pcm`` cut into 20 ms frames (the last padded), the voiced ones as ``VoicedFrame``:
    the Twilio caller's rule, RMS over ``SPEECH_RMS_FLOOR`` and within 30 dB of the loudest."""
    frames = [pcm[i:i + frame_bytes].ljust(frame_bytes, b"\0")
              for i in range(0, len(pcm), frame_bytes)]
    if not frames:
        return []
    samples = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float64)
    rms = np.sqrt(np.mean(samples.reshape(len(frames), -1) ** 2, axis=1))
    voiced = rms > max(SPEECH_RMS_FLOOR, rms.max() * SPEECH_RMS_RELATIVE)
    if not voiced.any():
        voiced[:] = True
    return [VoicedFrame(f) if v else f for f, v in zip(frames, voiced, strict=True)]


@dataclass
class SpeechClock:
    """Mixed into a line: when each voiced frame went out (``Line.say`` only tells when the
    queue emptied, up to 10 ms late and with the file's trailing silence)."""

    voiced_sent: list[float] = field(default_factory=list)

    async def send_frame(self, pcm: bytes) -> None:
        await super().send_frame(pcm)  # type: ignore[misc]
        if isinstance(pcm, VoicedFrame):
            self.voiced_sent.append(time.monotonic())


@dataclass
class TimedAudioSocketLine(SpeechClock, AudioSocketLine):
    pass


@dataclass
class TimedWebSocketLine(SpeechClock, WebSocketLine):
    pass


@dataclass
class TimedRtpLine(SpeechClock, RtpLine):
    pass


async def speak(line: Line, wav: Path) -> tuple[float, float]:
    """Say ``wav`` on ``line``: (first, last) voiced frame sent."""
    assert isinstance(line, SpeechClock)
    before = len(line.voiced_sent)
    line.outgoing.extend(voiced_frames(speech_pcm(wav, line.rate), line.frame_bytes))
    while line.outgoing and not line.closed.is_set():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.03)  # the last frame's send_frame has returned
    sent = line.voiced_sent[before:]
    if not sent:
        raise ConnectionError("the line closed before the caller had spoken")
    return sent[0], sent[-1]


async def first_audible(line: Line, after: float, timeout_s: float) -> float | None:
    deadline = time.monotonic() + timeout_s
    while (began := line.audible_since(after)) is None:
        if time.monotonic() > deadline or line.closed.is_set():
            return None
        await asyncio.sleep(0.02)
    return began


async def heard_out(line: Line, after: float, *, quiet_s: float = 1.5) -> bool:
    """Until the assistant has spoken after ``after`` and then been quiet for ``quiet_s``
    (``Line.answer``, with the audibility of ``arrivals``); False if it never spoke."""
    if await first_audible(line, after, ANSWER_TIMEOUT_S) is None:
        return False
    while not line.closed.is_set():
        last = max(at for at, audible in arrivals(line) if audible)
        if time.monotonic() - last > quiet_s:
            break
        await asyncio.sleep(0.05)
    return True


# ------------------------------------------------------------------------------ WebRTC
class LineTrack(MediaStreamTrack):
    """The caller's microphone: the frames its line hands over, as aiortc pulls them (the
    line's clock paces them, so a frame goes out on the wire as it is handed over)."""

    kind = "audio"

    def __init__(self, rate: int) -> None:
        super().__init__()
        self._rate = rate
        self._frames: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10)
        self._pts = 0

    def push(self, pcm: bytes) -> None:
        if self._frames.full():  # not connected yet, or aiortc has stalled: keep it current
            self._frames.get_nowait()
        self._frames.put_nowait(pcm)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pcm = await self._frames.get()
        frame = AudioFrame.from_ndarray(np.frombuffer(pcm, dtype="<i2").reshape(1, -1),
                                        format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self._rate)
        self._pts += len(pcm) // 2
        return frame


@dataclass
class WebRtcLine(Line):
    """A browser's side of a call, played by aiortc: POST /call/offer, Opus both ways, the
    ``iva`` data channel for the hang-up."""

    call_id: str = ""
    pc: RTCPeerConnection | None = None
    track: LineTrack | None = None
    channel: object = None
    packets: list[tuple[float, int]] = field(default_factory=list)  # (arrival, Opus bytes)

    @classmethod
    async def dial(cls, base_url: str, *, connect_timeout_s: float = 15.0) -> WebRtcLine:
        offer_host_addresses(["127.0.0.1"])  # as the server (IVA_WEBRTC_HOST_ADDRESSES)
        line = cls(rate=16_000)
        line.pc = pc = RTCPeerConnection()
        line.track = LineTrack(line.rate)
        pc.addTrack(line.track)
        line.channel = pc.createDataChannel("iva")
        line._note_packets(pc.getTransceivers()[0].receiver)
        connected = asyncio.Event()

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                line.tasks.append(asyncio.create_task(line.receive(track)))

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                connected.set()
            elif pc.connectionState in ("failed", "closed"):
                line.closed.set()

        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(timeout=20) as client:
            reply = await client.post(base_url + "/call/offer", json={
                "sdp": pc.localDescription.sdp, "type": pc.localDescription.type})
        if reply.status_code != 200:
            await pc.close()
            raise ConnectionError(f"POST /call/offer: {reply.status_code} {reply.text[:200]}")
        answer = reply.json()
        line.call_id = answer["call_id"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"],
                                                            type=answer["type"]))
        try:
            await asyncio.wait_for(connected.wait(), connect_timeout_s)
        except TimeoutError:
            await pc.close()
            raise ConnectionError(f"WebRTC call {line.call_id}: not connected within "
                                  f"{connect_timeout_s:g} s") from None
        line.tasks.append(asyncio.create_task(line.stream()))
        return line

    def _note_packets(self, receiver: object) -> None:
        """Keep each RTP packet's arrival and payload size, before aiortc's jitter buffer."""
        handle = receiver._handle_rtp_packet  # type: ignore[attr-defined]

        async def noted(packet: object, arrival_time_ms: int) -> None:
            self.packets.append((time.monotonic(), len(packet.payload)))  # type: ignore[attr-defined]
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = noted  # type: ignore[attr-defined]

    def audible_since(self, t: float) -> float | None:
        """On the wire: the first packet after ``t`` that carries sound."""
        return next((at for at, size in self.packets if at > t and size > OPUS_SILENCE_BYTES),
                    None)

    async def send_frame(self, pcm: bytes) -> None:
        assert self.track is not None
        self.track.push(pcm)

    async def receive(self, track: MediaStreamTrack) -> None:
        resampler = AudioResampler(format="s16", layout="mono", rate=self.rate)
        try:
            while not self.closed.is_set():
                frame = await track.recv()
                now = time.monotonic()
                pcm = b"".join(bytes(f.to_ndarray().tobytes()) for f in resampler.resample(frame))
                if pcm:
                    self.heard.append((now, pcm))
        except MediaStreamError:
            self.closed.set()

    async def hang_up(self) -> None:
        """As the call page does: ``{"type": "hangup"}`` on the data channel, then close."""
        channel = self.channel
        if channel is not None and getattr(channel, "readyState", "") == "open":
            channel.send(json.dumps({"type": "hangup"}))  # type: ignore[attr-defined]
            await asyncio.sleep(0.2)
        await self.stop()
        if self.pc is not None:
            await self.pc.close()


@dataclass
class TimedWebRtcLine(SpeechClock, WebRtcLine):
    pass


# ------------------------------------------------------------------------------ the calls
@dataclass
class Target:
    """The server under test and the ports of its other listeners."""

    server: Server
    audiosocket_port: int = 0
    sip_port: int = 0

    @property
    def media_url(self) -> str:
        return self.server.base_url.replace("http://", "ws://") + "/asterisk/media"


async def dial(bridge: str, target: Target) -> Line:
    if bridge == "audiosocket":
        return await TimedAudioSocketLine.dial(target.audiosocket_port)
    if bridge == "websocket":
        return await TimedWebSocketLine.dial(target.media_url)
    if bridge == "sip":
        return await TimedRtpLine.dial(target.sip_port)
    if bridge == "webrtc":
        return await TimedWebRtcLine.dial(target.server.base_url)
    raise ValueError(f"no line for bridge {bridge!r}")


def record_of(bridge: str, target: Target, line: Line) -> dict:
    """The ended call record of ``line``'s call."""
    if bridge == "sip":
        assert isinstance(line, RtpLine)
        return call_of(target.server, line.user)
    return target.server.call_record(line.call_id, wait_s=10.0)  # type: ignore[attr-defined]


async def _on_line(bridge: str, target: Target,
                   body: Callable[[Line], Awaitable[None]]) -> Line:
    """Dial, wait for the greeting to end, run ``body``, hang up."""
    line = await dial(bridge, target)
    try:
        if not await heard_out(line, after=0.0):
            raise ConnectionError(f"{bridge}: no greeting")
        await body(line)
    finally:
        await line.hang_up()  # type: ignore[attr-defined]
    return line


async def question_call(bridge: str, target: Target, wav: Path, figures: Figures) -> float | None:
    """One question: the caller-measured latency (None: no answer), and the record's figures
    added to ``figures``."""
    latency: list[float] = []

    async def ask(line: Line) -> None:
        _, ended = await speak(line, wav)
        began = await first_audible(line, ended, ANSWER_TIMEOUT_S)
        if began is not None:
            latency.append((began - ended) * 1000)
            await asyncio.sleep(max(0.0, ended + LISTEN_S - time.monotonic()))
            if isinstance(line, WebRtcLine) and (decoded := Line.audible_since(line, ended)):
                sys.stderr.write(f"webrtc: audible after decoding {(decoded - began) * 1000:.0f}"
                                 " ms later than on the wire\n")

    line = await _on_line(bridge, target, ask)
    add_record_figures(record_of(bridge, target, line), figures)
    if latency:
        figures["client_latency_ms"].append(latency[0])
    return latency[0] if latency else None


def arrivals(line: Line) -> list[tuple[float, bool]]:
    """What ``line`` received: (arrival, audible), on the wire for WebRTC."""
    if isinstance(line, WebRtcLine):
        return [(at, size > OPUS_SILENCE_BYTES) for at, size in line.packets]
    return [(at, _audible(pcm)) for at, pcm in line.heard]


def stop_time(received: list[tuple[float, bool]], onset: float, ended: float) -> float | None:
    """When the interrupted answer stopped: its last audible audio received between the
    interruption's onset and end; None if none came after the onset or it never stopped."""
    during = [at for at, audible in received if onset < at <= ended and audible]
    if not during or ended - during[-1] < 0.1:
        return None
    return during[-1]


async def barge_in_call(bridge: str, target: Target, question: Path,
                        interruption: Path) -> float | None:
    """Ask, speak over the answer after ``BARGE_IN_AFTER_S``: ms from the interruption's first
    voiced frame until the answer stopped (see the module docstring); None if it did not."""
    stopped: list[float] = []

    async def interrupt(line: Line) -> None:
        _, ended = await speak(line, question)
        began = await first_audible(line, ended, ANSWER_TIMEOUT_S)
        if began is None:
            return
        await asyncio.sleep(max(0.0, began + BARGE_IN_AFTER_S - time.monotonic()))
        onset, over = await speak(line, interruption)
        if isinstance(line, WebSocketLine):
            flushes = [at for at in line.received(cw.Command.FLUSH_MEDIA) if at > onset]
            at = flushes[0] if flushes else None
        else:
            at = stop_time(arrivals(line), onset, over)
        if at is not None:
            stopped.append((at - onset) * 1000)
        await asyncio.sleep(1.0)

    await _on_line(bridge, target, interrupt)
    return stopped[0] if stopped else None


async def run_bridge(bridge: str, target: Target, calls: list[Path],
                     barge_ins: list[tuple[Path, Path]]) -> tuple[Figures, list[str]]:
    """Every question call, then every barge-in call, on ``bridge``: (figures, failures)."""
    figures, failures = new_figures(), []
    for i, wav in enumerate(calls):
        try:
            latency = await question_call(bridge, target, wav, figures)
        except Exception as exc:  # one failed call is reported, not the end of the run
            failures.append(f"call {i + 1}: {type(exc).__name__}: {exc}")
            sys.stderr.write(f"{bridge} call {i + 1}/{len(calls)}: FAILED {exc!r}\n")
            continue
        shown = "no answer" if latency is None else f"{latency:.0f} ms"
        sys.stderr.write(f"{bridge} call {i + 1}/{len(calls)}: {shown}\n")
    for i, (question, interruption) in enumerate(barge_ins):
        try:
            stop = await barge_in_call(bridge, target, question, interruption)
        except Exception as exc:  # one failed call is reported, not the end of the run
            failures.append(f"barge-in {i + 1}: {type(exc).__name__}: {exc}")
            sys.stderr.write(f"{bridge} barge-in {i + 1}/{len(barge_ins)}: FAILED {exc!r}\n")
            continue
        if stop is not None:
            figures["barge_in_stop_ms"].append(stop)
        sys.stderr.write(f"{bridge} barge-in {i + 1}/{len(barge_ins)}: "
                         f"{'MISSING' if stop is None else f'{stop:.0f} ms'}\n")
    return figures, failures
