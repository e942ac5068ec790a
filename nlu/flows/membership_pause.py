"""Membership pause: verify the caller, ask how long (1 to 3 months), confirm, pause.

The steps: the caller ID must match a customer (else an agent takes over) → the postcode on
file, unless this call has already verified it → the membership must be active → how many
months, unless the caller already said ("pause it for two months") → confirm → pause. The
backend writes the audit entry of the pause; the flow's facts say how it ended.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final

from kb.backend import MAX_PAUSE_MONTHS, Membership
from nlu.flows.identity import ASK_POSTCODE, CallerCheck, unknown_caller
from nlu.flows.machine import DONE, ESCALATED, Flow, FlowContext, FlowInput, Move
from nlu.flows.phrases import spoken_date

__all__ = ["MembershipPauseFlow", "months_in"]

_NUMBERS: Final = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
_NUMBER: Final = r"(\d{1,2}|" + "|".join(_NUMBERS) + r")"
_MONTHS: Final = re.compile(rf"\b{_NUMBER}\s+months?\b", re.IGNORECASE)
_BARE: Final = re.compile(rf"\b{_NUMBER}\b", re.IGNORECASE)
ASK_MONTHS: Final = (f"You can pause Brightline Plus for 1 to {MAX_PAUSE_MONTHS} months. "
                     "How many months would you like?")
TOO_LONG: Final = f"A pause can last up to {MAX_PAUSE_MONTHS} months."
HOW_MANY: Final = "How many months would you like, 1, 2 or 3?"


def months_in(text: str, *, bare: bool = False) -> int | None:
    """The number of months in ``text`` ("for two months" → 2); with ``bare``, a number alone
    counts too (the answer to "how many months?"). Only used when the slot is missing."""
    match = _MONTHS.search(text) or (_BARE.search(text) if bare else None)
    if match is None:
        return None
    word = match.group(1).lower()
    return int(word) if word.isdigit() else _NUMBERS[word]


def _months(count: int) -> str:
    return "1 month" if count == 1 else f"{count} months"


class MembershipPauseFlow(Flow):
    """Pause Brightline Plus for up to 3 months, after verifying the caller."""

    name = "membership_pause"
    transitions: ClassVar[dict[tuple[str, str], str]] = {
        # (state,           event)             next state
        ("start",           "unknown_caller"):  ESCALATED,
        ("start",           "postcode_asked"):  "verify_postcode",
        ("start",           "no_membership"):   DONE,
        ("start",           "not_pausable"):    DONE,
        ("start",           "months_asked"):    "ask_months",
        ("start",           "confirm_asked"):   "confirm_pause",
        ("verify_postcode", "postcode_retry"):  "verify_postcode",
        ("verify_postcode", "postcode_failed"): ESCALATED,
        ("verify_postcode", "no_membership"):   DONE,
        ("verify_postcode", "not_pausable"):    DONE,
        ("verify_postcode", "months_asked"):    "ask_months",
        ("verify_postcode", "confirm_asked"):   "confirm_pause",
        ("ask_months",      "unclear"):         "ask_months",
        ("ask_months",      "unclear_again"):   ESCALATED,
        ("ask_months",      "confirm_asked"):   "confirm_pause",
        ("confirm_pause",   "confirm_asked"):   "confirm_pause",
        ("confirm_pause",   "months_asked"):    "ask_months",
        ("confirm_pause",   "paused"):          DONE,
        ("confirm_pause",   "kept"):            DONE,
        ("confirm_pause",   "unclear"):         "confirm_pause",
        ("confirm_pause",   "unclear_again"):   ESCALATED,
    }

    def __init__(self, context: FlowContext) -> None:
        super().__init__(context)
        self._caller = CallerCheck(self)
        self._months: int | None = None

    # --- states -----------------------------------------------------------------------------------

    def on_start(self, turn: FlowInput) -> Move:
        self._months = turn.months or months_in(turn.text)
        if self._caller.caller() is None:
            self.facts["outcome"] = "unknown_caller"
            return unknown_caller("pause a membership")
        if self._caller.verified:
            self.facts["verified"] = True
            return self._membership_step(greeting="")
        return Move("postcode_asked", ASK_POSTCODE, needs="postcode")

    def on_verify_postcode(self, turn: FlowInput) -> Move:
        failed = self._caller.check(turn)
        if failed is not None:
            return failed
        return self._membership_step(greeting=self._caller.thanks())

    def on_ask_months(self, turn: FlowInput) -> Move:
        months = turn.months or months_in(turn.text, bare=True)
        if months is None:
            return self.unclear(ASK_MONTHS, needs="months",
                                reason="caller did not say how long to pause")
        if not 1 <= months <= MAX_PAUSE_MONTHS:
            return self.unclear(HOW_MANY, sorry=TOO_LONG, needs="months",
                                reason=f"caller wanted a pause of {months} months")
        self._months = months
        return self._confirm()

    def on_confirm_pause(self, turn: FlowInput) -> Move:
        answer = turn.consent
        changed = turn.months or months_in(turn.text)
        if answer is None and changed is not None and changed != self._months:
            if not 1 <= changed <= MAX_PAUSE_MONTHS:
                return Move("months_asked", f"{TOO_LONG} {HOW_MANY}", needs="months")
            self._months = changed  # "make it two months": confirm the new length
            return self._confirm()
        if answer is None:
            return self.unclear(self._question(), reason="caller did not confirm the pause")
        if not answer:
            self.facts["outcome"] = "kept"
            return Move("kept", "All right, I haven't changed anything. "
                        "Your membership stays active.")
        caller = self._caller.caller()
        assert caller is not None and self._months is not None
        membership = self.backend.pause_membership(caller.id, self._months,
                                                   call_id=self.context.call_id)
        until = membership.paused_until or membership.renews_on
        self.facts.update(outcome="paused", pause_months=self._months,
                          paused_until=until.isoformat() if until else None)
        when = f" until {spoken_date(until, today=self.context.today)}" if until else ""
        return Move("paused", f"Done. Your Brightline Plus membership is paused{when}.")

    # --- steps shared by the states ---------------------------------------------------------------

    def _membership_step(self, *, greeting: str) -> Move:
        caller = self._caller.caller()
        assert caller is not None
        membership = self.backend.membership(caller.id)
        if membership is None:
            self.facts["outcome"] = "no_membership"
            return Move("no_membership", f"{greeting}I don't see a Brightline Plus membership "
                        "on your account, so there's nothing to pause.")
        self.facts["membership_status"] = membership.status
        if membership.status != "active":
            self.facts["outcome"] = f"already_{membership.status}"
            return Move("not_pausable", greeting + self._why_not(membership))
        if self._months is not None and 1 <= self._months <= MAX_PAUSE_MONTHS:
            return self._confirm(greeting)
        return Move("months_asked", greeting + ASK_MONTHS, needs="months")

    def _why_not(self, membership: Membership) -> str:
        today = self.context.today
        if membership.status == "paused":
            until = membership.paused_until
            when = f" until {spoken_date(until, today=today)}" if until else ""
            return f"Your Brightline Plus membership is already paused{when}."
        if membership.ends_on and membership.ends_on >= today:
            return ("Your Brightline Plus membership is already cancelled and stays active "
                    f"until {spoken_date(membership.ends_on, today=today)}, so it can't be paused.")
        return "Your Brightline Plus membership has been cancelled, so it can't be paused."

    def _question(self) -> str:
        assert self._months is not None
        return (f"To confirm, you'd like to pause Brightline Plus for {_months(self._months)}, "
                "starting today. Shall I go ahead?")

    def _confirm(self, greeting: str = "") -> Move:
        return Move("confirm_asked", greeting + self._question(), needs="yes_no")
