"""The pipecat transport of one browser call: pipecat's SmallWebRTC transport (aiortc) with the
three things our pipeline needs from every bridge.

- **What the caller heard.** Output audio goes into an aiortc track that is paced in real
  time, and writing a chunk waits until the track has sent it; so when the ``SpeechMarkFrame``
  after a sentence reaches the output, that sentence has gone out to the browser. The mark is
  reported to the call (``mark_played``), never sent to the page. On barge-in pipecat drops the
  queued audio; at most one chunk (40 ms) was still waiting in the track.
- **Latency.** The first non-silent chunk of an answer is reported (``audio_sent``) as it is
  handed to the track.
- **The caller's audio for someone else.** Each 16 kHz frame from the browser is also offered to
  ``caller_audio`` (an agent who answered in the browser hears it), before the pipeline's own
  listening.

Opus from the browser is decoded by aiortc (48 kHz) and resampled by pipecat to the pipeline's
16 kHz mono.
"""

from __future__ import annotations

from typing import Protocol

from pipecat.frames.frames import (
    InputAudioRawFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import (
    SmallWebRTCClient,
    SmallWebRTCInputTransport,
    SmallWebRTCOutputTransport,
    SmallWebRTCTransport,
)

from telephony.frames import SpeechMarkFrame

__all__ = ["BrowserCallTransport", "MediaListener", "call_params"]

PIPELINE_RATE = 16_000


class MediaListener(Protocol):
    """Who is told about the call's media (``telephony.webrtc.call.BrowserCall``)."""

    def caller_audio(self, pcm16k: bytes) -> None: ...
    def audio_sent(self) -> None: ...
    def mark_played(self, name: str) -> None: ...


def call_params(audio_out_rate: int) -> TransportParams:
    return TransportParams(
        audio_in_enabled=True, audio_in_sample_rate=PIPELINE_RATE, audio_in_channels=1,
        audio_out_enabled=True, audio_out_sample_rate=audio_out_rate, audio_out_channels=1,
        audio_out_end_silence_secs=0,
    )


class _CallerInput(SmallWebRTCInputTransport):
    def __init__(self, client: SmallWebRTCClient, params: TransportParams, *,
                 listener: MediaListener, **kwargs: object) -> None:
        super().__init__(client, params, **kwargs)
        self._listener = listener

    async def push_audio_frame(self, frame: InputAudioRawFrame) -> None:
        self._listener.caller_audio(frame.audio)
        await super().push_audio_frame(frame)


class _CallerOutput(SmallWebRTCOutputTransport):
    def __init__(self, client: SmallWebRTCClient, params: TransportParams, *,
                 listener: MediaListener, **kwargs: object) -> None:
        super().__init__(client, params, **kwargs)
        self._listener = listener

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        if isinstance(frame, SpeechMarkFrame):
            self._listener.mark_played(frame.mark_name)  # the sentence before it has gone out
            return
        await super().send_message(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if any(frame.audio):
            self._listener.audio_sent()
        return await super().write_audio_frame(frame)


class BrowserCallTransport(SmallWebRTCTransport):
    """``SmallWebRTCTransport`` whose input and output report to a :class:`MediaListener`."""

    def __init__(self, connection: SmallWebRTCConnection, params: TransportParams, *,
                 listener: MediaListener) -> None:
        super().__init__(connection, params)
        self._listener = listener

    def input(self) -> SmallWebRTCInputTransport:
        if not self._input:
            self._input = _CallerInput(self._client, self._params, listener=self._listener,
                                       name=self._input_name)
        return self._input

    def output(self) -> SmallWebRTCOutputTransport:
        if not self._output:
            self._output = _CallerOutput(self._client, self._params, listener=self._listener,
                                         name=self._output_name)
        return self._output
