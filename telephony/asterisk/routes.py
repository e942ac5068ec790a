"""``WS /asterisk/media``: calls from Asterisk's WebSocket channel (chan_websocket).

Asterisk connects here for ``Dial(WebSocket/<client>/c(ulaw))`` with a ``websocket_client.conf``
entry whose ``uri`` is ``ws://HOST:PORT/asterisk/media`` (the ``media`` subprotocol it asks
for is accepted). Query parameters, from the URI or the dial string's ``v()`` option:
``caller`` (the caller's number) and ``channel_id`` (the channel ARI should move or hang up;
by default the ``IVA_CHANNEL_ID`` channel variable, else the WebSocket channel itself).

The first message must be ``MEDIA_START``: it is read before the pipeline is built, so the
transport runs at the codec's own rate and sends whole ptime frames. The call then runs through
the conversation runner like any other; a protocol violation closes that one connection with
a precise close code and one log line, and the call record is kept with outcome ``error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from fastapi import APIRouter, WebSocket
from pipecat.frames.frames import EndFrame, Frame
from pipecat.pipeline.task import PipelineTask
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

from telephony.asterisk import chan_websocket as cw
from telephony.asterisk.ari import AriCallControl, AriConfig
from telephony.asterisk.serializers import (
    CLOSE_POLICY_VIOLATION,
    WEBSOCKET_CHANNEL,
    AsteriskStreamError,
    ChanWebsocketSerializer,
)
from telephony.control import CallHooks

log = logging.getLogger("iva.asterisk")

MEDIA_PATH = "/asterisk/media"
SUBPROTOCOL = "media"  # what websocket_client.conf's ``protocols = media`` asks for


class CallSessionLike(CallHooks, Protocol):
    def end(self, outcome: str) -> None: ...
    on_goodbye_heard: Any


class ConversationRunner(Protocol):
    """What a bridge needs from the conversation side (``voice.engine.ConversationEngine``)."""

    def new_session(self, channel: str) -> CallSessionLike: ...
    def build_call(self, *, transport: BaseTransport, session: Any,
                   audio_out_rate: int, control: Any = None) -> PipelineTask: ...
    async def run(self, task: PipelineTask) -> None: ...


def asterisk_router(runner: ConversationRunner, *, ari: AriConfig | None, max_message_bytes: int,
                    start_timeout_s: float = 10.0) -> APIRouter:
    """The chan_websocket endpoint; ``ari`` enables transfers (and hang-ups) through ARI."""
    router = APIRouter(tags=["asterisk"])

    @router.websocket(MEDIA_PATH)
    async def media(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        query = websocket.query_params
        call = _MediaCall(websocket, runner, ari=ari, max_message_bytes=max_message_bytes,
                          caller=query.get("caller") or None,
                          channel_id=query.get("channel_id") or None)
        await call.run(start_timeout_s)

    return router


class _MediaCall:
    """One chan_websocket connection, from ``MEDIA_START`` to the close."""

    def __init__(self, websocket: WebSocket, runner: ConversationRunner, *,
                 ari: AriConfig | None, max_message_bytes: int, caller: str | None,
                 channel_id: str | None) -> None:
        self.websocket = websocket
        self.runner = runner
        self.ari = ari
        self.session = runner.new_session(WEBSOCKET_CHANNEL)
        self.outcome = "completed"  # Asterisk closing the socket is how a call normally ends
        self.task: PipelineTask | None = None
        self.closing: asyncio.Task[None] | None = None
        self.serializer = ChanWebsocketSerializer(
            hooks=self.session, on_error=self.on_error, max_message_bytes=max_message_bytes,
            caller=caller, ari_channel=channel_id)
        self.session.on_goodbye_heard = self.on_goodbye

    def on_error(self, error: AsteriskStreamError) -> None:
        self.outcome = "error"
        log.warning("call %s: closing the media WebSocket (code %d): %s",
                    self.session.call_id or "(no MEDIA_START yet)", error.code, error)
        self.session.event("protocol_error", code=error.code, detail=str(error)[:200])
        self.closing = asyncio.get_running_loop().create_task(
            _close(self.websocket, error.code, str(error)))

    def on_goodbye(self) -> None:
        self.session.event("hang_up", by="assistant")
        self.end_pipeline()

    def end_pipeline(self) -> None:
        """Finish what is queued, say ``HANGUP``, close (the serializer maps the EndFrame)."""
        if self.task is not None:
            asyncio.get_running_loop().create_task(self.task.queue_frame(EndFrame()))

    async def end_stream(self) -> None:
        self.end_pipeline()

    async def first_frame(self, timeout_s: float) -> Frame | None:
        """``MEDIA_START``, read before the pipeline exists; None if the call is off."""
        try:
            message = await asyncio.wait_for(self.websocket.receive(), timeout_s)
        except TimeoutError:
            self.on_error(AsteriskStreamError(f"no MEDIA_START within {timeout_s:g} s",
                                              code=CLOSE_POLICY_VIOLATION))
            return None
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        try:
            return await self.serializer.deserialize(data)  # raises unless MEDIA_START
        except AsteriskStreamError:
            return None  # on_error has scheduled the close

    async def run(self, start_timeout_s: float) -> None:
        started = await self.first_frame(start_timeout_s)
        start, codec = self.serializer.start, self.serializer.codec
        if started is None or start is None or codec is None:
            if self.closing is not None:
                await self.closing
            return
        try:
            await self.websocket.send_text(self.serializer.command(cw.Command.ANSWER))
            control = AriCallControl(config=self.ari,
                                     channel_id=lambda: self.serializer.ari_channel_id,
                                     end_stream=self.end_stream,
                                     call_id=lambda: self.session.call_id)
            self.task = self.runner.build_call(transport=self.transport(codec.rate, start.ptime),
                                               session=self.session, audio_out_rate=codec.rate,
                                               control=control)
            await self.task.queue_frame(started)  # taken in once the pipeline has started
            await self.runner.run(self.task)
        except Exception:
            self.outcome = "error"
            log.exception("call %s: pipeline failed", self.session.call_id)
        finally:
            self.session.end(self.outcome)

    def transport(self, rate: int, ptime: int | None) -> FastAPIWebsocketTransport:
        # Output chunks of two ptimes: whole frames, so Asterisk never drops a remainder.
        ptime = ptime or 20
        chunks = 2 * ptime // 10 if ptime % 10 == 0 else 4
        transport = FastAPIWebsocketTransport(
            self.websocket,
            FastAPIWebsocketParams(
                audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=16_000,
                audio_out_sample_rate=rate, audio_out_10ms_chunks=chunks,
                audio_out_end_silence_secs=0, serializer=self.serializer, allowed_origins=[],
                ws_close_timeout=2.0,
            ),
        )

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: BaseTransport, _ws: WebSocket) -> None:
            if self.task is not None:
                await self.task.cancel()

        return transport


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code=code, reason=reason[:120])
    except Exception:  # already closed by the peer
        pass
