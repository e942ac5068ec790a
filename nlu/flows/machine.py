"""The state machine every flow is: a table of transitions and one handler per state.

A flow is one multi-step task of a call (check an order, cancel a membership). The router
starts one when it recognises the intent and feeds it each caller turn, as a
:class:`FlowInput`, until the :class:`FlowOutput` says ``done``. The flow never hears audio and
never speaks: it says what to say.

How a flow reads::

    class OrderStatusFlow(Flow):
        name = "order_status"
        transitions = {
            # (state, event)             next state
            ("start", "order_asked"):    "wait_order",
            ("start", "answered"):       DONE,
            ...
        }

        def on_start(self, turn: FlowInput) -> Move: ...   # one handler per state
        def on_wait_order(self, turn: FlowInput) -> Move: ...

A handler looks at the turn (and the backend) and returns a :class:`Move`: the event that
happened and what to say. The table decides where that leads; an event the table does not
list for the state is a bug in the flow and raises :class:`FlowDefinitionError`. Two events
are understood in every state and lead to :data:`ESCALATED`: the caller asking for an agent
(intent ``"agent"``), and the backend failing (:class:`~kb.backend.BackendError`).

``FlowOutput.facts`` is everything the flow has established so far (order id, outcome,
whether the caller was verified, ...), for the call record; the last output holds it all.

Exceptions::

    FlowError                   a flow was misused or is misbuilt
     +-- FlowFinishedError      step() on a flow that is already done
     +-- FlowDefinitionError    a handler emitted an event its state's table row lacks
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Final

from kb.backend import Backend, BackendError, BackendUnavailableError

__all__ = [
    "AFFIRM", "AGENT", "AGENT_REQUESTED", "BACKEND_FAILED", "DENY", "DONE", "ESCALATED", "Flow",
    "FlowContext", "FlowDefinitionError", "FlowError", "FlowFinishedError", "FlowInput",
    "FlowOutput", "MEMBERSHIP_CANCEL", "MEMBERSHIP_PAUSE", "Move",
]

logger = logging.getLogger(__name__)

# Terminal states.
DONE: Final = "done"
ESCALATED: Final = "escalated"

# Intent names the flows react to (the classifier's labels).
AGENT: Final = "agent"
AFFIRM: Final = "affirm"
DENY: Final = "deny"
MEMBERSHIP_CANCEL: Final = "membership_cancel"
MEMBERSHIP_PAUSE: Final = "membership_pause"

# Events every state understands, and what is said for them.
AGENT_REQUESTED: Final = "agent_requested"
BACKEND_FAILED: Final = "backend_failed"
TO_AGENT: Final = "Of course. I'll connect you with an agent now."
BACKEND_DOWN: Final = ("Sorry, I can't reach our account system right now. "
                       "I'll connect you with an agent who can help.")
BACKEND_FAILED_SAY: Final = ("Sorry, something went wrong on our side. "
                             "I'll connect you with an agent who can help.")


class FlowError(Exception):
    """A flow was misused or is misbuilt; the base of the errors below."""


class FlowFinishedError(FlowError):
    """``step()`` was called on a flow that has already finished."""


class FlowDefinitionError(FlowError):
    """A flow's handler emitted an event that its transition table does not allow."""


@dataclass(frozen=True, slots=True)
class FlowInput:
    """One caller turn as the flows see it: the words, the intent and the slots found in them.

    ``order_number`` is canonical or close to it ("ORD-1001", "1001"); ``yes_no`` is the
    caller's yes (True) or no (False) when the turn is one; ``postcode`` the digits said or
    typed; ``months`` a number of months ("for two months" → 2).
    """

    text: str = ""
    intent: str | None = None
    order_number: str | None = None
    yes_no: bool | None = None
    postcode: str | None = None
    months: int | None = None

    @property
    def answer(self) -> bool | None:
        """Yes, no or neither: the ``yes_no`` slot, else an affirm or deny intent."""
        if self.yes_no is not None:
            return self.yes_no
        return {AFFIRM: True, DENY: False}.get(self.intent or "")

    @property
    def consent(self) -> bool | None:
        """The answer to "shall I change it?": only a yes the caller said (the ``yes_no`` slot)
        agrees; a no, said or understood (a deny intent), declines; anything else is neither.
        The classifier's affirm alone is not consent: it reads "i think" or "go on" as a yes."""
        if self.yes_no is not None:
            return self.yes_no
        return False if self.intent == DENY else None


@dataclass(frozen=True, slots=True)
class FlowOutput:
    """What the flow decided for one turn.

    ``say`` is short and speakable; ``needs`` names the slot the question asks for
    (``"order_number"``, ``"postcode"``, ``"yes_no"``, ``"months"``); ``escalate`` is the
    reason a human must take over (the flow is then done); ``facts`` is for the call record.
    """

    say: str
    done: bool = False
    needs: str | None = None
    escalate: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FlowContext:
    """One call, as the flows need it; shared by every flow of that call.

    ``caller_phone`` is the caller ID (``None`` when withheld); ``today`` is the business day
    (the demo's data needs :data:`kb.backend.DEMO_TODAY`). Once a flow has verified the caller,
    ``verified_customer_id`` spares the next flow of the call from asking again.
    """

    backend: Backend
    call_id: str
    caller_phone: str | None = None
    today: date = field(default_factory=date.today)
    verified_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """A handler's decision: the event that happened and what to say about it."""

    event: str
    say: str
    needs: str | None = None
    escalate: str | None = None


class Flow:
    """The base of every flow: runs the handlers and follows the table (module docstring)."""

    name: ClassVar[str]
    initial: ClassVar[str] = "start"
    transitions: ClassVar[Mapping[tuple[str, str], str]]

    def __init__(self, context: FlowContext) -> None:
        self.context = context
        self.state: str = self.initial
        self.facts: dict[str, Any] = {"flow": self.name}
        self._unclear: dict[str, int] = {}

    @property
    def backend(self) -> Backend:
        return self.context.backend

    @property
    def done(self) -> bool:
        return self.state in (DONE, ESCALATED)

    def step(self, turn: FlowInput) -> FlowOutput:
        """Take one caller turn; say what to say next."""
        if self.done:
            raise FlowFinishedError(f"the {self.name} flow is already {self.state}")
        if turn.intent == AGENT:
            move = Move(AGENT_REQUESTED, TO_AGENT, escalate="caller asked for an agent")
        else:
            try:
                move = getattr(self, f"on_{self.state}")(turn)
            except BackendError as exc:
                down = isinstance(exc, BackendUnavailableError)
                kind = "unavailable" if down else "error"
                logger.warning("call %s: %s flow: backend %s: %s",
                               self.context.call_id, self.name, kind, exc)
                move = Move(BACKEND_FAILED, BACKEND_DOWN if down else BACKEND_FAILED_SAY,
                            escalate=f"backend {kind}: {exc}")
        self.state = self._next_state(move)
        if move.escalate:
            self.facts["escalated"] = move.escalate
            self.facts.setdefault("outcome", "escalated")
        return FlowOutput(move.say, self.done, None if self.done else move.needs, move.escalate,
                          dict(self.facts))

    def _next_state(self, move: Move) -> str:
        if move.event in (AGENT_REQUESTED, BACKEND_FAILED):
            target = ESCALATED
        else:
            try:
                target = self.transitions[(self.state, move.event)]
            except KeyError:
                raise FlowDefinitionError(
                    f"{self.name}: no transition for event {move.event!r} in state {self.state!r}"
                ) from None
        if (target == ESCALATED) != bool(move.escalate):
            raise FlowDefinitionError(
                f"{self.name}: event {move.event!r} leads to {target!r}; "
                "a move escalates exactly when it leads to the escalated state"
            )
        return target

    # --- helpers for handlers ---------------------------------------------------------------------

    def unclear(self, question: str, *, needs: str = "yes_no", reason: str,
                sorry: str = "Sorry, I didn't get that.") -> Move:
        """The caller's turn did not answer ``question``: ask once more, then escalate.

        Emits ``"unclear"`` the first time in a state and ``"unclear_again"`` the second.
        """
        count = self._unclear[self.state] = self._unclear.get(self.state, 0) + 1
        if count >= 2:
            return Move("unclear_again", "Sorry, I'm not getting this right. "
                        "Let me connect you with an agent.", escalate=reason)
        return Move("unclear", f"{sorry} {question}", needs=needs)

    def audit(self, action: str, **details: Any) -> None:
        """Write an entry to the backend's audit trail for this call."""
        self.backend.audit(self.context.call_id, action, {"flow": self.name, **details})
