"""Membership cancel: the multi-step agent flow.

intent detected → caller identified by caller ID (else an agent takes over) → postcode on file
verified (unless this call already did) → membership looked up → pending orders checked and
mentioned → a pause offered instead → confirm → cancel → say when it ends (the end of the
current billing period) → the backend writes the audit entry.

If the caller takes the pause, the flow hands the rest of the conversation to a
:class:`~nlu.flows.membership_pause.MembershipPauseFlow` (already verified) and reports what
it says; if they change their mind back ("no, just cancel it") the flow returns to confirming
the cancellation. A paused membership is not offered a pause again; cancelling it ends it today.
"""

from __future__ import annotations

from typing import ClassVar, Final

from kb.backend import MAX_PAUSE_MONTHS, Membership, Order
from nlu.flows.identity import ASK_POSTCODE, CallerCheck, unknown_caller
from nlu.flows.machine import (
    DONE,
    ESCALATED,
    MEMBERSHIP_CANCEL,
    MEMBERSHIP_PAUSE,
    Flow,
    FlowContext,
    FlowInput,
    FlowOutput,
    Move,
)
from nlu.flows.membership_pause import MembershipPauseFlow, months_in
from nlu.flows.phrases import spoken_date, spoken_list, spoken_order

__all__ = ["MembershipCancelFlow"]

OFFER_PAUSE: Final = (f"Instead of cancelling, you can pause Brightline Plus for up to "
                      f"{MAX_PAUSE_MONTHS} months. Would you like to pause it instead?")


class MembershipCancelFlow(Flow):
    """Cancel Brightline Plus, after verifying the caller and offering a pause instead."""

    name = "membership_cancel"
    transitions: ClassVar[dict[tuple[str, str], str]] = {
        # (state,           event)               next state
        ("start",           "unknown_caller"):    ESCALATED,
        ("start",           "postcode_asked"):    "verify_postcode",
        ("start",           "no_membership"):     DONE,
        ("start",           "already_cancelled"): DONE,
        ("start",           "pause_offered"):     "offer_pause",
        ("start",           "confirm_asked"):     "confirm_cancel",
        ("verify_postcode", "postcode_retry"):    "verify_postcode",
        ("verify_postcode", "postcode_failed"):   ESCALATED,
        ("verify_postcode", "no_membership"):     DONE,
        ("verify_postcode", "already_cancelled"): DONE,
        ("verify_postcode", "pause_offered"):     "offer_pause",
        ("verify_postcode", "confirm_asked"):     "confirm_cancel",
        ("offer_pause",     "pause_declined"):    "confirm_cancel",
        ("offer_pause",     "pause_accepted"):    "pausing",
        ("offer_pause",     "pause_finished"):    DONE,
        ("offer_pause",     "pause_escalated"):   ESCALATED,
        ("offer_pause",     "unclear"):           "offer_pause",
        ("offer_pause",     "unclear_again"):     ESCALATED,
        ("pausing",         "pause_accepted"):    "pausing",
        ("pausing",         "pause_declined"):    "confirm_cancel",
        ("pausing",         "pause_finished"):    DONE,
        ("pausing",         "pause_escalated"):   ESCALATED,
        ("confirm_cancel",  "cancelled"):         DONE,
        ("confirm_cancel",  "kept"):              DONE,
        ("confirm_cancel",  "unclear"):           "confirm_cancel",
        ("confirm_cancel",  "unclear_again"):     ESCALATED,
    }

    def __init__(self, context: FlowContext) -> None:
        super().__init__(context)
        self._caller = CallerCheck(self)
        self._membership: Membership | None = None
        self._pause: MembershipPauseFlow | None = None

    # --- states -----------------------------------------------------------------------------------

    def on_start(self, turn: FlowInput) -> Move:
        if self._caller.caller() is None:
            self.facts["outcome"] = "unknown_caller"
            return unknown_caller("cancel a membership")
        if self._caller.verified:
            self.facts["verified"] = True
            return self._membership_step(greeting="")
        return Move("postcode_asked", ASK_POSTCODE, needs="postcode")

    def on_verify_postcode(self, turn: FlowInput) -> Move:
        failed = self._caller.check(turn)
        if failed is not None:
            return failed
        return self._membership_step(greeting=self._caller.thanks())

    def on_offer_pause(self, turn: FlowInput) -> Move:
        if turn.intent == MEMBERSHIP_CANCEL or turn.answer is False:
            return self._decline_pause()
        if turn.intent == MEMBERSHIP_PAUSE or turn.answer or turn.months or months_in(turn.text):
            self.facts["pause_offer"] = "accepted"
            self._pause = MembershipPauseFlow(self.context)
            return self._delegate(turn)
        return self.unclear(OFFER_PAUSE, reason="caller did not answer the offer to pause")

    def on_pausing(self, turn: FlowInput) -> Move:
        if turn.intent == MEMBERSHIP_CANCEL:  # "no, just cancel it"
            self._pause = None
            return self._decline_pause()
        return self._delegate(turn)

    def on_confirm_cancel(self, turn: FlowInput) -> Move:
        answer = turn.consent
        if answer is None and turn.intent == MEMBERSHIP_CANCEL:
            answer = True  # "yes, cancel it" classified as the intent itself
        if answer is None:
            return self.unclear(self._confirm_question(),
                                reason="caller did not confirm the cancellation")
        if not answer:
            self.facts["outcome"] = "kept"
            return Move("kept", "All right, I won't cancel it. Your Brightline Plus membership "
                        "stays as it is.")
        caller = self._caller.caller()
        assert caller is not None
        membership = self.backend.cancel_membership(caller.id, call_id=self.context.call_id)
        ends_on = membership.ends_on
        self.facts.update(outcome="cancelled", ends_on=ends_on.isoformat() if ends_on else None)
        return Move("cancelled", f"Done. Your Brightline Plus membership is cancelled. "
                    f"{self._when_it_ends(membership)}")

    # --- steps shared by the states ---------------------------------------------------------------

    def _membership_step(self, *, greeting: str) -> Move:
        caller = self._caller.caller()
        assert caller is not None
        membership = self._membership = self.backend.membership(caller.id)
        if membership is None:
            self.facts["outcome"] = "no_membership"
            return Move("no_membership", f"{greeting}I don't see a Brightline Plus membership "
                        "on your account, so there's nothing to cancel.")
        self.facts["membership_status"] = membership.status
        if membership.status == "cancelled":
            self.facts["outcome"] = "already_cancelled"
            return Move("already_cancelled", f"{greeting}Your Brightline Plus membership is "
                        f"already cancelled. {self._when_it_ends(membership)}")
        pending = [order for order in self.backend.orders_of(caller.id) if order.pending]
        self.facts["pending_orders"] = [order.id for order in pending]
        lead_in = greeting + _pending_note(pending)
        if membership.status == "paused":
            return Move("confirm_asked", lead_in + self._confirm_question(), needs="yes_no")
        return Move("pause_offered", lead_in + OFFER_PAUSE, needs="yes_no")

    def _decline_pause(self) -> Move:
        self.facts["pause_offer"] = "declined"
        return Move("pause_declined", f"Okay. {self._confirm_question()}", needs="yes_no")

    def _delegate(self, turn: FlowInput) -> Move:
        """Let the pause flow take this turn; report its words and how it ended."""
        assert self._pause is not None
        out: FlowOutput = self._pause.step(turn)
        self.facts.update({k: v for k, v in out.facts.items() if k != "flow"})
        if out.escalate:
            return Move("pause_escalated", out.say, escalate=out.escalate)
        if out.done:
            return Move("pause_finished", out.say)
        return Move("pause_accepted", out.say, needs=out.needs)

    def _confirm_question(self) -> str:
        membership = self._membership
        if membership is not None and membership.status == "paused":
            until = membership.paused_until
            paused = f" until {spoken_date(until, today=self.context.today)}" if until else ""
            return (f"Your membership is paused{paused}. If you cancel it now, it ends today. "
                    "Shall I cancel it?")
        if membership is not None and membership.renews_on is not None:
            ends = spoken_date(membership.renews_on, today=self.context.today)
            return (f"To confirm, you want to cancel Brightline Plus. It stays active until "
                    f"{ends}, the end of your current billing period. Shall I cancel it?")
        return "To confirm, you want to cancel Brightline Plus. Shall I cancel it?"

    def _when_it_ends(self, membership: Membership) -> str:
        today = self.context.today
        ends_on = membership.ends_on
        if ends_on is None:
            return ""
        if ends_on > today:
            return (f"It stays active until {spoken_date(ends_on, today=today)}, "
                    "the end of your current billing period.")
        if ends_on == today:
            return "It ends today."
        return f"It ended on {spoken_date(ends_on, today=today)}."


def _pending_note(pending: list[Order]) -> str:
    if not pending:
        return ""
    names = spoken_list([spoken_order(order.id) for order in pending])
    if len(pending) == 1:
        return f"Just so you know, you have an order on the way: {names}. "
    return f"Just so you know, you have {len(pending)} orders on the way: {names}. "
