"""SIP transactions (RFC 3261 §17, as corrected by RFC 6026), as sans-I/O state machines.

Four machines, each a table of transitions: ``InviteServerTransaction``,
``NonInviteServerTransaction``, ``InviteClientTransaction`` and ``NonInviteClientTransaction``.
They take events (a message received, a response to send, a timer that fired, a transport
error) and return the actions for the caller to perform, in order:

- ``Send(message)``: hand it to the transport;
- ``StartTimer(name, delay)``: call ``timer_fired(name)`` in ``delay`` seconds (replacing any
  pending timer of that name on this transaction); ``CancelTimer(name)``: forget it;
- ``PassToTU(message)``: give it to the transaction user (the dialog and call logic);
- ``Failed(reason)``: the transaction failed: a client's request got no final response (treat
  as 408, or 503 on a transport error); an INVITE server's final response got no ACK (for a
  2xx: end the call with BYE, §13.3.1.4);
- ``Terminated()``: remove the transaction from the table.

Timers follow §17 with T1 = 0.5 s, T2 = 4 s, T4 = 5 s: over a reliable transport (TCP, TLS)
there are no retransmission timers (A, E, G) and the wait timers D, I, J, K are zero, so those
states end at once. A timer that fires after it was cancelled is ignored, and so is every
event once the transaction has terminated. Answering in a state that does not allow it (a
second final response) raises ``SipStateError``: a bug in the caller.

RFC 6026's Accepted state is used for 2xx to INVITE. The INVITE server transaction stays
alive for 64*T1 after sending it, absorbs INVITE retransmissions, and also does the UAS core's
duty of retransmitting the 2xx until the ACK comes (§13.3.1.4): that ACK has a branch of its
own and reaches the dialog, so the call code reports it with ``ack_received()``. The INVITE
client transaction passes each (retransmitted) 2xx to the TU, which answers each with an ACK.

``server_key(request)`` / ``client_key(response)`` give the §17.1.3 / §17.2.3 matching key:
branch, sent-by and method, an ACK counting as its INVITE, CANCEL as its own method
(``invite_key(cancel)`` finds the INVITE that a CANCEL cancels).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from telephony.sip.errors import SipStateError
from telephony.sip.headers import Headers
from telephony.sip.message import MAGIC_COOKIE, Message, Request, Response, response_for

__all__ = [
    "Action", "CancelTimer", "Failed", "InviteClientTransaction", "InviteServerTransaction",
    "NonInviteClientTransaction", "NonInviteServerTransaction", "PassToTU", "Send", "StartTimer",
    "State", "Terminated", "Timers", "TransactionKey", "build_ack", "client_key", "invite_key",
    "server_key",
]


# ------------------------------------------------------------------------------ actions
@dataclass(frozen=True, slots=True)
class Send:
    message: Message


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: str
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class PassToTU:
    message: Message


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


@dataclass(frozen=True, slots=True)
class Terminated:
    pass


Action = Send | StartTimer | CancelTimer | PassToTU | Failed | Terminated


@dataclass(frozen=True, slots=True)
class Timers:
    t1: float = 0.5  # round-trip estimate
    t2: float = 4.0  # longest retransmission interval for non-INVITE requests and responses
    t4: float = 5.0  # longest time a message stays in the network


class State(Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


# ------------------------------------------------------------------------------ effects
# An effect is (verb, timer name): what a transition does, in order, before entering its state.
Effect = tuple[str, str]
SEND, RESEND, PASS, ACK = ("send", ""), ("resend", ""), ("pass", ""), ("ack", "")


def start(timer: str) -> Effect:
    return ("start", timer)


def backoff(timer: str) -> Effect:
    """Restart with the interval doubled (capped at T2, except for Timer A)."""
    return ("backoff", timer)


def at_t2(timer: str) -> Effect:
    return ("at_t2", timer)


def cancel(timer: str) -> Effect:
    return ("cancel", timer)


def fail(reason: str) -> Effect:
    return ("fail", reason)


Table = dict[tuple[State, str], tuple[State, tuple[Effect, ...]]]
S = State


def _kind(response: Response) -> str:
    return "1xx" if response.status < 200 else "2xx" if response.status < 300 else "3xx-6xx"


# ------------------------------------------------------------------------------ the engine
class _Transaction:
    TABLE: ClassVar[Table]
    FIRST: ClassVar[State]
    LOCAL: ClassVar[frozenset[str]] = frozenset()  # events we cause: in a wrong state, a bug
    SERVER: ClassVar[bool] = False

    def __init__(self, request: Request, *, reliable: bool = False,
                 timers: Timers = Timers()) -> None:
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = self.FIRST
        self.last_sent: Message | None = None
        self.ack: Request | None = None
        self._intervals: dict[str, float] = {}  # running timers, by name
        self._fired: dict[str, float] = {}  # the interval each timer last fired after

    def _begin(self) -> list[Action]:
        if self.last_sent is not None:
            raise SipStateError(f"{type(self).__name__} has already started")
        return self._handle("start", self.request)

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    @property
    def key(self) -> TransactionKey:
        """What the transaction table files it under (see ``server_key``, ``client_key``)."""
        return server_key(self.request) if self.SERVER else client_key(self.request)

    def timer_fired(self, name: str) -> list[Action]:
        if name not in self._intervals:
            return []  # cancelled, or never ours: ignore
        self._fired[name] = self._intervals.pop(name)
        return self._handle(name, None)

    def transport_error(self) -> list[Action]:
        if self.terminated:
            return []
        return self._enter(State.TERMINATED, [Failed("transport error")])

    def _delay(self, timer: str) -> float | None:
        """The first interval of ``timer``; None when it does not run on this transport."""
        t1, t4, reliable = self.timers.t1, self.timers.t4, self.reliable
        delays: dict[str, float | None] = {
            # D is "at least 32 s" over UDP: 64*T1 is that with the default T1
            "A": None if reliable else t1, "B": 64 * t1, "D": 0 if reliable else 64 * t1,
            "E": None if reliable else t1, "F": 64 * t1, "G": None if reliable else t1,
            "H": 64 * t1, "I": 0 if reliable else t4, "J": 0 if reliable else 64 * t1,
            "K": 0 if reliable else t4, "L": 64 * t1, "M": 64 * t1,
        }
        return delays[timer]

    def _handle(self, event: str, message: Message | None) -> list[Action]:
        actions: list[Action] = []
        queue: list[tuple[str, Message | None]] = [(event, message)]
        while queue:
            event, message = queue.pop(0)
            row = self.TABLE.get((self.state, event))
            if row is None:
                if event in self.LOCAL and not self.terminated:
                    raise SipStateError(
                        f"{type(self).__name__}: cannot {event} in {self.state.value}")
                continue  # a stray retransmission: absorbed
            next_state, effects = row
            for verb, arg in effects:
                actions += self._apply(verb, arg, message, queue)
            if next_state is State.TERMINATED:
                actions = self._enter(next_state, actions)
                break
            self.state = next_state
        return actions

    def _apply(self, verb: str, arg: str, message: Message | None,
               queue: list[tuple[str, Message | None]]) -> list[Action]:
        if verb == "send" and message is not None:
            self.last_sent = message
            return [Send(message)]
        if verb == "resend":
            return [Send(self.last_sent)] if self.last_sent is not None else []
        if verb == "pass" and message is not None:
            return [PassToTU(message)]
        if verb == "ack" and isinstance(message, Response):
            self.ack = self.ack or build_ack(self.request, message)
            return [Send(self.ack)]
        if verb == "fail":
            return [Failed(arg)]
        if verb == "cancel":
            return [CancelTimer(arg)] if self._intervals.pop(arg, None) is not None else []
        if verb in ("start", "backoff", "at_t2"):
            delay = self._delay(arg)
            if verb == "backoff":
                delay = 2 * self._fired.get(arg, self.timers.t1)
                delay = delay if arg == "A" else min(delay, self.timers.t2)
            elif verb == "at_t2":
                delay = self.timers.t2
            if delay is None:
                return []
            if delay == 0:
                queue.append((arg, None))  # a zero timer fires at once (reliable transports)
                return []
            self._intervals[arg] = delay
            return [StartTimer(arg, delay)]
        raise AssertionError(f"unknown effect {verb}")  # pragma: no cover

    def _enter(self, state: State, actions: list[Action]) -> list[Action]:
        self.state = state
        cancelled = [CancelTimer(name) for name in self._intervals]
        self._intervals.clear()
        return actions + cancelled + [Terminated()]


# ------------------------------------------------------------------------------ servers
class InviteServerTransaction(_Transaction):
    """§17.2.1 with RFC 6026: Proceeding → Completed → Confirmed, or Proceeding → Accepted."""

    FIRST = S.PROCEEDING
    LOCAL = frozenset({"1xx", "2xx", "3xx-6xx", "acked"})
    SERVER = True
    TABLE: ClassVar[Table] = {
        (S.PROCEEDING, "request"): (S.PROCEEDING, (RESEND,)),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, "2xx"): (S.ACCEPTED, (SEND, start("G"), start("L"))),
        (S.PROCEEDING, "3xx-6xx"): (S.COMPLETED, (SEND, start("G"), start("H"))),
        (S.COMPLETED, "request"): (S.COMPLETED, (RESEND,)),
        (S.COMPLETED, "G"): (S.COMPLETED, (RESEND, backoff("G"))),
        (S.COMPLETED, "ack"): (S.CONFIRMED, (cancel("G"), cancel("H"), start("I"))),
        (S.COMPLETED, "H"): (S.TERMINATED, (fail("no ACK for the final response"),)),
        (S.CONFIRMED, "request"): (S.CONFIRMED, ()),
        (S.CONFIRMED, "ack"): (S.CONFIRMED, ()),
        (S.CONFIRMED, "acked"): (S.CONFIRMED, ()),
        (S.CONFIRMED, "I"): (S.TERMINATED, ()),
        (S.CONFIRMED, "L"): (S.TERMINATED, ()),
        (S.ACCEPTED, "request"): (S.ACCEPTED, ()),
        (S.ACCEPTED, "2xx"): (S.ACCEPTED, (SEND,)),
        (S.ACCEPTED, "G"): (S.ACCEPTED, (RESEND, backoff("G"))),
        (S.ACCEPTED, "ack"): (S.CONFIRMED, (cancel("G"), PASS)),
        (S.ACCEPTED, "acked"): (S.CONFIRMED, (cancel("G"),)),
        (S.ACCEPTED, "L"): (S.TERMINATED, (fail("no ACK for the 2xx"),)),
    }

    def start(self, *, send_trying: bool = True) -> list[Action]:
        """Pass the INVITE up and (unless the TU answers within 200 ms) send 100 Trying."""
        actions: list[Action] = [PassToTU(self.request)]
        if send_trying:
            actions += self._handle("1xx", response_for(self.request, 100))
        return actions

    def receive(self, request: Request) -> list[Action]:
        """A retransmitted INVITE, or the ACK, matched to this transaction by its key."""
        if request.method not in ("INVITE", "ACK"):
            raise SipStateError(f"{request.method} is not part of an INVITE transaction")
        return self._handle("ack" if request.method == "ACK" else "request", request)

    def send_response(self, response: Response) -> list[Action]:
        return self._handle(_kind(response), response)

    def ack_received(self) -> list[Action]:
        """The dialog got the ACK for our 2xx: stop retransmitting it."""
        return self._handle("acked", None)


class NonInviteServerTransaction(_Transaction):
    """§17.2.2: Trying → Proceeding → Completed → Terminated."""

    FIRST = S.TRYING
    LOCAL = frozenset({"1xx", "2xx", "3xx-6xx"})
    SERVER = True
    TABLE: ClassVar[Table] = {
        (S.TRYING, "request"): (S.TRYING, ()),
        (S.TRYING, "1xx"): (S.PROCEEDING, (SEND,)),
        (S.TRYING, "2xx"): (S.COMPLETED, (SEND, start("J"))),
        (S.TRYING, "3xx-6xx"): (S.COMPLETED, (SEND, start("J"))),
        (S.PROCEEDING, "request"): (S.PROCEEDING, (RESEND,)),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, (SEND,)),
        (S.PROCEEDING, "2xx"): (S.COMPLETED, (SEND, start("J"))),
        (S.PROCEEDING, "3xx-6xx"): (S.COMPLETED, (SEND, start("J"))),
        (S.COMPLETED, "request"): (S.COMPLETED, (RESEND,)),
        (S.COMPLETED, "J"): (S.TERMINATED, ()),
    }

    def start(self) -> list[Action]:
        return [PassToTU(self.request)]

    def receive(self, request: Request) -> list[Action]:
        """A retransmission of the request."""
        return self._handle("request", request)

    def send_response(self, response: Response) -> list[Action]:
        return self._handle(_kind(response), response)


# ------------------------------------------------------------------------------ clients
class InviteClientTransaction(_Transaction):
    """§17.1.1 with RFC 6026: Calling → Proceeding → Completed, or → Accepted."""

    FIRST = S.CALLING
    TABLE: ClassVar[Table] = {
        (S.CALLING, "start"): (S.CALLING, (SEND, start("A"), start("B"))),
        (S.CALLING, "A"): (S.CALLING, (RESEND, backoff("A"))),
        (S.CALLING, "B"): (S.TERMINATED, (fail("timeout"),)),
        (S.CALLING, "1xx"): (S.PROCEEDING, (cancel("A"), cancel("B"), PASS)),
        (S.CALLING, "2xx"): (S.ACCEPTED, (cancel("A"), cancel("B"), PASS, start("M"))),
        (S.CALLING, "3xx-6xx"): (S.COMPLETED, (cancel("A"), cancel("B"), PASS, ACK,
                                                start("D"))),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, (PASS,)),
        (S.PROCEEDING, "2xx"): (S.ACCEPTED, (PASS, start("M"))),
        (S.PROCEEDING, "3xx-6xx"): (S.COMPLETED, (PASS, ACK, start("D"))),
        (S.COMPLETED, "3xx-6xx"): (S.COMPLETED, (ACK,)),
        (S.COMPLETED, "D"): (S.TERMINATED, ()),
        (S.ACCEPTED, "2xx"): (S.ACCEPTED, (PASS,)),
        (S.ACCEPTED, "M"): (S.TERMINATED, ()),
    }

    def start(self) -> list[Action]:
        """Send the INVITE and start Timers A and B."""
        return self._begin()

    def receive(self, response: Response) -> list[Action]:
        return self._handle(_kind(response), response)


class NonInviteClientTransaction(_Transaction):
    """§17.1.2: Trying → Proceeding → Completed → Terminated."""

    FIRST = S.TRYING
    TABLE: ClassVar[Table] = {
        (S.TRYING, "start"): (S.TRYING, (SEND, start("E"), start("F"))),
        (S.TRYING, "E"): (S.TRYING, (RESEND, backoff("E"))),
        (S.TRYING, "F"): (S.TERMINATED, (fail("timeout"),)),
        (S.TRYING, "1xx"): (S.PROCEEDING, (PASS,)),
        (S.TRYING, "2xx"): (S.COMPLETED, (cancel("E"), cancel("F"), PASS, start("K"))),
        (S.TRYING, "3xx-6xx"): (S.COMPLETED, (cancel("E"), cancel("F"), PASS, start("K"))),
        (S.PROCEEDING, "E"): (S.PROCEEDING, (RESEND, at_t2("E"))),
        (S.PROCEEDING, "F"): (S.TERMINATED, (fail("timeout"),)),
        (S.PROCEEDING, "1xx"): (S.PROCEEDING, (PASS,)),
        (S.PROCEEDING, "2xx"): (S.COMPLETED, (cancel("E"), cancel("F"), PASS, start("K"))),
        (S.PROCEEDING, "3xx-6xx"): (S.COMPLETED, (cancel("E"), cancel("F"), PASS, start("K"))),
        (S.COMPLETED, "K"): (S.TERMINATED, ()),
    }

    def start(self) -> list[Action]:
        """Send the request and start Timers E and F."""
        return self._begin()

    def receive(self, response: Response) -> list[Action]:
        return self._handle(_kind(response), response)


# ------------------------------------------------------------------------------ ACK, keys
def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (§17.1.1.3): same Request-URI, Call-ID, From,
    CSeq number and top Via (so it matches the server transaction), To from the response."""
    headers = Headers([("Via", invite.headers.values("Via")[0]),
                       ("Max-Forwards", "70"),
                       ("From", invite.header("From")),
                       ("To", response.header("To")),
                       ("Call-ID", invite.call_id),
                       ("CSeq", f"{invite.cseq.number} ACK")])
    for route in invite.headers.values("Route"):
        headers.add("Route", route)
    return Request("ACK", invite.uri, headers)


@dataclass(frozen=True, slots=True)
class TransactionKey:
    branch: str
    sent_by: str
    method: str


def server_key(request: Request) -> TransactionKey:
    """The key of the server transaction ``request`` belongs to (§17.2.3)."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return TransactionKey(branch, via.sent_by.lower(), method)
    # An RFC 2543 peer: the request's identifying fields stand in for the branch; the To tag
    # is left out so that the ACK (which has one) matches its INVITE (which has none).
    fields = (str(request.uri), request.from_.tag or "", request.call_id,
              str(request.cseq.number), str(via))
    return TransactionKey("rfc2543:" + "|".join(fields), via.sent_by.lower(), method)


def client_key(message: Message) -> TransactionKey:
    """The key of our client transaction a response (or our own request) belongs to (§17.1.3)."""
    via = message.top_via
    method = message.cseq.method
    return TransactionKey(via.branch or "", via.sent_by.lower(),
                          "INVITE" if method == "ACK" else method)


def invite_key(cancel: Request) -> TransactionKey:
    """The INVITE server transaction a CANCEL is about (§9.2)."""
    key = server_key(cancel)
    return TransactionKey(key.branch, key.sent_by, "INVITE")

