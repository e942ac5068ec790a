"""pipecat serializers for the two Asterisk bridges, thin layers over the pure codecs.

Both begin the call's session (``CallHooks.begin``) and yield ``CallStartedFrame`` when the
call identifies itself, turn caller audio into 16 kHz ``InputAudioRawFrame`` and keypad digits
into ``InputDTMFFrame``, and turn the assistant's audio into the wire format. Hanging up in
band: ``AudioSocketServer`` sends the hang-up packet itself; on chan_websocket ``HANGUP`` is
this serializer's answer to an ``EndFrame``.

AudioSocket (``AudioSocketSerializer``): the UUID packet starts the call (its string form is
the call id; AudioSocket carries no caller number). Audio goes out as 20 ms packets at the
rate the caller's audio comes in (8 kHz unless Asterisk sends a higher-rate kind). AudioSocket
cannot flush what Asterisk has buffered, so the transport paces output in real time and a
``SpeechMarkFrame`` counts as played when it is serialized: everything before it has been
sent, and so played, give or take the transport's lead.

chan_websocket (``ChanWebsocketSerializer``): ``MEDIA_START`` starts the call (the connection
id is the call id) and fixes the codec and the control format. Barge-in sends
``FLUSH_MEDIA``; a ``SpeechMarkFrame`` becomes ``MARK_MEDIA`` and ``MEDIA_MARK_PROCESSED``
reports it played. Releases older than ``MARK_MEDIA`` ignore it: if no mark comes back within
``mark_timeout_s`` while none ever has, marks count as played when sent from then on (output
is paced in real time, so that is at most a few tens of milliseconds early).

A protocol violation raises ``AsteriskStreamError`` (after ``on_error``), carrying the
WebSocket close code to use; the bridge drops that one connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.serializers.base_serializer import FrameSerializer

from telephony.asterisk import audiosocket as aus
from telephony.asterisk import chan_websocket as cw
from telephony.audio import Resampler
from telephony.control import CallHooks
from telephony.frames import CallStartedFrame, SpeechMarkFrame, keypad_frame

log = logging.getLogger("iva.asterisk")

PIPELINE_RATE = 16_000
AUDIOSOCKET_CHANNEL = "asterisk_audiosocket"
WEBSOCKET_CHANNEL = "asterisk_websocket"

# WebSocket close codes (RFC 6455 §7.4.1)
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009


class AsteriskStreamError(Exception):
    """The far end broke its protocol; drop this connection (``code``: WebSocket close code)."""

    def __init__(self, message: str, *, code: int = CLOSE_INVALID_PAYLOAD) -> None:
        super().__init__(message)
        self.code = code


class _Resamplers:
    """One streaming resampler per (source, destination) rate pair, made when first needed."""

    def __init__(self) -> None:
        self._by_rates: dict[tuple[int, int], Resampler] = {}

    def __call__(self, pcm: bytes, src: int, dst: int) -> bytes:
        if src == dst:
            return pcm
        resampler = self._by_rates.get((src, dst))
        if resampler is None:
            resampler = self._by_rates[(src, dst)] = Resampler(src, dst)
        return resampler.process(pcm)


class AudioSocketSerializer(FrameSerializer):
    """One AudioSocket connection; ``deserialize`` takes one packet's bytes at a time."""

    def __init__(self, *, hooks: CallHooks, on_hangup: Callable[[str, str], None],
                 on_error: Callable[[AsteriskStreamError], None],
                 max_payload: int = aus.DEFAULT_MAX_PAYLOAD) -> None:
        super().__init__()
        self._hooks = hooks
        self._on_hangup = on_hangup  # (outcome, why)
        self._on_error = on_error
        self._max_payload = max_payload
        self._resample = _Resamplers()
        self.rate = 8000  # of Asterisk's audio, which ours follows

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            return self._deserialize(data)
        except AsteriskStreamError as error:
            self._on_error(error)
            raise

    def _deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, str):
            raise AsteriskStreamError("AudioSocket is binary; got text")
        try:
            packet = aus.parse_packet(data, max_payload=self._max_payload)
        except aus.AudioSocketError as exc:
            raise AsteriskStreamError(str(exc)) from exc
        if isinstance(packet, aus.Uuid):
            if self._hooks.started:
                raise AsteriskStreamError("a second UUID on the same connection",
                                          code=CLOSE_POLICY_VIOLATION)
            call_id = str(packet)
            self._hooks.begin(call_id, caller=None, meta={"uuid": call_id})
            return CallStartedFrame(call_id=call_id, caller=None, channel=AUDIOSOCKET_CHANNEL)
        if isinstance(packet, aus.Hangup):
            self._on_hangup("completed", "hang-up packet")
            return None
        if isinstance(packet, aus.Error):
            if packet.caller_hung_up:
                self._on_hangup("completed", packet.describe())
            else:
                self._on_hangup("error", f"Asterisk reported {packet.describe()}")
            return None
        if not self._hooks.started:
            raise AsteriskStreamError(f"{type(packet).__name__.lower()} before the UUID",
                                      code=CLOSE_POLICY_VIOLATION)
        if isinstance(packet, aus.Dtmf):
            return keypad_frame(packet.digit, self._hooks)
        self.rate = packet.rate
        pcm = self._resample(packet.pcm, packet.rate, PIPELINE_RATE)
        if not pcm:
            return None
        return InputAudioRawFrame(audio=pcm, sample_rate=PIPELINE_RATE, num_channels=1)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if not self._hooks.started:
            return None
        if isinstance(frame, OutputAudioRawFrame):
            pcm = self._resample(frame.audio, frame.sample_rate, self.rate)
            if not pcm:
                return None
            step = self.rate * 20 // 1000 * 2  # 20 ms packets, as Asterisk sends them
            packets = b"".join(bytes(aus.Audio(pcm[i:i + step], self.rate))
                               for i in range(0, len(pcm), step))
            if any(pcm):
                self._hooks.audio_sent()
            return packets
        if isinstance(frame, SpeechMarkFrame):
            # Output is paced in real time: what was sent before the mark has been played.
            self._hooks.mark_played(frame.mark_name)
        return None


class ChanWebsocketSerializer(FrameSerializer):
    """One chan_websocket connection (``WS /asterisk/media``)."""

    def __init__(self, *, hooks: CallHooks, on_error: Callable[[AsteriskStreamError], None],
                 max_message_bytes: int, caller: str | None = None,
                 ari_channel: str | None = None, mark_timeout_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._hooks = hooks
        self._on_error = on_error
        self._max_message_bytes = max_message_bytes
        self._caller = caller
        self._ari_channel = ari_channel
        self._mark_timeout_s = mark_timeout_s
        self._clock = clock
        self._resample = _Resamplers()
        self.start: cw.MediaStart | None = None
        self.codec: cw.MediaCodec | None = None
        self.format = cw.ControlFormat.PLAIN
        self.marks = "probing"  # then "confirmed" (Asterisk answers MARK_MEDIA) or "on_send"
        self._pending_marks: dict[str, float] = {}
        self._carry = b""  # encoded output short of a whole frame
        self.flow_paused = False  # between MEDIA_XOFF and MEDIA_XON

    @property
    def ari_channel_id(self) -> str | None:
        """The channel ARI should act on: the URI's ``channel_id``, the ``IVA_CHANNEL_ID``
        channel variable, or the WebSocket channel itself."""
        if self._ari_channel:
            return self._ari_channel
        if self.start is None:
            return None
        return self.start.channel_variables.get("IVA_CHANNEL_ID") or self.start.channel_id

    def command(self, command: cw.Command, **params: str) -> str:
        return cw.build_command(command, self.format, **params)

    # ---------------------------------------------------------------- inbound
    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            frame = self._deserialize(data)
        except AsteriskStreamError as error:
            self._on_error(error)
            raise
        self._expire_marks()
        return frame

    def _deserialize(self, data: str | bytes) -> Frame | None:
        if len(data) > self._max_message_bytes:
            raise AsteriskStreamError(f"message of {len(data)} bytes exceeds the "
                                      f"{self._max_message_bytes}-byte limit", code=CLOSE_TOO_BIG)
        if isinstance(data, bytes):
            return self._audio(data)
        try:
            event = cw.parse_event(data)
        except cw.ChanWebsocketError as exc:
            raise AsteriskStreamError(str(exc)) from exc
        if isinstance(event, cw.MediaStart):
            return self._begin(event, cw.control_format(data))
        if self.start is None:
            raise AsteriskStreamError(f"{type(event).__name__} before MEDIA_START",
                                      code=CLOSE_POLICY_VIOLATION)
        if isinstance(event, cw.DtmfEnd):
            return keypad_frame(event.digit, self._hooks)
        if isinstance(event, cw.MediaMarkProcessed):
            self.marks = "confirmed"
            if event.correlation_id:
                self._pending_marks.pop(event.correlation_id, None)
                self._hooks.mark_played(event.correlation_id)
        elif isinstance(event, cw.MediaXoff | cw.MediaXon):
            self.flow_paused = isinstance(event, cw.MediaXoff)
            log.info("call %s: Asterisk %s", self._hooks.call_id,
                     "asks us to pause media (XOFF)" if self.flow_paused else "resumes media (XON)")
        elif isinstance(event, cw.ErrorEvent):
            log.warning("call %s: Asterisk reports an error: %s", self._hooks.call_id,
                        event.error_text)
            self._hooks.event("asterisk_error", detail=event.error_text[:200])
        return None

    def _begin(self, start: cw.MediaStart, fmt: cw.ControlFormat) -> Frame:
        if self.start is not None:
            raise AsteriskStreamError("a second MEDIA_START on the same connection",
                                      code=CLOSE_POLICY_VIOLATION)
        try:
            self.codec = cw.codec_for(start.format)
        except cw.ChanWebsocketError as exc:
            raise AsteriskStreamError(str(exc), code=CLOSE_UNSUPPORTED_DATA) from exc
        self.start, self.format = start, fmt
        caller = self._caller or start.channel_variables.get("IVA_CALLER") or None
        self._hooks.begin(start.connection_id, caller=caller, meta={
            "asterisk_channel": start.channel, "asterisk_channel_id": start.channel_id,
            "ari_channel_id": self.ari_channel_id, "format": start.format,
            "control_format": fmt.value})
        return CallStartedFrame(call_id=start.connection_id, caller=caller,
                                channel=WEBSOCKET_CHANNEL)

    def _audio(self, data: bytes) -> Frame | None:
        if self.codec is None:
            raise AsteriskStreamError("media before MEDIA_START", code=CLOSE_POLICY_VIOLATION)
        if len(data) % self.codec.bytes_per_sample:
            raise AsteriskStreamError(f"{len(data)} bytes is not a whole number of "
                                      f"{self.codec.name} samples")
        pcm = self._resample(self.codec.decode(data), self.codec.rate, PIPELINE_RATE)
        if not pcm:
            return None
        return InputAudioRawFrame(audio=pcm, sample_rate=PIPELINE_RATE, num_channels=1)

    def _expire_marks(self) -> None:
        """While no ``MEDIA_MARK_PROCESSED`` has ever come, a mark unanswered for
        ``mark_timeout_s`` means this Asterisk predates ``MARK_MEDIA``."""
        if self.marks != "probing" or not self._pending_marks:
            return
        if self._clock() - min(self._pending_marks.values()) < self._mark_timeout_s:
            return
        self.marks = "on_send"
        log.info("call %s: Asterisk does not answer MARK_MEDIA (a release before 20.18, 22.8 or "
                 "23.2?); marks count as played when sent", self._hooks.call_id)
        for name in list(self._pending_marks):
            self._hooks.mark_played(name)
        self._pending_marks.clear()

    # ---------------------------------------------------------------- outbound
    async def serialize(self, frame: Frame) -> str | bytes | None:
        if self.start is None or self.codec is None:
            return None
        if isinstance(frame, InterruptionFrame):
            self._carry = b""
            self._pending_marks.clear()  # flushed with the audio: never played
            return self.command(cw.Command.FLUSH_MEDIA)
        if isinstance(frame, OutputAudioRawFrame):
            return self._media(frame)
        if isinstance(frame, SpeechMarkFrame):
            if self.marks == "on_send":
                self._hooks.mark_played(frame.mark_name)
                return None
            self._pending_marks[frame.mark_name] = self._clock()
            return self.command(cw.Command.MARK_MEDIA, correlation_id=frame.mark_name)
        if isinstance(frame, EndFrame):
            return self.command(cw.Command.HANGUP)
        return None

    def _media(self, frame: OutputAudioRawFrame) -> bytes | None:
        assert self.codec is not None and self.start is not None
        pcm = self._resample(frame.audio, frame.sample_rate, self.codec.rate)
        if any(pcm):
            self._hooks.audio_sent()
        # Asterisk drops what does not fill a whole frame, so short ends wait for more audio.
        data = self._carry + self.codec.encode(pcm)
        whole = len(data) - len(data) % self.start.optimal_frame_size
        self._carry = data[whole:]
        return data[:whole] or None
