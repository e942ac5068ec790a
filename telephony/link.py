"""A pipecat transport for bridges that are not WebSockets: AudioSocket's TCP stream, SIP's RTP.

pipecat ships transports for WebSockets and WebRTC; an AudioSocket connection or an RTP session
is neither. ``LinkTransport`` runs the same pipeline over any ``MediaLink``: something that
yields the far end's messages (``receive``) and takes ours (``send``). A pipecat
``FrameSerializer`` turns those messages into frames and back, exactly as for Twilio, so the
wire format stays in the bridge's pure codec and this module only moves messages.

Unlike a WebSocket peer such as Twilio, which buffers what it is sent and can be told to
``clear`` it, a PBX channel or an RTP receiver plays what arrives as it arrives. So output
audio is paced in real time here, never more than ``lead_ms`` ahead of the clock; on barge-in
pipecat drops what is still queued and the far end has at most ``lead_ms`` left to play.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

log = logging.getLogger("iva.link")


class MediaLink(Protocol):
    """One call's connection to the far end, whatever carries it."""

    async def receive(self) -> bytes | str | None:
        """The next message from the far end; ``None`` once it has gone."""
        ...

    async def send(self, data: bytes | str) -> None:
        """Send one message; a link that has closed drops it quietly."""
        ...

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        ...


class LinkParams(TransportParams):
    """``TransportParams`` plus the serializer and how far ahead output audio may run."""

    serializer: FrameSerializer | None = None
    lead_ms: int = 40


class LinkInputTransport(BaseInputTransport):
    def __init__(self, transport: LinkTransport, link: MediaLink, params: LinkParams,
                 **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._transport = transport
        self._link = link
        self._params = params
        self._receive_task: asyncio.Task[None] | None = None
        self._closing = False

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        if self._params.serializer:
            await self._params.serializer.setup(setup)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        if self._receive_task is None:
            self._receive_task = self.create_task(self._receive_messages())
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._teardown()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._teardown()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._teardown()

    async def _teardown(self) -> None:
        self._closing = True
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._link.close()

    async def _receive_messages(self) -> None:
        serializer = self._params.serializer
        try:
            while (message := await self._link.receive()) is not None:
                if serializer is None:
                    continue
                frame = await serializer.deserialize(message)
                if frame is None:
                    continue
                if isinstance(frame, InputAudioRawFrame):
                    await self.push_audio_frame(frame)
                elif isinstance(frame, InputTransportMessageFrame):
                    await self.broadcast_frame(InputTransportMessageFrame, message=frame.message)
                else:
                    await self.push_frame(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the serializer's protocol error: this call only
            log.debug("link receive loop ended: %s", exc)
        if not self._closing:
            await self._transport.far_end_gone()


class LinkOutputTransport(BaseOutputTransport):
    def __init__(self, transport: LinkTransport, link: MediaLink, params: LinkParams,
                 **kwargs: object) -> None:
        super().__init__(params, **kwargs)
        self._transport = transport
        self._link = link
        self._params = params
        self._chunk_s = 0.0
        self._next_send_time = 0.0

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        if self._params.serializer:
            await self._params.serializer.setup(setup)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        # audio_chunk_size is in bytes of 16-bit mono at the output rate.
        self._chunk_s = self.audio_chunk_size / 2 / self.sample_rate
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._write(frame)
        await self._link.close()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._write(frame)
        await self._link.close()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            await self._write(frame)
            self._next_send_time = 0.0

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        await self._write(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        frame = OutputAudioRawFrame(audio=frame.audio, sample_rate=self.sample_rate,
                                    num_channels=self._params.audio_out_channels)
        if not await self._write(frame):
            return False
        await self._pace(len(frame.audio) / 2 / self.sample_rate)
        return True

    async def _pace(self, duration_s: float) -> None:
        """Keep the audio sent at most ``lead_ms`` ahead of real time."""
        now = time.monotonic()
        if self._next_send_time < now:
            self._next_send_time = now
        self._next_send_time += duration_s
        ahead = self._next_send_time - now - self._params.lead_ms / 1000
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def _write(self, frame: Frame) -> bool:
        serializer = self._params.serializer
        if serializer is None:
            return False
        try:
            payload = await serializer.serialize(frame)
            if payload:
                await self._link.send(payload)
        except Exception as exc:
            log.warning("link send failed: %s: %s", type(exc).__name__, exc)
            return False
        return True


class LinkTransport(BaseTransport):
    """Input and output over one ``MediaLink``. Event ``on_client_disconnected(transport)``
    fires when the far end goes away without us closing the link first."""

    def __init__(self, link: MediaLink, params: LinkParams, *, input_name: str | None = None,
                 output_name: str | None = None) -> None:
        super().__init__(input_name=input_name, output_name=output_name)
        self._input = LinkInputTransport(self, link, params, name=self._input_name)
        self._output = LinkOutputTransport(self, link, params, name=self._output_name)
        self._register_event_handler("on_client_disconnected")

    def input(self) -> LinkInputTransport:
        return self._input

    def output(self) -> LinkOutputTransport:
        return self._output

    async def far_end_gone(self) -> None:
        await self._call_event_handler("on_client_disconnected")
