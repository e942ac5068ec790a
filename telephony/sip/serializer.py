"""``SipSerializer``: the pipecat side of a direct SIP call's ``RtpSession``.

The session (``telephony.rtp.session``) has already checked, ordered and decoded the RTP; its
messages are ``"start"`` (the call is answered), 8 kHz 16-bit PCM (``bytes``) and keypad
digits (``"dtmf:5"``). This turns them into ``CallStartedFrame``, 16 kHz
``InputAudioRawFrame`` and ``InputDTMFFrame``, and the assistant's audio back into 8 kHz PCM
for the session to encode and packetize (20 ms). A ``SpeechMarkFrame`` counts as played when
it is serialized: the transport paces output in real time and RTP has no playback receipts.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
)
from pipecat.serializers.base_serializer import FrameSerializer

from telephony.audio import Resampler
from telephony.control import CallHooks
from telephony.frames import CallStartedFrame, SpeechMarkFrame, keypad_frame
from telephony.rtp.session import DTMF_PREFIX, START

SIP_CHANNEL = "sip"
PIPELINE_RATE = 16_000
WIRE_RATE = 8000


class SipSerializer(FrameSerializer):
    """One SIP call; ``call_id``, ``caller`` and ``meta`` go into the call record at start."""

    def __init__(self, *, hooks: CallHooks, call_id: str, caller: str | None,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._hooks = hooks
        self._call_id = call_id
        self._caller = caller
        self._meta = meta or {}
        self._up = Resampler(WIRE_RATE, PIPELINE_RATE)
        self._down: dict[int, Resampler] = {}

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, str):
            if data == START:
                if self._hooks.started:
                    return None
                self._hooks.begin(self._call_id, caller=self._caller, meta=self._meta)
                return CallStartedFrame(call_id=self._call_id, caller=self._caller,
                                        channel=SIP_CHANNEL)
            if data.startswith(DTMF_PREFIX) and self._hooks.started:
                return keypad_frame(data[len(DTMF_PREFIX):], self._hooks)
            return None
        if not self._hooks.started or not data:
            return None
        pcm = self._up.process(data)
        if not pcm:
            return None
        return InputAudioRawFrame(audio=pcm, sample_rate=PIPELINE_RATE, num_channels=1)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if not self._hooks.started:
            return None
        if isinstance(frame, OutputAudioRawFrame):
            pcm = frame.audio
            if frame.sample_rate != WIRE_RATE:
                resampler = self._down.get(frame.sample_rate)
                if resampler is None:
                    resampler = self._down[frame.sample_rate] = Resampler(frame.sample_rate,
                                                                          WIRE_RATE)
                pcm = resampler.process(pcm)
            if any(pcm):
                self._hooks.audio_sent()
            return pcm or None
        if isinstance(frame, SpeechMarkFrame):
            self._hooks.mark_played(frame.mark_name)
        return None
