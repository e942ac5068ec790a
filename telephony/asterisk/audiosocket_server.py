"""``AudioSocketServer``: Asterisk's AudioSocket over TCP, one call per connection.

Asterisk connects for ``AudioSocket(<uuid>,HOST:PORT)`` in the dialplan, or for a
``Dial(AudioSocket/HOST:PORT/<uuid>)``, and sends the UUID packet first. Each connection runs
one call through the conversation runner on a ``telephony.link.LinkTransport``, which paces the
assistant's audio in real time (AudioSocket has no way to flush what Asterisk has queued).

A connection that breaks the protocol (a malformed packet, audio before the UUID, no UUID
within ``uuid_timeout_s``) gets a hang-up packet and is closed, with one log line; its call
record, if it had begun, ends with outcome ``error``. Other calls go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from pipecat.frames.frames import EndFrame
from pipecat.pipeline.task import PipelineTask

from telephony.asterisk import audiosocket as aus
from telephony.asterisk.ari import AriCallControl, AriConfig
from telephony.asterisk.routes import ConversationRunner
from telephony.asterisk.serializers import (
    AUDIOSOCKET_CHANNEL,
    AsteriskStreamError,
    AudioSocketSerializer,
)
from telephony.link import LinkParams, LinkTransport

log = logging.getLogger("iva.asterisk")

OUT_RATE = 8000  # the assistant speaks slin at 8 kHz; the serializer follows a faster caller


class AudioSocketLink:
    """A ``telephony.link.MediaLink`` over one TCP connection: one packet per ``receive``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 max_payload: int, on_error: Callable[[AsteriskStreamError], None]) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = aus.AudioSocketParser(max_payload=max_payload)
        self._packets: deque[bytes] = deque()
        self._on_error = on_error
        self._closed = False
        self._hung_up = False
        self.truncated = False  # the peer went away in the middle of a packet

    async def receive(self) -> bytes | None:
        while not self._packets:
            if self._closed:
                return None
            if self._parser.error is not None:  # the good packets before it are done
                self._on_error(AsteriskStreamError(str(self._parser.error)))
                return None
            try:
                data = await self._reader.read(64 * 1024)
            except (ConnectionError, OSError):
                return None
            if not data:
                self.truncated = self._parser.pending > 0
                return None
            try:
                packets = self._parser.feed(data)
            except aus.AudioSocketError as exc:
                self._on_error(AsteriskStreamError(str(exc)))
                return None
            self._packets.extend(bytes(packet) for packet in packets)
        return self._packets.popleft()

    async def send(self, data: bytes | str) -> None:
        if self._closed or self._hung_up or isinstance(data, str):
            return
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError):
            self._closed = True

    async def hang_up(self) -> None:
        """Send the hang-up packet; it is the last thing this connection carries."""
        await self.send(bytes(aus.Hangup()))
        self._hung_up = True

    async def close(self) -> None:
        if self._closed and self._writer.is_closing():
            return
        self._closed = True
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class _Call:
    """One AudioSocket connection, from the UUID to the close."""

    def __init__(self, runner: ConversationRunner, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, ari: AriConfig | None, max_payload: int,
                 uuid_timeout_s: float) -> None:
        self.runner = runner
        self.session = runner.new_session(AUDIOSOCKET_CHANNEL)
        self.session.on_goodbye_heard = self.on_goodbye
        self.peer = _address(writer.get_extra_info("peername"))
        self.ari = ari
        self.uuid_timeout_s = uuid_timeout_s
        self.outcome = "completed"  # Asterisk closing the socket is how a call normally ends
        self.task: PipelineTask | None = None
        self.watchers: list[asyncio.Task[None]] = []
        self.link = AudioSocketLink(reader, writer, max_payload=max_payload,
                                    on_error=self.on_error)
        self.serializer = AudioSocketSerializer(hooks=self.session, on_hangup=self.on_hangup,
                                                on_error=self.on_error, max_payload=max_payload)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.watchers.append(asyncio.get_running_loop().create_task(coroutine))

    def cancel(self) -> None:
        """End the pipeline at once: nothing queued for the caller matters any more."""
        if self.task is not None:
            self._spawn(self.task.cancel())

    def on_error(self, error: AsteriskStreamError) -> None:
        if self.outcome == "error":
            return  # already being dropped
        self.outcome = "error"
        log.warning("call %s: dropping the AudioSocket connection from %s: %s",
                    self.session.call_id or "(no UUID yet)", self.peer, error)
        self.session.event("protocol_error", detail=str(error)[:200])
        self._spawn(self.hang_up_and_close())

    async def hang_up_and_close(self) -> None:
        await self.link.hang_up()
        await self.link.close()
        self.cancel()

    def on_hangup(self, outcome: str, why: str) -> None:
        self.outcome = outcome
        log.info("call %s: Asterisk ended the call (%s)", self.session.call_id, why)
        self.cancel()

    def on_goodbye(self) -> None:
        self.session.event("hang_up", by="assistant")
        self.end_pipeline()

    def end_pipeline(self) -> None:
        # The hang-up packet goes now, and last: the input side closes the link as soon as the
        # EndFrame reaches it, before the output side could send anything more. What the caller
        # should hear has been sent (marks count as played when sent).
        self._spawn(self.link.hang_up())
        if self.task is not None:
            self._spawn(self.task.queue_frame(EndFrame()))

    async def end_stream(self) -> None:
        self.end_pipeline()

    async def expect_uuid(self) -> None:
        await asyncio.sleep(self.uuid_timeout_s)
        if not self.session.started:
            self.on_error(AsteriskStreamError(f"no UUID within {self.uuid_timeout_s:g} s"))

    def transport(self) -> LinkTransport:
        transport = LinkTransport(self.link, LinkParams(
            audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=16_000,
            audio_out_sample_rate=OUT_RATE, audio_out_10ms_chunks=2,  # 20 ms packets
            audio_out_end_silence_secs=0, serializer=self.serializer))

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: LinkTransport) -> None:
            if self.link.truncated and self.outcome == "completed":
                self.outcome = "caller_hung_up"  # the line dropped mid-packet
            self.cancel()

        return transport

    async def run(self) -> None:
        control = AriCallControl(config=self.ari, channel_id=lambda: self.session.call_id,
                                 end_stream=self.end_stream, call_id=lambda: self.session.call_id)
        self.task = self.runner.build_call(transport=self.transport(), session=self.session,
                                           audio_out_rate=OUT_RATE, control=control)
        self._spawn(self.expect_uuid())
        try:
            await self.runner.run(self.task)
        except Exception:
            self.outcome = "error"
            log.exception("call %s: pipeline failed", self.session.call_id or "(no UUID yet)")
        finally:
            self.session.end(self.outcome)
            await self.link.close()
            for watcher in self.watchers:
                if not watcher.done():
                    watcher.cancel()


class AudioSocketServer:
    """The TCP listener. ``start`` and ``stop`` run in the service's lifespan; ``port`` is the
    port actually bound (useful with port 0)."""

    def __init__(self, runner: ConversationRunner, *, host: str, port: int,
                 ari: AriConfig | None = None, max_payload: int = aus.DEFAULT_MAX_PAYLOAD,
                 uuid_timeout_s: float = 10.0) -> None:
        self._runner = runner
        self.host = host
        self.port = port
        self._ari = ari
        self._max_payload = max_payload
        self._uuid_timeout_s = uuid_timeout_s
        self._server: asyncio.Server | None = None
        self._calls: dict[asyncio.Task[None], _Call] = {}

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the address is taken or not ours."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("AudioSocket: listening on %s:%d", self.host, self.port)

    async def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop listening and end the calls in progress (outcome ``interrupted_by_restart``)."""
        if self._server is not None:
            self._server.close()
        for call in list(self._calls.values()):
            call.outcome = "interrupted_by_restart"
            if call.task is not None:
                await call.task.cancel()
        handlers = list(self._calls)
        if handlers:
            _, late = await asyncio.wait(handlers, timeout=timeout_s)
            for handler in late:
                handler.cancel()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        call = self._calls[handler] = _Call(self._runner, reader, writer, ari=self._ari,
                                            max_payload=self._max_payload,
                                            uuid_timeout_s=self._uuid_timeout_s)
        try:
            await call.run()
        finally:
            self._calls.pop(handler, None)


def _address(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
