"""Caller context without forced authentication: who is calling, and have they proved it?

The caller ID identifies the customer when it matches one on file; that is enough to talk
about their account. Before anything on the account changes (a cancellation, a pause) the
caller must also say the postcode on file. Two wrong postcodes, or two turns without one,
hand the call to a human. Each check is written to the audit trail (never the postcode said).
A caller whose number matches no customer is offered an agent for account changes.
"""

from __future__ import annotations

import re
from typing import Final

from kb.backend import Customer
from nlu.flows.machine import Flow, FlowInput, Move

__all__ = ["ASK_POSTCODE", "CallerCheck", "unknown_caller"]

ASK_POSTCODE: Final = ("Before I make any changes, I need to verify your account. "
                       "What is the postcode on your account?")
_MAX_TRIES: Final = 2


def unknown_caller(action: str) -> Move:
    """The move for an account change asked by a caller the caller ID does not identify."""
    return Move(
        "unknown_caller",
        "I can't find an account for the number you're calling from, so I can't "
        f"{action} on this call. Let me connect you with an agent who can help.",
        escalate=f"caller not identified by caller ID asked to {action}",
    )


class CallerCheck:
    """The caller-ID match and the postcode check for one flow (see the module docstring)."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._caller: Customer | None = None
        self._looked_up = False
        self._wrong = 0
        self._missing = 0

    def caller(self) -> Customer | None:
        """The customer whose phone number is the caller ID, if exactly one is."""
        if not self._looked_up:
            phone = self._flow.context.caller_phone
            self._caller = self._flow.backend.customer_by_phone(phone) if phone else None
            self._looked_up = True
            if self._caller is not None:
                self._flow.facts["customer_id"] = self._caller.id
        return self._caller

    @property
    def verified(self) -> bool:
        caller = self.caller()
        return caller is not None and self._flow.context.verified_customer_id == caller.id

    def check(self, turn: FlowInput) -> Move | None:
        """``None`` once ``turn`` carries the right postcode; else the move to make.

        Emits ``"postcode_retry"`` (ask again) or ``"postcode_failed"`` (escalate).
        """
        caller = self.caller()
        assert caller is not None, "check the caller is identified first"
        if not turn.postcode:
            self._missing += 1
            if self._missing >= _MAX_TRIES:
                return self._failed("caller did not give the postcode on file")
            return Move("postcode_retry", "Sorry, I need the postcode on your account to go on. "
                        "What is it?", needs="postcode")
        if _normal(turn.postcode) != _normal(caller.postcode):
            self._wrong += 1
            self._flow.audit("identity.postcode_mismatch", customer_id=caller.id,
                             attempt=self._wrong)
            if self._wrong >= _MAX_TRIES:
                return self._failed("postcode did not match the account twice")
            return Move("postcode_retry", "Sorry, that postcode doesn't match our records. "
                        "Could you say it again?", needs="postcode")
        self._flow.context.verified_customer_id = caller.id
        self._flow.facts["verified"] = True
        self._flow.audit("identity.verified", customer_id=caller.id,
                         method="caller_id+postcode")
        return None

    def thanks(self) -> str:
        """ "Thank you, Jamie. ": what to say first once the caller is verified."""
        caller = self.caller()
        return f"Thank you, {caller.name.split()[0]}. " if caller and caller.name.strip() else ""

    def _failed(self, reason: str) -> Move:
        self._flow.facts["verified"] = False
        return Move("postcode_failed", "I'm sorry, I can't verify your account. "
                    "Let me connect you with an agent who can help.", escalate=reason)


def _normal(postcode: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", postcode.upper())
