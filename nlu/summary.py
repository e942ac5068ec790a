"""The handoff summary: what a human agent reads in the seconds before picking up.

Pure: it takes what the call already knows (the caller, the customer record the caller ID
matched, the assistant's dialogue context, the sentiment trend, the reason for the transfer)
and returns a dict for the desk, with ``text``, one short paragraph an agent can read aloud
in their head in five seconds.
"""

from __future__ import annotations

from typing import Any

__all__ = ["handoff_summary"]

_INTENT_WORDS = {
    "order_status": "an order", "returns_refunds": "a return or refund", "shipping": "shipping",
    "membership_cancel": "cancelling Brightline Plus", "membership_pause": "pausing Brightline Plus",
    "membership_info": "Brightline Plus", "billing_dispute": "a billing dispute",
    "warranty": "a warranty claim", "hours": "opening hours", "price_match": "a price match",
    "payment": "ways to pay",
    "out_of_scope": "something we don't cover", "agent": "speaking to a person",
}


def _masked(phone: str | None) -> str | None:
    if not phone:
        return None
    return "*" * max(0, len(phone) - 4) + phone[-4:]


def handoff_summary(*, reason: str, caller: str | None, customer: Any | None,
                    plus_member: bool | None, context: dict[str, Any],
                    sentiment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary of a call for the agent desk (see the module docstring).

    ``customer`` is a ``kb.backend.Customer`` (or None when the caller ID matched nobody);
    ``context`` is ``Assistant.handoff_context()``; ``sentiment`` has ``label`` and ``trend``.
    """
    intents = [i for i in context.get("intents", []) if i != "agent"] or \
        list(context.get("intents", []))
    main = intents[0] if intents else None
    slots = dict(context.get("slots", {}))
    tried = list(context.get("tried", []))
    sentiment = dict(sentiment or {})
    who = customer.name if customer is not None else "An unidentified caller"
    verified = context.get("customer_id") is not None and customer is not None and \
        context.get("customer_id") == customer.id
    parts = [f"{who}"]
    if customer is not None:
        parts[0] += " (Plus member)" if plus_member else ""
        parts[0] += ", verified by postcode" if verified else ", identified by caller ID"
    about = ", then ".join(_INTENT_WORDS.get(i, i.replace("_", " ")) for i in intents[:3])
    sentence = f"{parts[0]} called about {about}." if about else f"{parts[0]} called."
    facts = []
    if slots.get("order_number"):
        facts.append(f"Order {slots['order_number']}.")
    for attempt in tried[-3:]:
        if "flow" in attempt:
            outcome = attempt.get("outcome") or "not finished"
            facts.append(f"Tried {attempt['flow'].replace('_', ' ')}: {outcome}.")
        elif "kb_answer" in attempt:
            facts.append(f"Answered from the KB ({', '.join(attempt.get('passages', []))}).")
    if context.get("failed_answers"):
        facts.append(f"{context['failed_answers']} answer(s) did not help.")
    if sentiment.get("label"):
        facts.append(f"Mood: {sentiment['label']}.")
    facts.append(f"Transfer: {reason}.")
    return {
        "customer": None if customer is None else {
            "id": customer.id, "name": customer.name, "plus_member": plus_member,
            "verified": verified,
        },
        "caller": _masked(caller),
        "intent": main,
        "intents": intents,
        "slots": slots,
        "tried": tried,
        "failed_answers": context.get("failed_answers", 0),
        "sentiment": sentiment,
        "reason": reason,
        "text": " ".join([sentence, *facts]),
    }
