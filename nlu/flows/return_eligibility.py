"""Return eligibility: can I still return this? Finds the order, then works out its return
window from the delivery date, the item type and the owner's Brightline Plus membership, and
says the last day to return it and whether ``today`` is still inside the window.

The policy (``DEMO_COMPANY.md``, ``kb/documents/returns.md``): 30 days from delivery, 60 for
Plus members; limited-edition items 14 days, 30 for Plus members; digital products cannot be
refunded once downloaded or activated. "Within 30 days" counts the delivery day as day 0, so
an item delivered on April 28 can be returned up to and including May 28. Plus counts when
the owner enjoys its benefits today (active, or cancelled and not yet ended; not paused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar, Literal

from kb.backend import Order
from nlu.flows.machine import DONE, ESCALATED, Flow, FlowContext, FlowInput, Move
from nlu.flows.order_lookup import OrderQuestion
from nlu.flows.phrases import capitalized, spoken_date, spoken_order

__all__ = ["ReturnDecision", "ReturnEligibilityFlow", "decide_return", "return_window_days"]

Reason = Literal["within_window", "window_closed", "not_delivered", "digital_activated"]


def return_window_days(order: Order, *, plus: bool) -> int | None:
    """Days from delivery to return ``order``; ``None`` when it cannot be refunded at all."""
    if order.item_type == "digital" and order.activated:
        return None
    if order.item_type == "limited_edition":
        return 30 if plus else 14
    return 60 if plus else 30


@dataclass(frozen=True, slots=True)
class ReturnDecision:
    """Whether an order can be returned on a given day, and why."""

    eligible: bool
    reason: Reason
    window_days: int | None
    last_day: date | None


def decide_return(order: Order, *, plus: bool, today: date) -> ReturnDecision:
    """Apply the return policy to ``order`` on ``today``."""
    days = return_window_days(order, plus=plus)
    if days is None:
        return ReturnDecision(False, "digital_activated", None, None)
    if order.status != "delivered" or order.delivered_on is None:
        return ReturnDecision(False, "not_delivered", days, None)
    last_day = order.delivered_on + timedelta(days=days)
    if today <= last_day:
        return ReturnDecision(True, "within_window", days, last_day)
    return ReturnDecision(False, "window_closed", days, last_day)


class ReturnEligibilityFlow(Flow):
    """Whether an order can still be returned, and until when."""

    name = "return_eligibility"
    transitions: ClassVar[dict[tuple[str, str], str]] = {
        # (state,        event)            next state
        ("start",        "order_asked"):   "wait_order",
        ("start",        "answered"):      DONE,
        ("wait_order",   "order_asked"):   "wait_order",
        ("wait_order",   "order_gave_up"): ESCALATED,
        ("wait_order",   "answered"):      DONE,
    }

    def __init__(self, context: FlowContext) -> None:
        super().__init__(context)
        self._order_question = OrderQuestion(self)

    def on_start(self, turn: FlowInput) -> Move:
        return self._answer(turn)

    def on_wait_order(self, turn: FlowInput) -> Move:
        return self._answer(turn)

    def _answer(self, turn: FlowInput) -> Move:
        found = self._order_question.find(turn)
        if isinstance(found, Move):
            return found
        today = self.context.today
        membership = self.backend.membership(found.customer_id)
        plus = membership is not None and membership.benefits_on(today)
        decision = decide_return(found, plus=plus, today=today)
        self.facts.update(
            outcome="answered", returnable=decision.eligible, return_reason=decision.reason,
            plus_member=plus, return_window_days=decision.window_days,
            last_return_day=decision.last_day.isoformat() if decision.last_day else None,
        )
        return Move("answered", explain(found, decision, plus=plus, today=today))


def explain(order: Order, decision: ReturnDecision, *, plus: bool, today: date) -> str:
    """The decision said aloud: the rule that applies, the last day, and yes or no."""
    it = f"{spoken_order(order.id)}, the {order.item},"
    if decision.reason == "digital_activated":
        return (f"{capitalized(it)} can't be refunded. Digital products can't be refunded once "
                "they are downloaded or activated, and this one has been activated.")
    rule = _rule(order, plus=plus, days=decision.window_days or 0)
    if decision.reason == "not_delivered":
        return (f"{capitalized(it)} hasn't been delivered yet, so its return window hasn't "
                f"started. {rule}.")
    assert decision.last_day is not None
    last = spoken_date(decision.last_day, today=today)
    if decision.reason == "window_closed":
        return f"I'm sorry, {it} can no longer be returned. {rule}, and the last day was {last}."
    if decision.last_day == today:
        return f"Yes, {it} can still be returned, but today is the last day. {rule}."
    return f"Yes, {it} can still be returned. {rule}, so the last day to return it is {last}."


def _rule(order: Order, *, plus: bool, days: int) -> str:
    if order.item_type == "limited_edition":
        who = " for Brightline Plus members" if plus else ""
        return f"Limited-edition items can be returned within {days} days of delivery{who}"
    if plus:
        return f"As a Brightline Plus member, you have {days} days from delivery to return it"
    return f"Items can be returned within {days} days of delivery"
