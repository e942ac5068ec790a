"""The media side of a warm SIP transfer: brief the agent, then relay caller ⇄ agent audio.

After the agent's phone has answered our INVITE, :class:`MediaBridge`:

1. speaks the briefing to the agent alone (``brief``): who is calling, about what, why the
   transfer; text from the handoff summary (:func:`briefing_text`), speech from a ``Speaker``
   callable (piper in the service), sent as 20 ms G.711 packets in real time. The caller,
   still with the assistant, hears hold tones meanwhile;
2. relays audio both ways (``run``): each 8 kHz PCM frame received on one leg is sent on
   the other, keypad digits too (RFC 4733 on both sides). Each leg decodes and encodes its own
   negotiated codec, so a PCMU caller and a PCMA agent are transcoded on the way. Each direction is cut into utterances (``TrackSegmenter``, the same as a Twilio call
   followed after transfer) and transcribed into the call record as ``caller`` and ``agent``
   turns through a ``MonitorSink`` (``voice.engine.ConversationEngine`` is one);
3. stops when either leg ends (its ``receive`` returns None) or when told (``stop``), and says
   which: the caller's control then hangs up the other leg (``telephony.sip.transfer``).

No SIP here and no sockets: a leg is anything with ``receive`` and ``send`` of 8 kHz PCM
(``AudioLeg``): ``telephony.rtp.session.RtpSession`` in the service, a fake in the tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, Protocol

from telephony.audio import Resampler, resample
from telephony.twilio.monitor import MonitorSink, TrackSegmenter, Utterance

__all__ = ["AudioLeg", "LegClosedError", "MediaBridge", "Speaker", "briefing_text",
           "threaded_speaker"]

log = logging.getLogger("iva.sip.bridge")

RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 160 samples, one RTP packet

Speaker = Callable[[str], Awaitable[tuple[bytes, int]]]
"""Text → (16-bit mono PCM, its sample rate)."""


class AudioLeg(Protocol):
    """One side of the bridge, as ``RtpSession`` is: decoded audio in and out."""

    async def receive(self) -> bytes | str | None:
        """The peer's next 8 kHz 16-bit PCM (in order, after the jitter buffer), or a message
        (``"start"``, ``"dtmf:5"``); None once the leg has ended (hung up, or closed)."""
        ...

    async def send(self, data: bytes) -> None:
        """8 kHz 16-bit PCM to the peer, encoded in the leg's codec."""
        ...


class LegClosedError(Exception):
    """A leg ended while the bridge needed it (the agent hung up during the briefing)."""

    def __init__(self, leg: str) -> None:
        super().__init__(f"the {leg} leg ended")
        self.leg = leg


DTMF_PREFIX = "dtmf:"  # as telephony.rtp.session queues keypad digits


def threaded_speaker(synthesize: Callable[[str], bytes], sample_rate: int, *,
                     executor: Executor | None = None) -> Speaker:
    """A ``Speaker`` from a blocking synthesizer (``PiperSynthesizer.synthesize`` and its
    ``sample_rate``), run off the event loop that carries the audio."""
    async def speak(text: str) -> tuple[bytes, int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, synthesize, text), sample_rate

    return speak


def briefing_text(handoff: Any) -> str:
    """What the agent hears before the caller is put through: the summary's own text (who,
    what about, what was tried, mood) and why the call is being transferred."""
    summary = getattr(handoff, "summary", None) or {}
    text = str(summary.get("text") or "").strip()
    reason = str(getattr(handoff, "reason", "") or "").strip()
    parts = ["Incoming transfer from the assistant."]
    if text:
        parts.append(text if text.endswith((".", "!", "?")) else text + ".")
    if reason:
        parts.append(f"Reason for the transfer: {reason}.")
    parts.append("Connecting you now.")
    return " ".join(parts)


class _Track:
    """One direction's transcription: 8 kHz PCM in, turns into the record."""

    def __init__(self, speaker: str, bridge: MediaBridge) -> None:
        self.speaker = speaker
        self._bridge = bridge
        self._resampler = Resampler(RATE, 16000)
        self._segmenter = (TrackSegmenter(speaker, bridge.sink.vad_stream())
                           if bridge.sink is not None else None)

    def feed(self, pcm: bytes) -> None:
        if self._segmenter is not None:
            for utterance in self._segmenter.feed(self._resampler.process(pcm)):
                self._bridge.transcribe(utterance)

    def flush(self) -> None:
        if self._segmenter is not None:
            for utterance in self._segmenter.flush():
                self._bridge.transcribe(utterance)


class MediaBridge:
    """The agent leg of one warm transfer, and later the relay to the caller's leg."""

    def __init__(self, *, call_id: str, agent: AudioLeg, sink: MonitorSink | None,
                 speak: Speaker | None = None, pace: bool = True) -> None:
        self.call_id = call_id
        self.agent = agent
        self.sink = sink
        self._speak = speak
        self._pace = pace  # send the briefing in real time (tests turn it off)
        self._stopped = asyncio.Event()
        self._stop_reason = "stopped"
        self._jobs: list[asyncio.Task[None]] = []
        self.started_at = datetime.now(UTC)
        self.relayed = {"caller": 0, "agent": 0}  # audio frames relayed from each side

    # ------------------------------------------------------------------ 1. the briefing
    async def brief(self, text: str) -> None:
        """Speak ``text`` to the agent. Raises ``LegClosedError`` if the agent hangs up."""
        if self._speak is None:
            return
        pcm, rate = await self._speak(text)
        if rate != RATE:
            pcm = resample(pcm, rate, RATE)
        drain = asyncio.create_task(self._drain_agent())  # and notice a hang-up
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            step = FRAME_SAMPLES * 2
            for index, offset in enumerate(range(0, len(pcm), step)):
                if drain.done():
                    raise LegClosedError("agent")
                frame = pcm[offset:offset + step].ljust(step, b"\0")
                await self.agent.send(frame)
                if self._pace:
                    await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000
                                            - loop.time()))
                else:
                    await asyncio.sleep(0)
            if drain.done():
                raise LegClosedError("agent")
        finally:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        log.info("call %s: agent briefed (%.1f s)", self.call_id, len(pcm) / 2 / RATE)

    async def _drain_agent(self) -> None:
        """What the agent says over the briefing ("hello?") is not for the caller: dropped."""
        while await self.agent.receive() is not None:
            pass

    # ------------------------------------------------------------------ 2. the relay
    async def run(self, caller: AudioLeg) -> str:
        """Relay until a leg ends or ``stop`` is called; returns ``"caller"`` or ``"agent"``
        (the leg that ended) or the reason given to ``stop``. Transcription is finished and
        the sink told before it returns."""
        self.started_at = datetime.now(UTC)
        tracks = {"caller": _Track("caller", self), "agent": _Track("agent", self)}
        pumps = {
            asyncio.create_task(self._pump(caller, self.agent, tracks["caller"])): "caller",
            asyncio.create_task(self._pump(self.agent, caller, tracks["agent"])): "agent",
        }
        stopper = asyncio.create_task(self._stopped.wait())
        try:
            done, _ = await asyncio.wait({*pumps, stopper}, return_when=asyncio.FIRST_COMPLETED)
            ended = next((task for task in done if task is not stopper), None)
            reason = self._stop_reason if ended is None else pumps[ended]
            if ended is not None and ended.exception() is not None:  # a socket error: that leg
                log.warning("call %s: the %s leg failed: %r", self.call_id, reason,
                            ended.exception())
        finally:
            for task in (*pumps, stopper):
                task.cancel()
            await asyncio.gather(*pumps, stopper, return_exceptions=True)
            for track in tracks.values():
                track.flush()
            if self._jobs:
                await asyncio.gather(*self._jobs, return_exceptions=True)
            if self.sink is not None:
                self.sink.monitor_finished(self.call_id)
        log.info("call %s: bridge ended (%s; relayed %d caller, %d agent packets)", self.call_id,
                 reason, self.relayed["caller"], self.relayed["agent"])
        return reason

    def stop(self, reason: str = "stopped") -> None:
        """End the relay (the caller's or the agent's BYE arrived, or we hang up)."""
        if not self._stopped.is_set():
            self._stop_reason = reason
            self._stopped.set()

    async def _pump(self, source: AudioLeg, target: AudioLeg, track: _Track) -> None:
        """Until ``source`` ends: its audio to ``target`` and into its track's transcription;
        its keypad digits to ``target`` when that leg can send them (an IVR on the agent's
        side, a PIN)."""
        while True:
            data = await source.receive()
            if data is None:
                return
            if isinstance(data, str):
                send_dtmf = getattr(target, "send_dtmf", None)
                if data.startswith(DTMF_PREFIX) and send_dtmf is not None:
                    try:
                        send_dtmf(data[len(DTMF_PREFIX):])
                    except ValueError as exc:  # no telephone-event on that leg
                        log.debug("call %s: digit not relayed: %s", self.call_id, exc)
                continue
            await target.send(data)
            self.relayed[track.speaker] += 1
            track.feed(data)

    def transcribe(self, utterance: Utterance) -> None:
        """Transcribe one utterance in the background and record it as a turn."""
        sink = self.sink
        if sink is None:
            return

        async def job() -> None:
            text = (await sink.transcribe(utterance.audio)).strip()
            if text:
                sink.record_after_transfer(self.call_id, {
                    "speaker": utterance.speaker, "text": text, "start_ms": utterance.start_ms,
                    "end_ms": utterance.end_ms, "stream_started_at": self.started_at})

        self._jobs.append(asyncio.create_task(job()))
