"""Finding the order a caller asks about, for the flows that start from an order number.

The order number is enough: a caller the caller ID does not identify can still ask about an
order. If the turn has no number the caller is asked for one (spoken or typed, ``#``-ended);
a number that is not on file is read back and asked again. Two misses after the first
question hand the call to a human.

Events a flow's table must route: ``"order_asked"`` (ask, or ask again) and
``"order_gave_up"`` (escalate).
"""

from __future__ import annotations

from typing import Final

from kb.backend import Order, canonical_order_id
from nlu.flows.machine import Flow, FlowInput, Move
from nlu.flows.phrases import spoken_order

__all__ = ["ASK_ORDER", "OrderQuestion"]

ASK_ORDER: Final = ("Sure. What is your order number? You can say it, or type it on your "
                    "keypad followed by the pound key.")
_MAX_MISSES: Final = 2


class OrderQuestion:
    """Asks for an order number until an order is found (see the module docstring)."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._asked = False
        self._misses = 0

    def find(self, turn: FlowInput) -> Order | Move:
        """The order ``turn`` names, or the move that asks for one."""
        if not turn.order_number:
            if not self._asked:
                self._asked = True
                return Move("order_asked", ASK_ORDER, needs="order_number")
            return self._miss("Sorry, I didn't catch an order number. Please say it, or type "
                              "it on your keypad followed by the pound key.",
                              "caller did not give an order number")
        order_id = canonical_order_id(turn.order_number)
        order = self._flow.backend.order(order_id)
        if order is None:
            self._flow.facts.setdefault("orders_not_found", []).append(order_id)
            return self._miss(f"I couldn't find {spoken_order(order_id)}. Could you say the "
                              "order number again, or type it on your keypad?",
                              f"order {order_id} not found")
        self._flow.facts["order_id"] = order.id
        return order

    def _miss(self, ask_again: str, reason: str) -> Move:
        self._asked = True
        self._misses += 1
        if self._misses >= _MAX_MISSES:
            return Move("order_gave_up", "I'm sorry, I can't find that order. Let me connect "
                        "you with an agent who can look into it.", escalate=reason)
        return Move("order_asked", ask_again, needs="order_number")
