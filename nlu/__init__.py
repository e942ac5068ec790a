"""Understanding callers: intents, slots, flows, and the assistant that ties them together.

- :class:`~nlu.classifier.IntentClassifier`: calibrated intents from ``nlu/data`` examples.
- :mod:`nlu.slots`: order numbers, postcodes, dates, yes/no from speech and the keypad.
- :mod:`nlu.flows`: the multi-step tasks (order status, returns, membership cancel and pause,
  billing disputes) as small state machines over the backend.
- :class:`~nlu.assistant.Assistant`: one per call; a caller turn in, what to say next out.
"""

from nlu.assistant import Assistant, Reply
from nlu.classifier import IntentClassifier, IntentPrediction

__all__ = ["Assistant", "IntentClassifier", "IntentPrediction", "Reply"]
