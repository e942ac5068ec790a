"""Understanding a caller turn and deciding what to do with it.

For now: :class:`~nlu.router.Router`, small rules for greetings, goodbyes and requests for a
human in front of the knowledge base's grounded answers. The intent classifier, slots, flows
and the escalation predictor come later behind the same ``route(text, *, dtmf="")``.
"""

from nlu.router import INTENTS, Answerer, Intent, Reply, Router

__all__ = ["INTENTS", "Answerer", "Intent", "Reply", "Router"]
