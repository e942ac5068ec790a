"""Billing dispute: always handled by a human agent (``DEMO_COMPANY.md``).

The flow has one step: it tells the caller an agent will take over and escalates with the
reason, keeping an order number the caller already gave so the agent sees it at once.
"""

from __future__ import annotations

from typing import ClassVar, Final

from kb.backend import canonical_order_id
from nlu.flows.machine import ESCALATED, Flow, FlowInput, Move

__all__ = ["BillingDisputeFlow"]

TO_BILLING_AGENT: Final = ("Billing disputes are handled by our agents, so I'll connect you "
                           "with one now. I'll pass on what you've told me.")


class BillingDisputeFlow(Flow):
    """Hand a billing dispute to a human, with the reason."""

    name = "billing_dispute"
    transitions: ClassVar[dict[tuple[str, str], str]] = {
        # (state, event)              next state
        ("start", "handed_to_agent"): ESCALATED,
    }

    def on_start(self, turn: FlowInput) -> Move:
        if turn.order_number:
            self.facts["order_id"] = canonical_order_id(turn.order_number)
        self.facts["outcome"] = "handed_to_agent"
        return Move("handed_to_agent", TO_BILLING_AGENT,
                    escalate="billing dispute: always handled by a human agent")
