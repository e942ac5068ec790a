"""Multi-step flows: small state machines that do a caller's task against the backend.

Each flow is one file with its table of transitions (see :mod:`nlu.flows.machine`):

- :class:`OrderStatusFlow`: where an order is; explains a delay and the new date.
- :class:`ReturnEligibilityFlow`: the return window from delivery date, item type and Plus.
- :class:`MembershipCancelFlow`: verify → membership → pending orders → offer a pause →
  confirm → cancel → when it ends → audit.
- :class:`MembershipPauseFlow`: verify → how many months (1 to 3) → confirm → pause → audit.
- :class:`BillingDisputeFlow`: always hands the call to a human.

Use: make one :class:`FlowContext` per call, start a flow when its intent is recognised, and
feed it every caller turn until its output is ``done``::

    context = FlowContext(backend, call_id="CA123", caller_phone="+15550100", today=DEMO_TODAY)
    flow = MembershipCancelFlow(context)
    out = flow.step(FlowInput("I want to cancel my membership", intent="membership_cancel"))
    out.say, out.needs   # "Before I make any changes ... postcode ...", "postcode"
    out = flow.step(FlowInput("43004", postcode="43004"))
"""

from typing import Final

from nlu.flows.billing_dispute import BillingDisputeFlow
from nlu.flows.machine import (
    DONE,
    ESCALATED,
    Flow,
    FlowContext,
    FlowDefinitionError,
    FlowError,
    FlowFinishedError,
    FlowInput,
    FlowOutput,
    Move,
)
from nlu.flows.membership_cancel import MembershipCancelFlow
from nlu.flows.membership_pause import MembershipPauseFlow
from nlu.flows.order_status import OrderStatusFlow, describe_order
from nlu.flows.return_eligibility import (
    ReturnDecision,
    ReturnEligibilityFlow,
    decide_return,
    return_window_days,
)

# Every flow by its name (the ``flow`` fact of its outputs).
FLOWS: Final[dict[str, type[Flow]]] = {
    flow.name: flow
    for flow in (OrderStatusFlow, ReturnEligibilityFlow, MembershipCancelFlow,
                 MembershipPauseFlow, BillingDisputeFlow)
}

__all__ = [
    "DONE", "ESCALATED", "FLOWS", "BillingDisputeFlow", "Flow", "FlowContext",
    "FlowDefinitionError", "FlowError", "FlowFinishedError", "FlowInput", "FlowOutput",
    "MembershipCancelFlow", "MembershipPauseFlow", "Move", "OrderStatusFlow", "ReturnDecision",
    "ReturnEligibilityFlow", "decide_return", "describe_order", "return_window_days",
]
