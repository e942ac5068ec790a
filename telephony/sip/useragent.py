"""``SipUserAgent``: direct SIP calls over UDP and TCP, the network layer on the sans-I/O core.

Answering (UAS): an INVITE gets 100 Trying, 180 Ringing, then (after ``ring_s``) 200 OK with
the SDP answer (PCMU/PCMA + telephone-event; 488 with no codec in common) and the call runs
through the conversation runner (channel ``sip``, caller = the From user) with its audio on an
``RtpSession`` (``telephony.rtp.session``). ACK, BYE (200; outcome ``completed``), CANCEL
(200, and 487 for the INVITE), OPTIONS (200 with Allow/Accept/Supported), re-INVITE (hold and
unhold: 200 with the mirrored direction; a held call sends no audio), NOTIFY and INFO in a
dialog (200) are handled; other known methods get 405, unknown ones 501, in-dialog requests
for a dialog we do not have 481. The RFC 3261 transaction timers run on ``loop.call_later``.
Optional: digest authentication of INVITEs (401, then the retried INVITE) and a source
allow-list (others get 403).

Robustness: every datagram and TCP message goes through one guarded handler. Bytes that do
not parse get the 400 (or 505, 513, ...) when a response can still be addressed, else are
dropped; both are counted in ``stats``, and logged at DEBUG only. Nothing raises into the
listener.

For the transfer code (``telephony.sip.control``), the primitives:

- ``await ua.send_in_dialog(call, request) -> Response``: a request built with
  ``call.dialog.request(...)`` (REFER, BYE, re-INVITE, INFO) sent in a client transaction to
  the call's peer; returns the final response (a 2xx to a re-INVITE is ACKed). Raises
  ``SipTransactionError`` (408) when none comes.
- ``await ua.invite(target_uri, sdp_offer_bytes=..., from_user=..., timeout_s=...,
  on_provisional=...) -> (dialog | None, response)``: calls out (UAC): the 2xx is ACKed and the
  dialog returned (its ``SipLeg`` is ``ua.leg(dialog)``); a failure returns ``(None, response)``;
  no answer within ``timeout_s``, or the awaiting task cancelled, sends CANCEL (a 2xx that
  crosses it is ACKed and ended with BYE); as RFC 3261 §9.1 requires, not before a provisional
  response has come: until one does, the CANCEL waits (and with none, the INVITE times out).
  Open the leg's media with ``await ua.open_rtp()`` and
  ``make_offer(address=ua.media_address, port=rtp.port, ...)``.
- ``await ua.bye(leg)``: BYE in the leg's dialog, waiting briefly for the 200.
- ``SipLeg.on_notify(request)`` / ``on_bye()`` callbacks: in-dialog NOTIFY (answered with the
  status the callback returns, 200 when it returns none) and the peer's BYE. ``SipCall.rtp`` is the caller's ``RtpSession``, ``SipCall.task``
  its pipeline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from telephony.rtp.session import RtpSession
from telephony.sip.call import SipCall, SipLeg
from telephony.sip.dialog import Dialog, build_cancel, build_invite
from telephony.sip.digest import DigestAuthenticator, DigestCredentials, DigestResult
from telephony.sip.errors import DialogError, SipError, SipParseError
from telephony.sip.headers import Address, SipUri
from telephony.sip.message import (
    Request,
    Response,
    parse_message,
    response_for,
    stamp_received,
)
from telephony.sip.server import Flow, SipTransports, UdpFlow, salvage_response
from telephony.sip.transaction import (
    CancelTimer,
    Failed,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    PassToTU,
    Send,
    StartTimer,
    State,
    Terminated,
    Timers,
    TransactionKey,
    client_key,
    invite_key,
    server_key,
)

log = logging.getLogger("iva.sip")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, INFO"
KNOWN_METHODS = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "REFER", "UPDATE",
                           "PRACK"})  # understood, not accepted here: 405


class SipTransactionError(SipError):
    """A request of ours got no final response (timeout, transport error)."""

    status = 408


@dataclass(slots=True)
class SipStats:
    requests: int = 0
    responses: int = 0
    bad_messages: int = 0  # refused by the parser
    bad_answered: int = 0  # ... and answered with 400 (or 505, 513, ...)
    dropped: int = 0  # could not be answered, or broke our handling
    forbidden: int = 0
    unauthorized: int = 0
    calls: int = 0


@dataclass(frozen=True, slots=True)
class SipAuth:
    user: str
    password: str
    realm: str = "iva"


@dataclass(eq=False, slots=True)
class _Entry:
    """A transaction in our table, with where its messages go."""

    tx: (InviteServerTransaction | NonInviteServerTransaction | InviteClientTransaction
         | NonInviteClientTransaction)
    flow: Flow
    dest: tuple[str, int] | None = None  # a client transaction's next hop (UDP)
    on_response: Callable[[Response], None] | None = None
    on_failed: Callable[[str], None] | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)


def parse_allow_list(text: str | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``IVA_SIP_ALLOW``: comma-separated IPs and CIDRs; empty: everyone."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in (text or "").split(",") if part.strip()]


class SipUserAgent:
    """The SIP service. ``start``/``stop`` run in the app's lifespan; ``port`` is the port bound
    (useful with port 0). ``runner`` is the conversation side (``ConversationEngine``)."""

    def __init__(self, runner: object, *, host: str = "127.0.0.1", port: int = 5060,
                 public_address: str | None = None, rtp_ports: tuple[int, int] = (0, 0),
                 auth: SipAuth | None = None, allow: Iterable[str] | str | None = None,
                 ring_s: float = 0.0, max_calls: int = 50, timers: Timers | None = None,
                 user: str = "iva") -> None:
        self.runner = runner
        self.host = host
        self.media_address = public_address or ("127.0.0.1" if host in ("0.0.0.0", "::")
                                                else host)
        self.rtp_ports = rtp_ports
        self.auth = auth
        allow_text = allow if isinstance(allow, str) or allow is None else ",".join(allow)
        self.allow = parse_allow_list(allow_text)
        self.ring_s = ring_s
        self.max_calls = max_calls
        self.timers = timers or Timers()
        self.user = user
        self.stats = SipStats()
        self.transports = SipTransports(host, port, self.handle_message)
        self.calls: dict[TransactionKey, SipCall] = {}  # by their INVITE's server key
        self._dialogs: dict[tuple[str, str, str], SipLeg] = {}
        self._server: dict[TransactionKey, _Entry] = {}
        self._client: dict[TransactionKey, _Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._authenticator = (DigestAuthenticator(secrets.token_bytes(32), auth.realm)
                               if auth else None)

    @property
    def port(self) -> int:
        return self.transports.port

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen; raises ``OSError`` when the UDP port is taken or not ours."""
        await self.transports.start()
        if self.media_address != self.host:
            log.info("SIP: advertising %s in SDP and Contact", self.media_address)
        log.info("SIP: listening on %s:%d (UDP, TCP)", self.host, self.port)

    async def stop(self, *, timeout_s: float = 5.0) -> None:
        """End the calls in progress (outcome ``interrupted_by_restart``) and stop listening."""
        for call in list(self.calls.values()):
            call.interrupt("interrupted_by_restart")
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout_s)
            for task in late:
                task.cancel()
        for entry in list(self._server.values()) + list(self._client.values()):
            for handle in entry.timers.values():
                handle.cancel()
        await self.transports.stop()

    def spawn(self, coroutine) -> asyncio.Task[None]:  # noqa: ANN001 - any coroutine
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def contact(self, transport: str = "UDP") -> Address:
        uri = SipUri("sip", self.user, self.media_address, self.port)
        if transport != "UDP":
            uri = uri.with_param("transport", transport.lower())
        return Address(uri)

    async def open_rtp(self) -> RtpSession:
        """A bound RTP endpoint for a new leg (ours to ``close``)."""
        rtp = RtpSession(self.host, ports=self.rtp_ports)
        await rtp.open()
        return rtp

    # ------------------------------------------------------------------ incoming bytes
    def handle_message(self, data: bytes, flow: Flow) -> None:
        """One datagram or TCP message; never raises."""
        try:
            try:
                message = parse_message(data, stream=flow.reliable)
            except SipParseError as exc:
                self._refuse(data, flow, exc)
                return
            if isinstance(message, Request):
                self.stats.requests += 1
                self._on_request(stamp_received(message, *flow.peer), flow)
            else:
                self.stats.responses += 1
                self._on_response(message)
        except Exception:
            self.stats.dropped += 1
            log.debug("SIP message from %s:%d broke its handling", *flow.peer, exc_info=True)

    def _refuse(self, data: bytes, flow: Flow, error: SipParseError) -> None:
        self.stats.bad_messages += 1
        if not self._allowed(flow.peer[0]):
            self.stats.forbidden += 1
            return
        response = salvage_response(data, error)
        log.debug("bad SIP message from %s:%d (%s): %s", *flow.peer,
                  "answered" if response else "dropped", error)
        if response is None:
            self.stats.dropped += 1
            return
        self.stats.bad_answered += 1
        flow.send(response)

    def _allowed(self, host: str) -> bool:
        if not self.allow:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.allow)

    # ------------------------------------------------------------------ transactions
    def _run(self, entry: _Entry, actions: list) -> None:
        """Carry out a transaction's actions; messages for the TU go last, after the sends."""
        passed: list[Request | Response] = []
        failures: list[str] = []
        for action in actions:
            if isinstance(action, Send):
                self._send(entry, action.message)
            elif isinstance(action, StartTimer):
                old = entry.timers.pop(action.name, None)
                if old is not None:
                    old.cancel()
                entry.timers[action.name] = asyncio.get_running_loop().call_later(
                    action.delay, self._fire, entry, action.name)
            elif isinstance(action, CancelTimer):
                handle = entry.timers.pop(action.name, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(action, PassToTU):
                passed.append(action.message)
            elif isinstance(action, Failed):
                failures.append(action.reason)
            elif isinstance(action, Terminated):
                self._forget(entry)
        for message in passed:
            if isinstance(message, Request):
                self._dispatch(message, entry)
            elif entry.on_response is not None:
                entry.on_response(message)
        for reason in failures:
            if entry.on_failed is not None:
                entry.on_failed(reason)

    def _fire(self, entry: _Entry, name: str) -> None:
        entry.timers.pop(name, None)
        try:
            self._run(entry, entry.tx.timer_fired(name))
        except Exception:
            log.exception("SIP timer %s failed", name)

    def _forget(self, entry: _Entry) -> None:
        for handle in entry.timers.values():
            handle.cancel()
        entry.timers.clear()
        table = self._server if entry.tx.SERVER else self._client
        if table.get(entry.tx.key) is entry:
            del table[entry.tx.key]

    def _send(self, entry: _Entry, message: Request | Response) -> None:
        data = bytes(message)
        if isinstance(message, Response):
            if entry.flow.reliable:
                entry.flow.send(data)
            else:
                self.transports.send_udp(data, message.top_via.response_address())
        else:
            entry.flow.send(data, entry.dest)

    def respond(self, entry: _Entry, response: Response) -> None:
        self._run(entry, entry.tx.send_response(response))

    def _reply(self, entry: _Entry, request: Request, status: int, *,
               headers: Iterable[tuple[str, str]] = (), leg: SipLeg | None = None) -> None:
        if leg is not None:
            response = leg.dialog.response(request, status, headers=headers)
        else:
            response = response_for(request, status, to_tag=secrets.token_hex(8),
                                    headers=headers)
        self.respond(entry, response)

    # ------------------------------------------------------------------ requests in
    def _on_request(self, request: Request, flow: Flow) -> None:
        if not self._allowed(flow.peer[0]):
            self.stats.forbidden += 1
            if request.method != "ACK":
                flow.send(bytes(response_for(request, 403, to_tag=secrets.token_hex(8))),
                          request.top_via.response_address() if not flow.reliable else None)
            return
        key = server_key(request)
        if request.method == "ACK":
            entry = self._server.get(key)
            if entry is not None:
                self._run(entry, entry.tx.receive(request))
            else:
                self._on_ack(request)
            return
        entry = self._server.get(key)
        if entry is not None:  # a retransmission
            self._run(entry, entry.tx.receive(request))
            return
        if request.method == "INVITE":
            tx: InviteServerTransaction | NonInviteServerTransaction = InviteServerTransaction(
                request, reliable=flow.reliable, timers=self.timers)
            entry = self._server[key] = _Entry(tx, flow)
            self._run(entry, tx.start())
        else:
            tx = NonInviteServerTransaction(request, reliable=flow.reliable, timers=self.timers)
            entry = self._server[key] = _Entry(tx, flow)
            self._run(entry, tx.start())

    def _dispatch(self, request: Request, entry: _Entry) -> None:
        """The transaction user: what a new request means."""
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        if method == "CANCEL":
            self._on_cancel(request, entry)
            return
        if request.to.tag is not None:
            self._in_dialog(request, entry)
        elif method == "INVITE":
            self._new_call(request, entry)
        elif method == "OPTIONS":
            self._reply(entry, request, 200, headers=_capabilities())
        elif method in ("BYE", "NOTIFY", "INFO"):
            self._reply(entry, request, 481)
        elif method in KNOWN_METHODS:
            self._reply(entry, request, 405, headers=[("Allow", ALLOW)])
        else:
            self._reply(entry, request, 501, headers=[("Allow", ALLOW)])

    def _leg_for(self, message: Request | Response) -> SipLeg | None:
        ours, theirs = ((message.to, message.from_) if isinstance(message, Request)
                        else (message.from_, message.to))
        if ours.tag is None or theirs.tag is None:
            return None
        return self._dialogs.get((message.call_id, ours.tag, theirs.tag))

    def _on_ack(self, ack: Request) -> None:
        leg = self._leg_for(ack)
        if leg is None:
            return  # an ACK for nothing we know: dropped, as §17.2.3 leaves it
        try:
            leg.dialog.receive_request(ack)
        except DialogError:
            return
        invite = leg.invite_entry
        if invite is not None and invite.tx.request.cseq.number == ack.cseq.number:
            self._run(invite, invite.tx.ack_received())
        leg.acked()

    def _on_cancel(self, cancel: Request, entry: _Entry) -> None:
        invite = self._server.get(invite_key(cancel))
        if invite is None:
            self._reply(entry, cancel, 481)
            return
        self.respond(entry, response_for(cancel, 200))
        call = self.calls.get(invite.tx.key)
        if invite.tx.state is State.PROCEEDING:
            if call is not None:
                call.cancelled(invite)
            else:
                self._reply(invite, invite.tx.request, 487)

    def _in_dialog(self, request: Request, entry: _Entry) -> None:
        leg = self._leg_for(request)
        if leg is None:
            self._reply(entry, request, 481)
            return
        try:
            leg.dialog.receive_request(request)
        except DialogError as exc:
            extra = [("Retry-After", "1")] if exc.status == 500 else []
            self._reply(entry, request, exc.status or 500, headers=extra)
            return
        method = request.method
        if method == "BYE":
            self.respond(entry, leg.dialog.response(request, 200))
            self.forget_leg(leg)
            leg.remote_hung_up()
        elif method == "INVITE":
            leg.invite_entry = entry
            leg.reinvite(request, entry)
        elif method in ("NOTIFY", "INFO"):
            # The call's handler says how to answer (a NOTIFY for no running transfer: 481).
            self.respond(entry, leg.dialog.response(request, leg.received(request)))
        elif method == "OPTIONS":
            self.respond(entry, leg.dialog.response(request, 200, headers=_capabilities()))
        elif method in KNOWN_METHODS:
            self.respond(entry, leg.dialog.response(request, 405, headers=[("Allow", ALLOW)]))
        else:
            self.respond(entry, leg.dialog.response(request, 501, headers=[("Allow", ALLOW)]))

    def _new_call(self, invite: Request, entry: _Entry) -> None:
        if self.auth is not None and not self._authorized(invite, entry):
            return
        if len(self.calls) >= self.max_calls:
            self._reply(entry, invite, 486)
            return
        call = SipCall(self, invite, entry)
        self.calls[entry.tx.key] = call
        self.stats.calls += 1
        call.task = self.spawn(call.run())

    def _authorized(self, invite: Request, entry: _Entry) -> bool:
        assert self.auth is not None and self._authenticator is not None
        peer = entry.flow.peer[0]
        now = time.time()
        result = DigestResult.INVALID
        credentials = invite.headers.get("Authorization")
        if credentials is not None:
            try:
                result = self._authenticator.check(
                    credentials, method="INVITE", password=self.auth.password, now=now,
                    context=peer, request_uri=str(invite.uri))
                if result is DigestResult.OK and _username(credentials) != self.auth.user:
                    result = DigestResult.INVALID
            except SipParseError:
                self._reply(entry, invite, 400)
                return False
        if result is DigestResult.OK:
            return True
        self.stats.unauthorized += 1
        challenge = self._authenticator.challenge(now=now, context=peer,
                                                  stale=result is DigestResult.STALE)
        self._reply(entry, invite, 401, headers=[("WWW-Authenticate", str(challenge))])
        return False

    def register_leg(self, leg: SipLeg) -> None:
        self._dialogs[leg.dialog.id] = leg

    def forget_leg(self, leg: SipLeg) -> None:
        self._dialogs.pop(leg.dialog.id, None)

    def leg(self, dialog: Dialog) -> SipLeg | None:
        return self._dialogs.get(dialog.id)

    # ------------------------------------------------------------------ responses in
    def _on_response(self, response: Response) -> None:
        entry = self._client.get(client_key(response))
        if entry is not None:
            self._run(entry, entry.tx.receive(response))

    # ------------------------------------------------------------------ requests out
    def _next_hop(self, leg: SipLeg) -> tuple[str, int]:
        dialog = leg.dialog
        uri = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
        return uri.param("maddr") or uri.host.strip("[]"), uri.port or 5060

    def _flow_for(self, leg: SipLeg) -> Flow:
        if leg.flow.reliable and leg.flow.open:
            return leg.flow
        assert self.transports.udp is not None
        return UdpFlow(self.transports.udp, self._next_hop(leg))

    async def send_in_dialog(self, leg: SipLeg, request: Request) -> Response:
        """Send ``request`` (built by ``leg.dialog``) and return its final response."""
        flow = self._flow_for(leg)
        response = await self._transact(request, flow, None if flow.reliable
                                        else self._next_hop(leg))
        leg.dialog.receive_response(response)
        if request.method == "INVITE" and response.success:
            flow.send(bytes(leg.dialog.ack()), None if flow.reliable else self._next_hop(leg))
        return response

    async def bye(self, leg: SipLeg, *, wait_s: float = 2.0) -> Response | None:
        """End ``leg``'s dialog: BYE, and the 200 if it comes within ``wait_s``."""
        if leg.dialog.state.value == "terminated":
            return None
        request = leg.dialog.bye()
        flow = self._flow_for(leg)
        try:  # the leg stays known meanwhile: a late ACK for our 2xx must still find it
            return await asyncio.wait_for(
                self._transact(request, flow, None if flow.reliable else self._next_hop(leg)),
                wait_s)
        except (TimeoutError, SipTransactionError):
            return None
        finally:
            self.forget_leg(leg)

    def _transact(self, request: Request, flow: Flow, dest: tuple[str, int] | None,
                  on_provisional: Callable[[Response], None] | None = None,
                  ) -> asyncio.Future[Response]:
        """Start a client transaction; the future is its final response (the first one, for
        an INVITE: later 2xx go to ``on_provisional``'s sibling in ``invite``)."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def on_response(response: Response) -> None:
            if response.provisional:
                if on_provisional is not None:
                    on_provisional(response)
            elif not future.done():
                future.set_result(response)

        def on_failed(reason: str) -> None:
            if not future.done():
                future.set_exception(SipTransactionError(
                    f"{request.method} to {request.uri}: {reason}"))

        tx: InviteClientTransaction | NonInviteClientTransaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(request, reliable=flow.reliable, timers=self.timers)
        else:
            tx = NonInviteClientTransaction(request, reliable=flow.reliable, timers=self.timers)
        entry = _Entry(tx, flow, dest, on_response, on_failed)
        self._client[tx.key] = entry
        self._run(entry, tx.start())
        return future

    async def invite(self, target_uri: str | SipUri, *, sdp_offer_bytes: bytes,
                     from_user: str | None = None, timeout_s: float = 30.0,
                     on_provisional: Callable[[Response], None] | None = None,
                     headers: Iterable[tuple[str, str]] = ()) -> tuple[Dialog | None, Response]:
        """Call ``target_uri`` over UDP (see the module docstring)."""
        assert self.transports.udp is not None
        uri = target_uri if isinstance(target_uri, SipUri) else SipUri.parse(target_uri)
        contact = self.contact()
        sender = Address(SipUri("sip", from_user or self.user, self.media_address, self.port))
        request = build_invite(uri, from_=sender, contact=contact, body=sdp_offer_bytes,
                               content_type="application/sdp", headers=headers)
        dest = (uri.param("maddr") or uri.host.strip("[]"), uri.port or 5060)
        flow = UdpFlow(self.transports.udp, dest)
        state: dict[str, object] = {"dialog": None, "ringing": False, "gave_up": False,
                                    "cancelled": False}

        def provisional(response: Response) -> None:
            if response.success:  # a 2xx retransmitted, or a second one: ACK it again
                dialog = state["dialog"]
                if isinstance(dialog, Dialog):
                    flow.send(bytes(dialog.ack()), dest)
                return
            state["ringing"] = True
            if state["gave_up"]:  # a CANCEL was waiting for this provisional response
                self._cancel_once(request, flow, dest, state)
            if on_provisional is not None:
                on_provisional(response)

        future = self._transact(request, flow, dest, provisional)
        entry = self._client[client_key(request)]
        final_response = entry.on_response

        def any_response(response: Response) -> None:
            if response.success and state["dialog"] is not None:
                provisional(response)
            else:
                assert final_response is not None
                final_response(response)

        entry.on_response = any_response
        try:
            response = await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            response = await self._cancel_invite(request, flow, dest, future, state)
        except asyncio.CancelledError:
            state["gave_up"] = True
            if state["ringing"]:
                self._cancel_once(request, flow, dest, state)
            future.add_done_callback(lambda done: self._end_late_answer(request, done, dest))
            raise
        if not response.success:
            return None, response
        dialog = Dialog.from_response(request, response)
        state["dialog"] = dialog
        flow.send(bytes(dialog.ack()), dest)
        leg = SipLeg(self, dialog, flow)
        self.register_leg(leg)
        if state["gave_up"]:  # the 2xx crossed our CANCEL: end it at once
            await self.bye(leg)
            return None, response
        return dialog, response

    async def _cancel_invite(self, request: Request, flow: Flow, dest: tuple[str, int],
                             future: asyncio.Future[Response],
                             state: dict[str, object]) -> Response:
        """No final answer in time: CANCEL, then wait for the 487 (or a crossing 2xx). With no
        provisional response yet the CANCEL waits for one (``provisional`` sends it), and the
        INVITE's own timer B (64·T1) ends the wait if nothing ever comes."""
        state["gave_up"] = True
        if state["ringing"]:
            self._cancel_once(request, flow, dest, state)
        try:
            return await asyncio.wait_for(asyncio.shield(future), 64 * self.timers.t1)
        except TimeoutError:
            raise SipTransactionError(f"no answer from {request.uri}") from None

    def _cancel_once(self, request: Request, flow: Flow, dest: tuple[str, int],
                     state: dict[str, object]) -> None:
        if not state["cancelled"]:
            state["cancelled"] = True
            self._transact(build_cancel(request), flow, dest)

    def _end_late_answer(self, request: Request, future: asyncio.Future[Response],
                         dest: tuple[str, int]) -> None:
        """The caller of ``invite`` went away: a 2xx that still comes is ACKed and ended."""
        if future.cancelled() or future.exception() is not None:
            return
        response = future.result()
        if not response.success:
            return
        assert self.transports.udp is not None
        dialog = Dialog.from_response(request, response)
        flow = UdpFlow(self.transports.udp, dest)
        flow.send(bytes(dialog.ack()), dest)
        self.spawn(self.bye(SipLeg(self, dialog, flow)))


def _capabilities() -> list[tuple[str, str]]:
    return [("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", ""),
            ("Accept-Language", "en")]


def _username(credentials: str) -> str | None:
    try:
        return DigestCredentials.parse(credentials).username
    except SipParseError:
        return None


def sip_user_agent(runner: object, settings: object) -> SipUserAgent:
    """The user agent the service runs, from ``voice.settings.Settings``."""
    s: Any = settings
    auth = None
    if s.sip_auth_user:
        if not s.sip_auth_password:
            raise ValueError("IVA_SIP_AUTH_USER needs IVA_SIP_AUTH_PASSWORD")
        auth = SipAuth(s.sip_auth_user, s.sip_auth_password, s.sip_auth_realm)
    low, high = s.rtp_port_min, s.rtp_port_max
    if low and high < low:
        raise ValueError("IVA_RTP_PORT_MAX is below IVA_RTP_PORT_MIN")
    return SipUserAgent(runner, host=s.sip_host, port=s.sip_port,
                        public_address=s.sip_public_address,
                        rtp_ports=(low, high) if low else (0, 0), auth=auth, allow=s.sip_allow,
                        ring_s=s.sip_ring_s)
