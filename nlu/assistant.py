"""The assistant's mind for one call: a caller turn in, what to say next out.

It puts the pieces of :mod:`nlu` together:

1. **Slots** are read from every turn (order number, postcode, yes/no, months), from the words
   or the keypad entry that came with them. A turn of hesitations alone ("um", "so", "hmm")
   says nothing: the assistant asks again, and above all never takes it for a "yes" to a
   change such as cancelling the membership (the classifier, which has seen no such turns,
   reads "so" as affirm at 0.95).
2. **A running flow** (:mod:`nlu.flows`) gets the turn first: the caller is answering its
   question. The caller can leave it by asking confidently for something else while the flow
   waits for a value the turn does not carry, or by asking for a person.
3. **Otherwise the intent classifier** decides. Below the confidence threshold (0.85 by
   default) the assistant asks one clarifying question ("Just to check: is this about your
   order?"); a second miss in a row offers an agent.
4. **Intents** map to actions: a task intent starts its flow; a question intent is answered
   from the knowledge base (grounded: when retrieval is not confident the assistant says it
   does not have that information and offers an agent); the conversational ones (greeting,
   goodbye, yes, no, repeat, hold: "hang on, let me find it") do what they say.

Make one :class:`Assistant` per call (it keeps the call's dialogue state); the classifier,
answerer and backend behind it are shared by all calls. :meth:`Assistant.respond` is pure
Python and synchronous: the pipeline runs it off the event loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from kb.answers import DONT_KNOW, Answer
from nlu.classifier import IntentPrediction
from nlu.flows import (
    BillingDisputeFlow,
    Flow,
    FlowContext,
    FlowInput,
    MembershipCancelFlow,
    MembershipPauseFlow,
    OrderStatusFlow,
    ReturnEligibilityFlow,
)
from nlu.flows.membership_pause import months_in
from nlu.slots import extract_order_number, extract_postcode, extract_yes_no, keypad_entry

__all__ = [
    "ANYTHING_ELSE", "DIDNT_CATCH", "END_CALL_QUESTION", "HOW_CAN_I_HELP", "KB_INTENTS",
    "KEYPAD_UNUSED", "STILL_UNSURE", "TAKE_YOUR_TIME", "TO_AGENT", "WHAT_ELSE",
    "Answerer", "Assistant", "IntentModel", "Reply", "normalize", "speakable",
]

log = logging.getLogger("iva.assistant")


class Answerer(Protocol):
    """What the assistant needs from the knowledge base (``kb.GroundedAnswerer`` is one)."""

    def answer(self, question: str, *, context: str | None = None,
               topic: str | None = None) -> Answer: ...


class IntentModel(Protocol):
    """What the assistant needs from the intent classifier (``nlu.IntentClassifier``)."""

    def predict(self, text: str) -> IntentPrediction: ...

    def predict_heard(self, hypotheses: Sequence[tuple[str, float]]) -> IntentPrediction:
        """From the recogniser's hypotheses, ``(text, log-probability per token)``, best first."""
        ...


# --- what the assistant says that is not from the KB or a flow ---------------------------------
DIDNT_CATCH: Final = "Sorry, I didn't catch that. Could you say it again?"
TO_AGENT: Final = "Of course. I'll connect you with an agent now."
ANYTHING_ELSE: Final = "You're welcome. Is there anything else I can help you with?"
ANYTHING_ELSE_AFTER_TASK: Final = "Is there anything else I can help you with?"
WHAT_ELSE: Final = "All right. What else can I help you with?"
HOW_CAN_I_HELP: Final = "How can I help you today?"
TAKE_YOUR_TIME: Final = "Sure, take your time."
END_CALL_QUESTION: Final = "Sorry, do you want to end the call now?"
KEYPAD_UNUSED: Final = ("Sorry, I can't use that keypad entry. "
                        "Would you like me to connect you with an agent?")
STILL_UNSURE: Final = ("I'm sorry, I'm still not sure I understand. "
                       "Would you like me to connect you with an agent?")
SAY_IT_DIFFERENTLY: Final = ("Sorry about that. Could you tell me in a few words what you need? "
                             "For example, an order, a return, or your membership.")
NOTHING_TO_REPEAT: Final = "I haven't said anything yet. How can I help you today?"
NO_AGENT: Final = ("I'm sorry, all our agents are busy right now. I can have someone call you "
                   "back at this number, or you can leave a message. Which would you prefer?")
CALLBACK_BOOKED: Final = ("All right. An agent will call you back at this number as soon as "
                          "possible. Thank you for calling, goodbye.")
LEAVE_MESSAGE: Final = ("Please leave your message after this, and I'll pass it on to an agent.")
MESSAGE_TAKEN: Final = "Thank you. I've passed your message on to an agent. Goodbye."
NO_CALLBACK: Final = ("All right. You can call us back any time during our opening hours. "
                      "Goodbye.")
_CALLBACK = re.compile(r"\b(?:call ?back|call me|ring me|phone me|callback|call me back)\b")
_MESSAGE = re.compile(r"\b(?:message|voicemail|voice mail|leave)\b")

# Intents answered from the knowledge base.
KB_INTENTS: Final = frozenset({"shipping", "warranty", "hours", "price_match", "membership_info",
                               "returns_refunds", "payment"})
# Intents that start a flow.
_FLOWS: Final[dict[str, type[Flow]]] = {
    "order_status": OrderStatusFlow,
    "membership_cancel": MembershipCancelFlow,
    "membership_pause": MembershipPauseFlow,
    "billing_dispute": BillingDisputeFlow,
    "returns_refunds": ReturnEligibilityFlow,  # when the caller means an order of theirs
}
# How a clarifying question names an intent.
_ABOUT: Final[dict[str, str]] = {
    "order_status": "an order you placed",
    "returns_refunds": "a return or a refund",
    "shipping": "shipping",
    "membership_cancel": "cancelling your Brightline Plus membership",
    "membership_pause": "pausing your Brightline Plus membership",
    "membership_info": "Brightline Plus membership",
    "billing_dispute": "a charge on your bill",
    "warranty": "a warranty or a faulty product",
    "hours": "our opening hours",
    "price_match": "price matching",
    "payment": "how you can pay",
    "agent": "speaking with an agent",
}

# "my headphones", "the one I bought", "ORD-1001": a return question about the caller's own
# order goes to the eligibility flow, a policy question to the KB.
_OWN_ORDER = re.compile(
    r"\bmy (?!money\b|refund\b)\w+|\bi (?:bought|ordered|purchased|received)\b")
# "and for Plus members?", "what about express?": a follow-up to the last KB answer.
_FOLLOW_UP = re.compile(r"^(?:and|but|so|also|what about|how about|and what about|what if|"
                        r"same for|is that (?:the same|true))\b")
_ONLY_THANKS = re.compile(
    r"^(?:(?:ok|okay|oh|great|perfect|awesome|cool|good|all right|alright|yes|yeah) )*"
    r"(?:thank you|thanks|thank you very much|thanks a lot|thank you so much|cheers)"
    r"(?: (?:so much|very much|a lot|for your help|for that))*$")

# Words that carry no request on their own: a turn of nothing else is heard as empty.
_FILLERS: Final = frozenset(
    {"uh", "um", "umm", "uhm", "er", "erm", "ah", "hmm", "hm", "mm", "so", "well", "and",
     "like", "anyway", "actually", "basically", "oh", "just", "i", "mean"})

_Prompt = Literal["agent_offer", "anything_else", "clarify", "callback_or_message",
                  "message", "end_call"] | None


@dataclass(frozen=True, slots=True)
class Reply:
    """The assistant's decision for one caller turn.

    ``intent`` is what the turn was understood as (the classifier's label, or ``"unclear"``,
    ``"empty"``, ``"keypad"``) with ``confidence``; ``flow`` the flow that answered, if any, and
    ``facts`` what it has established (for the call record); ``slots`` the values found in the
    turn; ``escalate`` the reason a human must take over; ``expects`` the slot the reply asks
    for (``"order_number"``, ``"postcode"``, ...), which turn-taking uses to wait for digits.
    """

    intent: str
    confidence: float
    text: str
    passage_ids: list[str] = field(default_factory=list)
    end_call: bool = False
    escalate: str | None = None
    flow: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, Any] = field(default_factory=dict)
    expects: str | None = None
    ticket: dict[str, Any] | None = None


def normalize(text: str) -> str:
    """Lowercase words without apostrophes or punctuation (decimals such as 12.99 kept)."""
    text = text.lower().replace("\u2019", "").replace("'", "")
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    return " ".join(re.sub(r"[^a-z0-9.]+", " ", text).split())


def speakable(text: str) -> str:
    """Text fit to be spoken: no Markdown marks or URLs, one line."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a Markdown link keeps its words
    text = re.sub(r"https?://\S+|www\.\S+", "", text)
    text = re.sub(r"[*_`#>|]+", "", text)
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class _Turn:
    """One caller turn with everything read from it."""

    text: str  # as recognised
    said: str  # normalised
    dtmf: str  # the keypad entry
    prediction: IntentPrediction | None
    slots: dict[str, Any]

    def flow_input(self, intent: str | None) -> FlowInput:
        return FlowInput(text=self.text, intent=intent, order_number=self.slots.get("order_number"),
                         yes_no=self.slots.get("yes_no"), postcode=self.slots.get("postcode"),
                         months=self.slots.get("months"))


class Assistant:
    """Decides what the assistant says next in one call (see the module docstring)."""

    def __init__(self, *, classifier: IntentModel, answerer: Answerer, context: FlowContext,
                 threshold: float = 0.85, company: str = "Brightline") -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
        self.classifier = classifier
        self.answerer = answerer
        self.context = context
        self.threshold = threshold
        self.company = company
        self.flow: Flow | None = None
        self._flow_intent = ""  # the intent that started the running flow
        self._prompt: _Prompt = None
        self._unclear: _Turn | None = None  # the turn a clarifying question is about
        self._last_question: str | None = None  # for follow-ups to KB answers
        self._last_reply: Reply | None = None
        self._task_question: Reply | None = None  # the flow's question a goodbye interrupted
        self._history: list[Reply] = []

    # --- the one public step ----------------------------------------------------------------------

    def respond(self, text: str, *, dtmf: str = "",
                alternatives: Sequence[tuple[str, float]] = ()) -> Reply:
        """What to say to one caller turn: the recognised ``text`` and any keypad keys with it.
        ``alternatives`` are the recogniser's hypotheses, ``(text, log-probability per token)``
        best first: the intent is read from all of them (slots and KB questions from ``text``)."""
        turn = self._read(text, dtmf, alternatives)
        reply = self._decide(turn)
        reply = Reply(reply.intent, round(min(1.0, max(0.0, reply.confidence)), 3),
                      speakable(reply.text), reply.passage_ids, reply.end_call, reply.escalate,
                      reply.flow, reply.facts, turn.slots, reply.expects, reply.ticket)
        if reply.intent not in ("repeat", "hold"):  # "say that again" repeats the question
            self._last_reply = reply
        self._history.append(reply)
        return reply

    def no_agent_available(self) -> Reply:
        """No agent took the call in time: offer a callback or a message (the next turn
        answers). The caller is never left on hold with nobody coming."""
        self.flow = None
        self._prompt = "callback_or_message"
        reply = Reply("no_agent", 1.0, NO_AGENT)
        self._last_reply = reply
        return reply

    def handoff_context(self) -> dict[str, Any]:
        """What an agent should know before picking up, from this call's dialogue: the
        intents in order, the slots given, the tasks tried and how they ended, the answers
        that failed."""
        intents: list[str] = []
        slots: dict[str, Any] = {}
        tried: list[dict[str, Any]] = []
        failed = 0
        for reply in self._history:
            if reply.intent not in intents and reply.intent not in (
                    "affirm", "deny", "empty", "repeat", "hold", "greeting", "unclear",
                    "keypad"):
                intents.append(reply.intent)
            slots.update({k: v for k, v in reply.slots.items() if k in ("order_number", "postcode")})
            if reply.flow and reply.facts:
                if tried and tried[-1]["flow"] == reply.flow:
                    tried[-1] = {"flow": reply.flow, **reply.facts}
                else:
                    tried.append({"flow": reply.flow, **reply.facts})
            elif reply.passage_ids:
                tried.append({"kb_answer": reply.intent, "passages": reply.passage_ids})
            if reply.text in (DONT_KNOW, STILL_UNSURE, SAY_IT_DIFFERENTLY) or \
                    reply.intent == "unclear":
                failed += 1
        slots.pop("postcode", None)  # verified or not, the postcode itself is not for the desk
        return {"intents": intents, "slots": slots, "tried": tried, "failed_answers": failed,
                "customer_id": self.context.verified_customer_id}

    @property
    def expects(self) -> str | None:
        """The slot the last reply asked for, if any."""
        return self._last_reply.expects if self._last_reply else None

    # --- reading a turn ----------------------------------------------------------------------------

    def _read(self, text: str, dtmf: str, alternatives: Sequence[tuple[str, float]]) -> _Turn:
        said = normalize(text)
        if set(said.split()) <= _FILLERS and extract_yes_no(said) is None:
            said = ""  # "um", "so", "hmm": nothing said yet ("mm hmm" is a yes)
        keys = keypad_entry(dtmf)
        slots: dict[str, Any] = {}
        if said or keys:
            order = extract_order_number(text, dtmf=keys)
            postcode = extract_postcode(text, dtmf=keys)
            expecting = self.expects
            # A bare five digits answers "what is your postcode?"; four answer "which order?".
            if expecting == "postcode" and postcode:
                order = None
            elif expecting == "order_number" and order and postcode and not said:
                postcode = None
            slots = {"order_number": order, "postcode": postcode,
                     "yes_no": extract_yes_no(text) if said else None,
                     "months": months_in(text, bare=expecting == "months") if said else None}
            slots = {k: v for k, v in slots.items() if v is not None}
        prediction = None
        if said:
            prediction = (self.classifier.predict_heard(alternatives) if len(alternatives) > 1
                          else self.classifier.predict(text))
        return _Turn(text, said, keys, prediction, slots)

    # --- deciding -----------------------------------------------------------------------------------

    def _decide(self, turn: _Turn) -> Reply:
        if not turn.said and not turn.dtmf:
            return Reply("empty", 1.0, DIDNT_CATCH, expects=self.expects)
        prediction = turn.prediction
        confident = prediction is not None and prediction.confidence >= self.threshold
        intent = prediction.intent if confident and prediction else None

        # An unsure "hold" outside a task waits too: "is this about needing a moment?" would be
        # an odd question, and a caller who meant something else says it again.
        unsure_hold = (intent is None and prediction is not None and prediction.intent == "hold"
                       and self.flow is None and not turn.slots)
        if intent == "hold" or unsure_hold:  # "hang on, let me find it": wait, keep what was asked
            return Reply("hold", prediction.confidence if prediction else 1.0, TAKE_YOUR_TIME,
                         flow=self.flow.name if self.flow else None, expects=self.expects)
        if intent == "repeat" and self._last_reply is not None:
            last = self._last_reply
            return Reply("repeat", prediction.confidence if prediction else 1.0, last.text,
                         last.passage_ids, flow=last.flow, expects=last.expects)
        if intent == "agent" or (not turn.said and turn.dtmf == "0"):
            return self._to_agent(turn, "caller asked for an agent")

        if self._prompt == "end_call":
            ended = self._answer_end_call(turn, intent)
            if ended is not None:
                return ended
        if self.flow is not None:
            if intent == "goodbye" and self.expects:
                # Mid-task, "that's it" or "hang on" taken for goodbye must not hang up on the
                # caller: ask first, and keep the task's question for a "no".
                self._prompt, self._task_question = "end_call", self._last_reply
                return Reply("goodbye", prediction.confidence if prediction else 1.0,
                             END_CALL_QUESTION, flow=self.flow.name, expects="yes_no")
            if not self._leaves_flow(turn, intent):
                return self._step_flow(turn, intent)
            log.info("call %s: caller left the %s flow for %s", self.context.call_id,
                     self.flow.name, intent)
            self.flow = None

        if not turn.said:
            return self._keypad_only(turn)

        prompt, self._prompt = self._prompt, None
        if prompt is not None:
            answered = self._answer_prompt(prompt, turn, intent)
            if answered is not None:
                return answered

        if self._is_follow_up(turn):
            return self._from_kb(turn, "follow_up", context=self._last_question)

        if intent is None:
            return self._unsure(turn)
        self._unclear = None
        return self._act(intent, turn, prediction.confidence if prediction else 1.0)

    def _act(self, intent: str, turn: _Turn, confidence: float, *,
             context: str | None = None) -> Reply:
        if intent == "greeting":
            self._prompt = None
            return Reply("greeting", confidence,
                         f"Hello, thanks for calling {self.company}. {HOW_CAN_I_HELP}")
        if intent == "goodbye":
            if _ONLY_THANKS.fullmatch(turn.said):
                self._prompt = "anything_else"
                return Reply("goodbye", confidence, ANYTHING_ELSE)
            return self._goodbye(confidence)
        if intent in ("affirm", "deny"):
            return Reply(intent, confidence, f"Sorry, I'm not sure what you mean. {HOW_CAN_I_HELP}")
        if intent == "returns_refunds" and not self._about_own_order(turn):
            answer = self.answerer.answer(turn.text, context=context, topic=intent)
            if answer.confident:
                return self._kb_reply(intent, turn.text, answer)
        if intent in _FLOWS:
            return self._start_flow(intent, turn, confidence)
        if intent in KB_INTENTS:
            return self._from_kb(turn, intent, context=context, confidence=confidence)
        # out_of_scope, or a label this code does not know: never guess.
        self._prompt = "agent_offer"
        return Reply(intent, confidence, DONT_KNOW)

    # --- flows ---------------------------------------------------------------------------------------

    def _start_flow(self, intent: str, turn: _Turn, confidence: float) -> Reply:
        self.flow = _FLOWS[intent](self.context)
        self._flow_intent = intent
        log.info("call %s: %s flow started", self.context.call_id, self.flow.name)
        return self._step_flow(turn, intent, confidence=confidence)

    def _step_flow(self, turn: _Turn, intent: str | None, *,
                   confidence: float | None = None) -> Reply:
        flow = self.flow
        assert flow is not None
        out = flow.step(turn.flow_input(intent))
        # A turn inside a flow is recorded as the flow's, unless it was a plain yes or no.
        label = intent if intent in ("affirm", "deny") else self._flow_intent
        if confidence is None:
            answered = out.needs is None or any(turn.slots.get(k) is not None
                                                for k in ("order_number", "postcode", "yes_no", "months"))
            confidence = 1.0 if answered or not turn.prediction else turn.prediction.confidence
        text = out.say
        if out.done:
            self.flow = None
            if not out.escalate:
                self._prompt = "anything_else"
                text = f"{text} {ANYTHING_ELSE_AFTER_TASK}"
        return Reply(label, confidence, text, escalate=out.escalate, flow=flow.name,
                     facts=out.facts, expects=out.needs)

    def _leaves_flow(self, turn: _Turn, intent: str | None) -> bool:
        """Whether a confident new request ends the running flow instead of answering it."""
        flow = self.flow
        assert flow is not None
        if intent is None or intent in ("affirm", "deny", "repeat") or intent == flow.name:
            return False
        needs = self.expects
        if needs and turn.slots.get(needs) is not None:
            return False  # it answers the question, whatever else it says
        if needs == "yes_no" and turn.slots.get("yes_no") is not None:
            return False
        # A pause asked for while cancelling is the cancel flow's business.
        if flow.name == "membership_cancel" and intent == "membership_pause":
            return False
        return intent in _FLOWS or intent in KB_INTENTS or intent in ("goodbye", "out_of_scope")

    # --- the knowledge base --------------------------------------------------------------------------

    def _from_kb(self, turn: _Turn, intent: str, *, context: str | None = None,
                 confidence: float | None = None) -> Reply:
        # The intent is the answer's topic ("follow_up" is none): when the whole KB has no
        # confident answer, a weaker match in that intent's documents is enough (kb.answers).
        answer = self.answerer.answer(turn.text, context=context, topic=intent)
        if not answer.confident:
            self._prompt = "agent_offer"
            return Reply(intent, confidence if confidence is not None else 1.0 - answer.score,
                         DONT_KNOW)
        return self._kb_reply(intent, turn.text, answer,
                              confidence if confidence is not None else answer.score)

    def _kb_reply(self, intent: str, question: str, answer: Answer,
                  confidence: float | None = None) -> Reply:
        self._last_question = question
        return Reply(intent, answer.score if confidence is None else confidence, answer.text,
                     list(answer.passage_ids))

    def _is_follow_up(self, turn: _Turn) -> bool:
        return (self._last_question is not None and len(turn.said.split()) <= 8
                and bool(_FOLLOW_UP.match(turn.said)))

    @staticmethod
    def _about_own_order(turn: _Turn) -> bool:
        return "order_number" in turn.slots or bool(_OWN_ORDER.search(turn.said))

    # --- confidence ----------------------------------------------------------------------------------

    def _unsure(self, turn: _Turn) -> Reply:
        """Below the threshold: one clarifying question, then the offer of an agent."""
        prediction = turn.prediction
        assert prediction is not None
        if self._unclear is not None:
            self._unclear = None
            self._prompt = "agent_offer"
            return Reply("unclear", prediction.confidence, STILL_UNSURE,
                         escalate=None)
        self._unclear = turn
        self._prompt = "clarify"
        about = _ABOUT.get(prediction.intent)
        if about is None:
            return Reply("unclear", prediction.confidence, SAY_IT_DIFFERENTLY)
        return Reply("unclear", prediction.confidence,
                     f"Sorry, just to check: is this about {about}?", expects="yes_no")

    def _answer_end_call(self, turn: _Turn, intent: str | None) -> Reply | None:
        """After "do you want to end the call?": yes (or goodbye again) ends it, no asks the
        task's question again; anything else is an answer to that question (None)."""
        self._prompt = None
        question, self._task_question = self._task_question, None
        ending = turn.slots.get("yes_no")
        if ending is None and intent == "goodbye":
            ending = True
        if ending is True:
            self.flow = None
            return self._goodbye(turn.prediction.confidence if turn.prediction else 1.0)
        if ending is False and question is not None:
            return Reply(question.intent, 1.0, question.text, flow=question.flow,
                         expects=question.expects)
        return None

    def _answer_prompt(self, prompt: _Prompt, turn: _Turn, intent: str | None) -> Reply | None:
        """The caller's answer to the question our last reply asked, or None if it is not one."""
        yes_no = turn.slots.get("yes_no")
        if yes_no is None and intent in ("affirm", "deny"):
            yes_no = intent == "affirm"
        if prompt == "message":
            return Reply("message", 1.0, MESSAGE_TAKEN, end_call=True,
                         ticket={"kind": "message", "text": turn.text.strip()})
        if prompt == "callback_or_message":
            if _MESSAGE.search(turn.said) and not _CALLBACK.search(turn.said):
                self._prompt = "message"
                return Reply("message", 1.0, LEAVE_MESSAGE)
            if _CALLBACK.search(turn.said) or yes_no is True:
                return Reply("callback", 1.0, CALLBACK_BOOKED, end_call=True,
                             ticket={"kind": "callback", "phone": self.context.caller_phone})
            if yes_no is False or intent == "goodbye":
                return Reply("goodbye", 1.0, NO_CALLBACK, end_call=True)
            self._prompt = "callback_or_message"
            return Reply("unclear", 1.0, "Sorry, would you like a call back, or to leave a "
                         "message?")
        if prompt == "clarify":
            unclear = self._unclear
            assert unclear is not None and unclear.prediction is not None
            if yes_no is True and intent in (None, "affirm"):
                self._unclear = None
                guess = unclear.prediction
                return self._act(guess.intent, unclear, guess.confidence)
            if yes_no is False and intent in (None, "deny"):
                self._prompt = "clarify"  # still one chance left before the agent offer
                return Reply("deny", turn.prediction.confidence if turn.prediction else 1.0,
                             SAY_IT_DIFFERENTLY)
            if intent is not None:  # the caller said it again, clearly this time
                self._unclear = None
                return self._act(intent, turn, turn.prediction.confidence if turn.prediction
                                 else 1.0, context=unclear.text)
            return None  # a second miss: _unsure offers an agent
        if yes_no is None:
            return None
        if len(turn.said.split()) > 6 and intent not in ("affirm", "deny", "goodbye"):
            # "this is my third time and no one fixed it" holds a "no" but answers nothing.
            return None
        if prompt == "agent_offer":
            if yes_no:
                return self._to_agent(turn, "caller accepted the offer of an agent")
            self._prompt = "anything_else"
            return Reply("deny", 1.0, WHAT_ELSE)
        # anything_else
        if yes_no:
            return Reply("affirm", 1.0, "Sure. What can I help you with?")
        return self._goodbye(1.0)

    # --- endings -------------------------------------------------------------------------------------

    def _to_agent(self, turn: _Turn, reason: str) -> Reply:
        facts: dict[str, Any] = {}
        if self.flow is not None:
            facts = dict(self.flow.facts)
            self.flow = None
        self._prompt = None
        confidence = turn.prediction.confidence if turn.prediction else 1.0
        return Reply("agent", confidence, TO_AGENT, escalate=reason, facts=facts)

    def _keypad_only(self, turn: _Turn) -> Reply:
        if "order_number" in turn.slots:  # typed an order number out of the blue
            return self._start_flow("order_status", turn, 1.0)
        self._prompt = "agent_offer"
        return Reply("keypad", 1.0, KEYPAD_UNUSED)

    def _goodbye(self, confidence: float) -> Reply:
        return Reply("goodbye", confidence, f"Thank you for calling {self.company}. Goodbye.",
                     end_call=True)
