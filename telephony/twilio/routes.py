"""Twilio's two endpoints: the voice webhook (TwiML) and the Media Streams WebSocket.

``POST /twilio/voice`` answers Twilio's webhook with ``<Connect><Stream>`` pointing back at
``/twilio/stream`` (wss when the request came over https, per ``X-Forwarded-Proto``), and passes
the caller's number as the ``From`` parameter. With an auth token configured, the request's
``X-Twilio-Signature`` must be valid (403 otherwise).

``WS /twilio/stream`` runs one call: the conversation runner builds the pipeline around a
pipecat FastAPI WebSocket transport carrying ``TwilioMediaStreamSerializer``. A protocol
violation closes that connection with a precise close code and one log line; the call record
is kept with outcome ``error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from fastapi import APIRouter, Request, Response, WebSocket
from pipecat.frames.frames import EndFrame
from pipecat.pipeline.task import PipelineTask
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

from telephony.control import CallHooks
from telephony.twilio.control import DEFAULT_API_BASE_URL, TwilioCallControl
from telephony.twilio.monitor import MonitorSink, run_monitor
from telephony.twilio.serializer import TWILIO_RATE, TwilioMediaStreamSerializer, TwilioStreamError
from telephony.twilio.twiml import (
    MONITOR_PATH,
    STREAM_PATH,
    connect_stream_twiml,
    signature_is_valid,
    stream_url_for,
)

log = logging.getLogger("iva.twilio")


class CallSessionLike(CallHooks, Protocol):
    def end(self, outcome: str) -> None: ...
    on_goodbye_heard: Any


class ConversationRunner(Protocol):
    """What the bridge needs from the conversation side (``voice.engine.ConversationEngine``)."""

    def new_session(self, channel: str) -> CallSessionLike: ...
    def build_call(self, *, transport: BaseTransport, session: Any,
                   audio_out_rate: int, control: Any = None) -> PipelineTask: ...
    async def run(self, task: PipelineTask) -> None: ...


def twilio_router(runner: ConversationRunner, *, auth_token: str | None, public_url: str | None,
                  max_message_bytes: int, account_sid: str | None = None,
                  api_base_url: str = DEFAULT_API_BASE_URL,
                  monitor: MonitorSink | None = None) -> APIRouter:
    """The webhook and the media stream. ``account_sid`` with ``auth_token`` enables transfers
    through the REST API at ``api_base_url``."""
    rest = {"account_sid": account_sid, "auth_token": auth_token, "api_base_url": api_base_url}
    with_monitor = monitor is not None
    router = APIRouter(tags=["twilio"])

    @router.post("/twilio/voice")
    async def voice_webhook(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if auth_token:
            url = _public_request_url(request, public_url)
            if not signature_is_valid(auth_token, url, form, request.headers.get("X-Twilio-Signature")):
                log.warning("rejected /twilio/voice: bad X-Twilio-Signature (CallSid %s)",
                            form.get("CallSid", "-"))
                return Response("invalid Twilio signature", status_code=403,
                                media_type="text/plain")
        stream_url = stream_url_for(
            public_url or "",
            forwarded_proto=request.headers.get("X-Forwarded-Proto"),
            host=request.headers.get("X-Forwarded-Host") or request.headers.get("host") or "localhost",
        )
        params = {"From": form["From"]} if form.get("From") else {}
        return Response(connect_stream_twiml(stream_url, parameters=params),
                        media_type="application/xml")

    @router.websocket("/twilio/stream")
    async def media_stream(websocket: WebSocket) -> None:
        await websocket.accept()
        monitor_url = None
        if with_monitor:
            monitor_url = stream_url_for(
                public_url or "", forwarded_proto=websocket.headers.get("x-forwarded-proto"),
                host=websocket.headers.get("x-forwarded-host") or websocket.headers.get("host")
                or "localhost",
            ).removesuffix(STREAM_PATH) + MONITOR_PATH
        await _run_stream(websocket, runner, max_message_bytes, {**rest, "monitor_url": monitor_url})

    if monitor is not None:
        @router.websocket(MONITOR_PATH)
        async def monitor_stream(websocket: WebSocket) -> None:
            """Listen-only: the call after its transfer (see telephony.twilio.monitor)."""
            await run_monitor(websocket, monitor, max_message_bytes=max_message_bytes)

    return router


async def _run_stream(websocket: WebSocket, runner: ConversationRunner,
                      max_message_bytes: int, rest: dict[str, Any]) -> None:
    session = runner.new_session("twilio")
    outcome = "caller_hung_up"
    task_ref: dict[str, PipelineTask] = {}

    def end_pipeline() -> None:
        task = task_ref.get("task")
        if task is not None:
            asyncio.get_running_loop().create_task(task.queue_frame(EndFrame()))

    def on_stop() -> None:
        # Twilio has hung up: nothing queued for the caller matters any more.
        nonlocal outcome
        outcome = "completed"
        task = task_ref.get("task")
        if task is not None:
            asyncio.get_running_loop().create_task(task.cancel())

    def on_error(error: TwilioStreamError) -> None:
        nonlocal outcome
        outcome = "error"
        log.warning("call %s: closing the stream (code %d): %s",
                    session.call_id or "(no start yet)", error.code, error)
        session.event("protocol_error", code=error.code, detail=str(error)[:200])
        asyncio.get_running_loop().create_task(_close(websocket, error.code, str(error)))

    def on_goodbye() -> None:
        nonlocal outcome
        outcome = "completed"
        session.event("hang_up", by="assistant")
        end_pipeline()

    session.on_goodbye_heard = on_goodbye
    serializer = TwilioMediaStreamSerializer(
        hooks=session, max_message_bytes=max_message_bytes, on_stop=on_stop, on_error=on_error,
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=16_000,
            audio_out_sample_rate=TWILIO_RATE, audio_out_end_silence_secs=0,
            serializer=serializer, allowed_origins=[], ws_close_timeout=2.0,
        ),
    )

    @transport.event_handler("on_client_disconnected")
    async def _gone(_transport: BaseTransport, _ws: WebSocket) -> None:
        task = task_ref.get("task")
        if task is not None:
            await task.cancel()

    async def end_stream() -> None:
        end_pipeline()

    control = TwilioCallControl(call_sid=lambda: session.call_id, end_stream=end_stream, **rest)
    task_ref["task"] = runner.build_call(transport=transport, session=session,
                                         audio_out_rate=TWILIO_RATE, control=control)
    try:
        await runner.run(task_ref["task"])
    except Exception:
        outcome = "error"
        log.exception("call %s: pipeline failed", session.call_id or "(no start yet)")
    finally:
        session.end(outcome)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    try:
        await websocket.close(code=code, reason=reason[:120])
    except Exception:  # already closed by the peer
        pass


def _public_request_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio signed: the public one when we are behind a proxy."""
    if public_url:
        return public_url.rstrip("/") + request.url.path
    proto = request.headers.get("X-Forwarded-Proto") or request.url.scheme
    host = request.headers.get("X-Forwarded-Host") or request.headers.get("host") or request.url.netloc
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{proto}://{host}{request.url.path}{query}"
