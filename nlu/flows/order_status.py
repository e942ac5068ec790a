"""Order status: where is my order? Asks for the order number if the turn lacks one, then
says where the order is: being processed, shipped, delayed (why, and the new date) or
delivered (for a digital item: by email, and whether it has been activated)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Final

from kb.backend import Order
from nlu.flows.machine import DONE, ESCALATED, Flow, FlowContext, FlowInput, Move
from nlu.flows.order_lookup import OrderQuestion
from nlu.flows.phrases import capitalized, spoken_date, spoken_order

__all__ = ["OrderStatusFlow", "describe_order"]


class OrderStatusFlow(Flow):
    """Where an order is, said in one or two sentences."""

    name = "order_status"
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
        self.facts.update(order_status=found.status, outcome="answered")
        return Move("answered", describe_order(found, today=self.context.today))


_PREFIX: Final = "{order}, the {item},"


def describe_order(order: Order, *, today: date) -> str:
    """Where ``order`` is, as one or two speakable sentences."""
    head = _PREFIX.format(order=capitalized(spoken_order(order.id)), item=order.item)
    when = spoken_date(order.expected_on, today=today) if order.expected_on else None
    by = f" by {order.expected_by}" if order.expected_by else ""
    if order.status == "delayed":
        why = order.status_detail or "delayed"
        if when is None:
            return f"{head} is {why}. We don't have a new delivery date yet."
        return f"{head} is {why}. It is now scheduled for {when}{by}."
    if order.status == "processing":
        detail = f" and {order.status_detail}" if order.status_detail else ""
        return f"{head} is being processed{detail}."
    if order.status == "shipped":
        arrival = f" and is expected on {when}{by}" if when else ""
        return f"{head} has shipped{arrival}."
    # delivered
    on = f" on {spoken_date(order.delivered_on, today=today)}" if order.delivered_on else ""
    if order.item_type == "digital":
        activated = " and has been activated" if order.activated else ""
        return f"{head} was delivered by email{on}{activated}."
    return f"{head} was delivered{on}."
