"""Warm transfers as the agent desk sees them: the handoff record and the live desk.

A :class:`Handoff` is created when a call needs a human. It carries what the agent should know
before picking up (who, what they want, what was tried, how they feel, why the transfer) and
the transcript, and moves through these states::

    waiting ──accept──▶ accepted ──(the bridge connects the call)──▶ connected
       │                   └──(the bridge could not connect)──▶ failed
       ├──no agent in time──▶ no_agent ──caller chooses──▶ callback | message  (a ticket)
       └──caller hung up────▶ abandoned

The :class:`AgentDesk` is the live side, one per process: it keeps the handoffs that are
waiting, tells every connected agent page about each change (no polling), and lets the call
that created a handoff wait for an agent's answer. Records are written to the call store on
every change, so the desk can be rebuilt from it and nothing is lost with a restart.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

__all__ = ["OPEN_STATUSES", "STATUSES", "AgentDesk", "Handoff", "HandoffError", "HandoffStore"]

log = logging.getLogger("iva.desk")

STATUSES: Final = ("waiting", "accepted", "connected", "failed", "no_agent", "callback",
                   "message", "abandoned")
# Handoffs that are still the desk's business: waiting for an agent, or a ticket to work on.
OPEN_STATUSES: Final = frozenset({"waiting", "callback", "message"})


class HandoffError(Exception):
    """A handoff action that its state does not allow (accepting one already taken, ...)."""


class HandoffStore(Protocol):
    """Where handoffs are kept (``review.store.CallStore`` is one)."""

    def save_handoff(self, handoff: dict[str, Any]) -> None: ...
    def get_handoff(self, handoff_id: str) -> dict[str, Any] | None: ...
    def list_handoffs(self, *, status: str | None = None, call_id: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]: ...


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Handoff:
    """One warm transfer (see the module docstring for its states)."""

    call_id: str
    reason: str
    summary: dict[str, Any]
    transcript: list[dict[str, Any]]
    sentiment: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    channel: str = "twilio"
    caller: str | None = None
    status: str = "waiting"
    id: str = field(default_factory=lambda: "H" + secrets.token_hex(8))
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    accepted_by: str | None = None
    declined_by: list[str] = field(default_factory=list)
    ticket: dict[str, Any] | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "call_id": self.call_id, "status": self.status, "reason": self.reason,
            "summary": self.summary, "transcript": self.transcript, "sentiment": self.sentiment,
            "target": self.target, "channel": self.channel, "caller": self.caller,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "accepted_by": self.accepted_by, "declined_by": self.declined_by,
            "ticket": self.ticket, "notes": self.notes, "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Handoff:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    """What the desk tells the waiting call: an agent took it (``agent``) or nobody did."""

    accepted: bool
    agent: str | None = None


Listener = Callable[[dict[str, Any]], None]


class AgentDesk:
    """The live desk: waiting handoffs, the agents' pages, and the calls waiting for them.

    All methods run on the service's event loop.
    """

    def __init__(self, store: HandoffStore) -> None:
        self._store = store
        self._waiting: dict[str, asyncio.Future[AgentAnswer]] = {}
        self._live: dict[str, Handoff] = {}  # handoffs of calls still in progress
        self._listeners: set[Listener] = set()

    # --- agent pages --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(message)`` on every change; returns the unsubscribe function."""
        self._listeners.add(listener)
        return lambda: self._listeners.discard(listener)

    def queue(self) -> list[dict[str, Any]]:
        """Open handoffs (waiting for an agent, or tickets), oldest first, for a new page."""
        rows = [row for status in ("waiting", "accepted", "callback", "message")
                for row in self._store.list_handoffs(status=status)]
        return sorted(rows, key=lambda row: row["created_at"])

    def _publish(self, message: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(message)
            except Exception:
                log.exception("an agent page listener failed; dropped")
                self._listeners.discard(listener)

    def _save(self, handoff: Handoff, *, kind: str = "handoff") -> None:
        handoff.updated_at = _now()
        self._store.save_handoff(handoff.to_json())
        self._publish({"type": kind, "handoff": handoff.to_json()})

    def list_handoffs(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Handoffs from the store, newest first (``GET /api/handoffs``)."""
        return self._store.list_handoffs(status=status, limit=limit)

    def get(self, handoff_id: str) -> Handoff | None:
        live = self._live.get(handoff_id)
        if live is not None:
            return live
        row = self._store.get_handoff(handoff_id)
        return None if row is None else Handoff.from_json(row)

    def _require(self, handoff_id: str) -> Handoff:
        handoff = self.get(handoff_id)
        if handoff is None:
            raise LookupError(f"no handoff {handoff_id}")
        return handoff

    # --- the call's side ----------------------------------------------------------------------

    def offer(self, handoff: Handoff) -> asyncio.Future[AgentAnswer]:
        """Put ``handoff`` in the queue; the future resolves when an agent accepts it or
        :meth:`withdraw` gives up on it."""
        future: asyncio.Future[AgentAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[handoff.id] = future
        self._live[handoff.id] = handoff
        self._save(handoff)
        log.info("call %s: handoff %s waiting for an agent (%s)", handoff.call_id, handoff.id,
                 handoff.reason)
        return future

    def withdraw(self, handoff_id: str, *, status: str, detail: str | None = None) -> None:
        """The call stops waiting: nobody answered in time (``no_agent``) or the caller hung
        up (``abandoned``)."""
        handoff = self._require(handoff_id)
        future = self._waiting.pop(handoff_id, None)
        if future is not None and not future.done():
            future.set_result(AgentAnswer(False))
        if handoff.status in ("waiting", "accepted"):
            handoff.status, handoff.detail = status, detail
            self._save(handoff)

    def add_transcript(self, call_id: str, turn: dict[str, Any]) -> None:
        """A new turn of a call with a live handoff: the agent's page shows it at once (and
        the handoff keeps it, for whoever opens it later)."""
        for handoff in self._live.values():
            if handoff.call_id == call_id:
                handoff.transcript.append(turn)
                handoff.updated_at = _now()
                self._store.save_handoff(handoff.to_json())
                self._publish({"type": "turn", "handoff_id": handoff.id, "turn": turn})

    def stop_following(self, call_id: str) -> None:
        """The call (after its transfer) is over: stop keeping its handoffs live."""
        for handoff_id, handoff in list(self._live.items()):
            if handoff.call_id == call_id:
                self._live.pop(handoff_id, None)

    def set_status(self, handoff_id: str, status: str, *, detail: str | None = None,
                   ticket: dict[str, Any] | None = None) -> Handoff:
        """The bridge connected the call (``connected``) or could not (``failed``); or the
        caller chose a callback or left a message (a ticket)."""
        if status not in STATUSES:
            raise ValueError(f"unknown handoff status {status!r}")
        handoff = self._require(handoff_id)
        handoff.status, handoff.detail = status, detail or handoff.detail
        if ticket is not None:
            handoff.ticket = ticket
        self._save(handoff)
        return handoff

    def call_ended(self, call_id: str) -> None:
        """The assistant's part of the call is over: a waiting handoff is abandoned; a
        connected one stays live while the call goes on with the agent (see
        :meth:`stop_following`)."""
        for handoff_id, handoff in list(self._live.items()):
            if handoff.call_id != call_id:
                continue
            if handoff.status == "waiting":
                self.withdraw(handoff_id, status="abandoned", detail="caller hung up")
            self._waiting.pop(handoff_id, None)
            if handoff.status != "connected":
                self._live.pop(handoff_id, None)

    # --- the agent's side ---------------------------------------------------------------------

    def accept(self, handoff_id: str, agent: str) -> Handoff:
        handoff = self._require(handoff_id)
        future = self._waiting.get(handoff_id)
        if handoff.status != "waiting" or future is None or future.done():
            raise HandoffError(f"handoff {handoff_id} is {handoff.status}; it cannot be accepted")
        handoff.status, handoff.accepted_by = "accepted", agent
        self._save(handoff)
        future.set_result(AgentAnswer(True, agent))
        log.info("call %s: handoff %s accepted by %s", handoff.call_id, handoff_id, agent)
        return handoff

    def decline(self, handoff_id: str, agent: str) -> Handoff:
        """This agent will not take it; it stays in the queue for the others."""
        handoff = self._require(handoff_id)
        if handoff.status != "waiting":
            raise HandoffError(f"handoff {handoff_id} is {handoff.status}; it cannot be declined")
        if agent not in handoff.declined_by:
            handoff.declined_by.append(agent)
        self._save(handoff)
        return handoff

    def add_note(self, handoff_id: str, agent: str, text: str) -> Handoff:
        """After-call notes: kept with the handoff (and so with the call's record)."""
        text = text.strip()
        if not text:
            raise ValueError("a note needs some text")
        if len(text) > 5000:
            raise ValueError("a note is at most 5000 characters")
        handoff = self._require(handoff_id)
        handoff.notes.append({"by": agent, "at": _now(), "text": text})
        self._save(handoff)
        return handoff
