"""One call from a browser, from the page's offer to the end of its record.

The offer creates the caller's peer connection and the call's pipeline (the same as every
bridge's: ``ConversationRunner.build_call``), which runs in the background while the answer
goes back to the page. The call begins (``CallSession.begin``, channel ``webrtc``, no caller
ID) once the connection is up and the pipeline has started; then the assistant greets. Every
turn of the transcript goes to the page as a caption on the data channel.

It ends when the page hangs up (``{"type": "hangup"}``: ``completed``), the connection drops
(``caller_hung_up``), the assistant says goodbye or call control hangs up (``completed``), or
it never connects (no record at all). After a transfer, the agent's leg ends with it and the
outcome stays ``transferred``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from pipecat.frames.frames import EndFrame, InterruptionFrame, OutputAudioRawFrame
from pipecat.pipeline.task import PipelineTask
from pipecat.transports.base_transport import BaseTransport
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

from telephony.frames import CallStartedFrame
from telephony.webrtc.agent import RATE as AGENT_RATE
from telephony.webrtc.agent import AgentLeg, AgentSpeech
from telephony.webrtc.captions import call_message, caption_message, is_hangup
from telephony.webrtc.control import WebRTCCallControl, WebRTCTransferError
from telephony.webrtc.transport import BrowserCallTransport, call_params

__all__ = ["AUDIO_OUT_RATE", "BrowserCall", "BrowserCallRunner", "CallEnded"]

log = logging.getLogger("iva.webrtc")

# What the browser gets: Opus carries it at 48 kHz; piper speaks at 22.05 kHz.
AUDIO_OUT_RATE = 24_000


class CallEnded(Exception):
    """The call is over (or was never connected): nothing can join it."""


class BrowserCallRunner(AgentSpeech, Protocol):
    """What a browser call needs from the conversation side (``voice.engine``)."""

    def new_session(self, channel: str) -> Any: ...
    def build_call(self, *, transport: BaseTransport, session: Any, audio_out_rate: int,
                   control: Any = None) -> PipelineTask: ...
    async def run(self, task: PipelineTask) -> None: ...
    def monitor_finished(self, call_id: str) -> None: ...


class BrowserCall:
    """One browser call (see the module docstring). Runs on the service's event loop."""

    def __init__(self, connection: SmallWebRTCConnection, *, runner: BrowserCallRunner,
                 agent_answer_timeout_s: float, connect_timeout_s: float = 30.0,
                 on_finished: Callable[[BrowserCall], None] = lambda call: None) -> None:
        self.call_id = "WR" + secrets.token_hex(16)
        self.connection = connection
        self.agent: AgentLeg | None = None
        self._runner = runner
        self._connect_timeout_s = connect_timeout_s
        self._on_finished = on_finished
        self._outcome = "caller_hung_up"
        self._ended = asyncio.Event()
        self._peer_ready = asyncio.Event()
        self._pipeline_ready = asyncio.Event()
        self._agent_ready = asyncio.Event()
        self._captioned_answer: int | None = None
        self._agent_on_air = False
        self._ending = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_task: asyncio.Task[None] | None = None

        self.session = runner.new_session("webrtc")
        self.session.on_goodbye_heard = self._goodbye
        self.session.turn_listeners.append(self._caption)
        self.transport = BrowserCallTransport(connection, call_params(AUDIO_OUT_RATE),
                                              listener=self)
        control = WebRTCCallControl(self, answer_timeout_s=agent_answer_timeout_s)
        self.task = runner.build_call(transport=self.transport, session=self.session,
                                      audio_out_rate=AUDIO_OUT_RATE, control=control)
        self._wire_events()

    @property
    def pc_id(self) -> str:
        return self.connection.pc_id

    @property
    def finished(self) -> bool:
        return self._ended.is_set()

    def start(self) -> None:
        """Run the call in the background."""
        self._run_task = asyncio.create_task(self._run(), name=f"webrtc-{self.call_id}")

    async def wait_finished(self) -> None:
        if self._run_task is not None:
            await asyncio.shield(self._run_task)

    def _wire_events(self) -> None:
        @self.transport.event_handler("on_client_connected")
        async def _connected(_transport: BaseTransport, _connection: Any) -> None:
            self._peer_ready.set()

        @self.transport.event_handler("on_client_disconnected")
        async def _gone(_transport: BaseTransport, _connection: Any) -> None:
            await self._cancel()  # the page closed without hanging up: outcome caller_hung_up

        @self.transport.event_handler("on_app_message")
        async def _message(_transport: BaseTransport, message: Any, _sender: str) -> None:
            if is_hangup(message):
                await self.end(outcome="completed", at_once=True)

        @self.task.event_handler("on_pipeline_started")
        async def _started(_task: PipelineTask, _frame: Any) -> None:
            self._pipeline_ready.set()

    async def _run(self) -> None:
        begin = self._spawn(self._begin_when_ready())
        try:
            await self._runner.run(self.task)
        except Exception:
            self._outcome = "error"
            log.exception("call %s: pipeline failed", self.call_id)
        finally:
            self._ended.set()
            begin.cancel()
            for task in list(self._tasks):
                task.cancel()
            if self.agent is not None:
                await self.agent.close()
            self.session.end(self._outcome)
            if self.session.call_id:
                self._runner.monitor_finished(self.session.call_id)
            else:
                log.info("browser call %s: never connected; no record kept", self.call_id)
            self._on_finished(self)

    async def _begin_when_ready(self) -> None:
        """Begin the call once the browser is connected and the pipeline runs."""
        try:
            await asyncio.wait_for(asyncio.gather(self._peer_ready.wait(),
                                                  self._pipeline_ready.wait()),
                                   self._connect_timeout_s)
        except TimeoutError:
            log.warning("browser call %s: not connected within %.0f s; dropped", self.call_id,
                        self._connect_timeout_s)
            await self._cancel()
            return
        self.session.begin(self.call_id, caller=None, meta={"pc_id": self.pc_id})
        self._send(call_message("connected", self.call_id))
        await self.task.queue_frame(CallStartedFrame(call_id=self.call_id, caller=None,
                                                     channel="webrtc"))

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- ending -------------------------------------------------------------------------

    async def end(self, *, outcome: str, at_once: bool = False) -> None:
        """End the call: after what is queued for the caller has been played (a goodbye), or
        ``at_once`` (the caller has gone)."""
        if self.finished or (self._ending and not at_once):
            return
        self._ending = True
        self._outcome = outcome
        if at_once:
            await self._cancel()
        else:
            await self.task.queue_frame(EndFrame())

    async def _cancel(self) -> None:
        if not self.finished:
            await self.task.cancel()

    def _goodbye(self) -> None:
        self.session.event("hang_up", by="assistant")
        self._spawn(self.end(outcome="completed"))

    # --- media (telephony.webrtc.transport.MediaListener) --------------------------------

    def caller_audio(self, pcm16k: bytes) -> None:
        if self.agent is not None:
            self.agent.hear(pcm16k)

    def audio_sent(self) -> None:
        self.session.audio_sent()
        turn = self.session.current
        if turn is not None and not turn.finished and turn.seq != self._captioned_answer:
            # The answer is being spoken: caption it now; its final text follows when it ends.
            self._captioned_answer = turn.seq
            self._send(caption_message({"speaker": "assistant", "text": turn.text,
                                        "start_ms": turn.start_ms}, final=False))

    def mark_played(self, name: str) -> None:
        self.session.mark_played(name)

    # --- the page ------------------------------------------------------------------------

    def _caption(self, turn: dict[str, Any]) -> None:
        if turn.get("speaker") in ("caller", "assistant", "agent") and turn.get("text"):
            self._send(caption_message(turn))

    def _send(self, message: dict[str, Any]) -> None:
        if not self.finished:
            self.connection.send_app_message(message)

    # --- an agent answering in the browser -----------------------------------------------

    async def attach_agent(self, connection: SmallWebRTCConnection, *, agent: str,
                           speech: AgentSpeech) -> None:
        """The agent's own peer connection (already answered): bridge it to this call."""
        if self.finished:
            raise CallEnded(f"call {self.call_id} has ended")
        previous, self.agent = self.agent, AgentLeg(
            connection, agent=agent, speech=speech, to_caller=self._play_to_caller,
            on_words=self._agent_words, now_ms=self.session.now_ms,
            on_connected=self._agent_connected, on_gone=self._agent_gone)
        if previous is not None:  # the agent reloaded the page: the new connection wins
            await previous.close()
        await self.agent.start()

    async def wait_for_agent(self, handoff_id: str, timeout_s: float) -> str:
        """``WebRTCCallControl.transfer``: until the agent's browser is connected."""
        try:
            await asyncio.wait_for(self._agent_ready.wait(), timeout_s)
        except TimeoutError:
            if self.agent is not None:
                await self.agent.close()
                self.agent = None
            raise WebRTCTransferError(
                f"the agent did not answer handoff {handoff_id} in the browser within "
                f"{timeout_s:g} s") from None
        assert self.agent is not None
        return self.agent.agent

    def _agent_connected(self) -> None:
        self._agent_ready.set()

    async def _agent_gone(self) -> None:
        """The agent hung up: the call is over for the caller too."""
        await self.end(outcome="transferred")

    async def _play_to_caller(self, pcm16k: bytes) -> None:
        """The agent's voice, from the moment the handover has completed (it marks the call
        transferred once the assistant's announcement has been heard, and stops the hold
        tones). Until then the caller is still hearing those; the agent already hears them."""
        if self.finished or self.session.final_outcome != "transferred":
            return
        if not self._agent_on_air:
            self._agent_on_air = True
            # Hold tones still queued for the caller would delay the agent's voice for the
            # rest of the call: drop them (pipecat's interruption empties the output queue).
            await self.task.queue_frame(InterruptionFrame())
            self._send(call_message("transferred", self.call_id))
        await self.task.queue_frame(OutputAudioRawFrame(audio=pcm16k, sample_rate=AGENT_RATE,
                                                        num_channels=1))

    def _agent_words(self, text: str, start_ms: int, end_ms: int) -> None:
        self.session.agent_turn(text, start_ms=start_ms, end_ms=end_ms,
                                meta={"after_transfer": True})
