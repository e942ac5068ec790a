"""The first router: a caller turn in, what to say next out.

A few small, honest rules recognise greetings, goodbyes and requests for a human; everything
else is a question for the knowledge base, answered by a :class:`~kb.answers.GroundedAnswerer`
(any :class:`Answerer` will do) or met with an honest "I don't know" and the offer of an
agent. The full intent classifier comes later and replaces the rules behind the same
``route(text, *, dtmf="") -> Reply``.

A router keeps one call's tiny dialogue state: whether its last reply offered an agent or
asked "anything else?" (so that "yes" and "no" mean something), and the last question it
answered (so that "and for Plus members?" is understood). Make one per call; the answerer
behind it is shared by all calls.

Replies are spoken on the phone: short plain sentences, no Markdown, no URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from kb.answers import DONT_KNOW, Answer

__all__ = ["INTENTS", "Answerer", "Intent", "Reply", "Router"]


class Answerer(Protocol):
    """What the router needs from the knowledge base (``kb.GroundedAnswerer`` is one)."""

    def answer(self, question: str, *, context: str | None = None) -> Answer: ...


Intent = Literal["greeting", "goodbye", "agent", "kb_answer", "unknown", "empty"]
INTENTS: Final[tuple[Intent, ...]] = (
    "greeting", "goodbye", "agent", "kb_answer", "unknown", "empty",
)

DIDNT_CATCH = "Sorry, I didn't catch that. Could you say it again?"
TO_AGENT = "Of course. I'll connect you with an agent now."
ANYTHING_ELSE = "You're welcome. Is there anything else I can help you with?"
WHAT_ELSE = "All right. What else can I help you with?"
HOW_CAN_I_HELP = "How can I help you today?"
KEYPAD_UNUSED = "Sorry, I can't use that keypad entry. Would you like me to connect you with an agent?"


@dataclass(frozen=True, slots=True)
class Reply:
    """The router's decision for one caller turn.

    ``confidence`` is how sure the router is of ``intent``: fixed for the rules, the
    normalised retrieval score for ``kb_answer``, and one minus it for ``unknown``.
    """

    intent: Intent
    confidence: float
    text: str
    passage_ids: list[str] = field(default_factory=list)
    end_call: bool = False


# --- rules -------------------------------------------------------------------------------------
# Patterns run on normalised text: lower case, no apostrophes, words separated by one space.

_FILLER = r"(?:um+|uh+|er+|oh|ah|ok|okay|so|well|yes|yeah|please|just|hi|hello|hey|there)"
_HESITATION = re.compile(r"(?:(?:um+|uh+|er+|erm|hm+|mm+|ah+|oh) ?)+")
_GREETING_PREFIX = re.compile(
    r"^(?:(?:um+|uh+|oh|yes|yeah|ok|okay|well) )*"
    r"(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening)|greetings)"
    r"(?: there| brightline| everyone)?(?: how are you(?: doing)?(?: today)?)?"
    r"(?: is (?:this|that) brightline| is anyone there| can you hear me)?\b ?"
)
_GOODBYE = re.compile(
    r"\b(?:good ?bye|bye(?: bye)?|thats all|that is all|thats it for (?:now|today)|"
    r"thats everything|nothing else|have a (?:nice|good|great) (?:day|evening|night|one)|"
    r"talk to you later|you can hang up)\b|"
    rf"^(?:{_FILLER} )*(?:im|i am|were|we are) (?:done|all set|good)(?: {_FILLER}| thanks| thank you)*$"
)
_THANKS = re.compile(
    rf"^(?:{_FILLER} )*(?:(?:great|perfect|awesome|cool|good|all right|alright) )?"
    r"(?:thank you|thanks|thank you very much|thanks a lot|thank you so much|cheers)"
    rf"(?: (?:so much|very much|a lot))?(?: {_FILLER})*$"
)
_HUMAN = (
    r"(?:a |an |the |your |some )?(?:live |real |actual )?"
    r"(?:agent|agents|human|person|representative|rep|operator|someone|somebody|manager|"
    r"supervisor|customer service|customer support)"
)
_AGENT_REQUEST = re.compile(
    rf"\b(?:speak|talk|chat) (?:to|with) {_HUMAN}\b|"
    rf"\b(?:transfer|connect|put) me (?:through )?(?:to|with) {_HUMAN}\b|"
    rf"\btransfer me\b|\bconnect me\b|"
    rf"\b(?:get|give) me {_HUMAN}\b|"
    rf"\b(?:i (?:want|need|would like)|id like|can i (?:get|have)|let me have) {_HUMAN}\b|"
    rf"^(?:{_FILLER} )*{_HUMAN}(?: {_FILLER})*$"
)
# "When can I talk to someone?" asks about hours: a question for the knowledge base.
_ABOUT_HOURS = re.compile(
    r"\b(?:when|what time|hours|open|available|availability|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|weekends?|tomorrow|tonight)\b"
)
_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|ok|okay|please|please do|go ahead|yes please|sure thing|"
    r"that would be (?:great|good|nice)|i would|i would like that|do it|definitely|absolutely|"
    r"of course|why not|alright|all right)(?: (?:yes|please|thanks|thank you|go ahead))*$"
)
_NO = re.compile(
    r"^(?:no|nope|nah|no thanks|no thank you|not now|not right now|not really|im good|"
    r"i am good|im fine|i am fine|never mind|nevermind|dont)(?: (?:thanks|thank you|im good))*$"
)


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


# What a reply asked the caller, so that the next "yes" or "no" can be understood.
_Prompt = Literal["agent_offer", "anything_else"] | None


class Router:
    """Decides what the assistant says next; one per call (see the module docstring)."""

    def __init__(self, answerer: Answerer, *, company: str = "Brightline") -> None:
        self.answerer = answerer
        self.company = company
        self._prompt: _Prompt = None
        self._last_question: str | None = None

    def route(self, text: str, *, dtmf: str = "") -> Reply:
        """Route one caller turn: the recognised ``text`` and any keypad digits typed with it."""
        reply, self._prompt = self._decide(normalize(text), dtmf.strip())
        return Reply(
            reply.intent,
            min(1.0, max(0.0, reply.confidence)),
            speakable(reply.text),
            reply.passage_ids,
            reply.end_call,
        )

    def _goodbye(self) -> Reply:
        return Reply("goodbye", 0.9, f"Thank you for calling {self.company}. Goodbye.", end_call=True)

    def _decide(self, said: str, dtmf: str) -> tuple[Reply, _Prompt]:
        if not said:
            if dtmf == "0":  # the keypad's usual "operator" key
                return Reply("agent", 0.9, TO_AGENT), None
            if dtmf:
                return Reply("unknown", 0.5, KEYPAD_UNUSED), "agent_offer"
            return Reply("empty", 1.0, DIDNT_CATCH), self._prompt  # the question still stands

        if self._prompt is not None:
            answer = self._answer_to_prompt(said, self._prompt)
            if answer is not None:
                return answer

        greeted = _GREETING_PREFIX.match(said)
        if greeted:
            said = said[greeted.end():].strip()
            if not said or re.fullmatch(rf"(?:{_FILLER} ?)+", said):
                greeting = f"Hello, thanks for calling {self.company}. {HOW_CAN_I_HELP}"
                return Reply("greeting", 0.95, greeting), None
        elif _HESITATION.fullmatch(said):
            return Reply("empty", 0.8, DIDNT_CATCH), self._prompt

        if _GOODBYE.search(said):
            return self._goodbye(), None
        if _THANKS.fullmatch(said):
            return Reply("goodbye", 0.7, ANYTHING_ELSE), "anything_else"
        if _AGENT_REQUEST.search(said) and not _ABOUT_HOURS.search(said):
            return Reply("agent", 0.9, TO_AGENT), None
        if _YES.fullmatch(said) or _NO.fullmatch(said):  # "yes" to nothing we asked
            return Reply("unknown", 0.6, f"Sorry, I'm not sure what you mean. {HOW_CAN_I_HELP}"), None
        return self._ask_knowledge_base(said)

    def _answer_to_prompt(self, said: str, prompt: _Prompt) -> tuple[Reply, _Prompt] | None:
        """A yes or no to the question our last reply asked, or None if it is something else."""
        if _YES.fullmatch(said):
            if prompt == "agent_offer":
                return Reply("agent", 0.9, TO_AGENT), None
            return Reply("unknown", 0.8, "Sure. What can I help you with?"), None
        if _NO.fullmatch(said):
            if prompt == "agent_offer":
                return Reply("unknown", 0.8, WHAT_ELSE), "anything_else"
            return self._goodbye(), None
        return None

    def _ask_knowledge_base(self, said: str) -> tuple[Reply, _Prompt]:
        answer = self.answerer.answer(said, context=self._last_question)
        if not answer.confident:
            return Reply("unknown", 1.0 - answer.score, DONT_KNOW), "agent_offer"
        self._last_question = said
        return Reply("kb_answer", answer.score, answer.text, list(answer.passage_ids)), None
