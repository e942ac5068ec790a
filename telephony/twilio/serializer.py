"""pipecat serializer for Twilio Media Streams, a thin layer over ``protocol``.

Inbound: ``start`` begins the call's session and yields ``CallStartedFrame``; ``media`` (8 kHz
μ-law) becomes 16 kHz ``InputAudioRawFrame``; ``dtmf`` becomes ``InputDTMFFrame`` (A-D, which
no phone's keypad has, only a ``dtmf_ignored`` event on the session); ``mark``
tells the session what the caller has heard; ``stop`` ends the call. Outbound: audio becomes
``media`` (8 kHz μ-law), a ``SpeechMarkFrame`` a ``mark``, an interruption a ``clear``.

Anything that breaks the protocol raises ``TwilioStreamError`` carrying the WebSocket close
code to use; the bridge closes that one connection and nothing else is affected. Unlike
pipecat's own Twilio serializer, this one has no side effects: hanging up is call control's
job (``telephony.twilio.control``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.serializers.base_serializer import FrameSerializer

from telephony.audio import Resampler, pcm16_to_ulaw, ulaw_to_pcm16
from telephony.control import CallHooks
from telephony.frames import CallStartedFrame, SpeechMarkFrame, keypad_frame
from telephony.twilio import protocol as tw

log = logging.getLogger("iva.twilio")

TWILIO_RATE = 8000
PIPELINE_RATE = 16_000

# WebSocket close codes (RFC 6455 §7.4.1)
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009


class TwilioStreamError(Exception):
    """The far end broke the Media Streams protocol; close this connection with ``code``."""

    def __init__(self, message: str, *, code: int = CLOSE_INVALID_PAYLOAD) -> None:
        super().__init__(message)
        self.code = code


class TwilioMediaStreamSerializer(FrameSerializer):
    def __init__(
        self,
        *,
        hooks: CallHooks,
        max_message_bytes: int,
        on_stop: Callable[[], None],
        on_error: Callable[[TwilioStreamError], None],
    ) -> None:
        super().__init__()
        self._hooks = hooks
        self._max_message_bytes = max_message_bytes
        self._on_stop = on_stop
        self._on_error = on_error
        self.stream_sid: str | None = None
        self._in_resampler = Resampler(TWILIO_RATE, PIPELINE_RATE)
        self._out_resamplers: dict[int, Resampler] = {}

    # ---------------------------------------------------------------- inbound
    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            return self._deserialize(data)
        except TwilioStreamError as error:
            self._on_error(error)
            raise

    def _deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes):
            raise TwilioStreamError("binary WebSocket frames are not part of Media Streams",
                                    code=CLOSE_UNSUPPORTED_DATA)
        if len(data) > self._max_message_bytes:
            raise TwilioStreamError(
                f"message of {len(data)} bytes exceeds the {self._max_message_bytes}-byte limit",
                code=CLOSE_TOO_BIG,
            )
        try:
            event = tw.parse_inbound(data)
        except tw.TwilioProtocolError as exc:
            raise TwilioStreamError(str(exc)) from exc

        if isinstance(event, tw.Connected):
            return None
        if isinstance(event, tw.Start):
            if self._hooks.started:
                raise TwilioStreamError("a second 'start' on the same stream",
                                        code=CLOSE_POLICY_VIOLATION)
            self.stream_sid = event.stream_sid
            caller = event.custom_parameters.get("From") or event.custom_parameters.get("from")
            self._hooks.begin(event.call_sid, caller=caller,
                              meta={"stream_sid": event.stream_sid, "account_sid": event.account_sid})
            return CallStartedFrame(call_id=event.call_sid, caller=caller, channel="twilio")
        if not self._hooks.started:
            raise TwilioStreamError(f"'{type(event).__name__.lower()}' before 'start'",
                                    code=CLOSE_POLICY_VIOLATION)
        if isinstance(event, tw.Media):
            if event.track not in ("inbound", "inbound_track"):
                return None
            pcm = self._in_resampler.process(ulaw_to_pcm16(event.payload))
            if not pcm:
                return None
            return InputAudioRawFrame(audio=pcm, sample_rate=PIPELINE_RATE, num_channels=1)
        if isinstance(event, tw.Dtmf):
            return keypad_frame(event.digit, self._hooks)
        if isinstance(event, tw.Mark):
            self._hooks.mark_played(event.name)
            return None
        if isinstance(event, tw.Stop):
            self._on_stop()
            return None
        return None  # pragma: no cover - parse_inbound knows no other events

    # ---------------------------------------------------------------- outbound
    async def serialize(self, frame: Frame) -> str | bytes | None:
        if self.stream_sid is None:
            return None
        if isinstance(frame, InterruptionFrame):
            return tw.clear_message(self.stream_sid)
        if isinstance(frame, OutputAudioRawFrame):
            pcm = frame.audio
            if frame.sample_rate != TWILIO_RATE:
                resampler = self._out_resamplers.get(frame.sample_rate)
                if resampler is None:
                    resampler = self._out_resamplers[frame.sample_rate] = Resampler(
                        frame.sample_rate, TWILIO_RATE)
                pcm = resampler.process(pcm)
            if not pcm:
                return None
            message = tw.media_message(self.stream_sid, pcm16_to_ulaw(pcm))
            if any(pcm):
                self._hooks.audio_sent()
            return message
        if isinstance(frame, SpeechMarkFrame):
            return tw.mark_message(self.stream_sid, frame.mark_name)
        return None
