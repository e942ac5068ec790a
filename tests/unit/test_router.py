"""The first router: rules for greetings, goodbyes and agents, the KB for everything else."""

from __future__ import annotations

import re

import pytest

from kb import DEMO_KB_DIR, DONT_KNOW, Answer, GroundedAnswerer, KnowledgeBase
from nlu import INTENTS, Reply, Router

pytestmark = pytest.mark.unit

DIDNT_CATCH = "Sorry, I didn't catch that. Could you say it again?"


@pytest.fixture(scope="module")
def answerer() -> GroundedAnswerer:
    return GroundedAnswerer(KnowledgeBase.from_directory(DEMO_KB_DIR))


@pytest.fixture
def router(answerer: GroundedAnswerer) -> Router:
    return Router(answerer)  # one per call, as in the service


class FakeAnswerer:
    """Says whatever it was given, confidently, and remembers the context it was passed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.contexts: list[str | None] = []

    def answer(self, question: str, *, context: str | None = None) -> Answer:
        self.contexts.append(context)
        return Answer(self.text, ["fake#1"], True, 0.9)


def assert_speakable(reply: Reply) -> None:
    assert reply.intent in INTENTS
    assert 0.0 <= reply.confidence <= 1.0
    assert reply.text and "\n" not in reply.text
    assert not re.search(r"https?://|www\.|[*_`#\[\]]", reply.text)
    assert len(reply.text.split()) <= 40


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_or_blank_text_asks_the_caller_to_repeat(router: Router, text: str) -> None:
    reply = router.route(text)
    assert (reply.intent, reply.text, reply.end_call) == ("empty", DIDNT_CATCH, False)


def test_a_hesitation_alone_asks_the_caller_to_repeat(router: Router) -> None:
    assert router.route("um").intent == "empty"


@pytest.mark.parametrize("text", ["hello", "Hi there!", "hey how are you", "good morning",
                                  "hello is this brightline", "uh hi"])
def test_a_greeting_is_greeted_back(router: Router, text: str) -> None:
    reply = router.route(text)
    assert reply.intent == "greeting"
    assert "How can I help" in reply.text
    assert not reply.end_call


def test_a_greeting_followed_by_a_question_answers_the_question(router: Router) -> None:
    reply = router.route("hi whats your return policy")
    assert reply.intent == "kb_answer"
    assert "30 days" in reply.text


@pytest.mark.parametrize("text", ["bye", "goodbye", "ok thats all thanks", "no thats all",
                                  "thank you bye", "that's everything, have a nice day"])
def test_a_goodbye_ends_the_call(router: Router, text: str) -> None:
    reply = router.route(text)
    assert reply.intent == "goodbye"
    assert reply.end_call
    assert "Goodbye" in reply.text


def test_thanks_asks_if_there_is_anything_else_and_no_ends_the_call(router: Router) -> None:
    reply = router.route("thank you")
    assert (reply.intent, reply.end_call) == ("goodbye", False)
    assert "anything else" in reply.text
    assert router.route("no thanks").end_call


@pytest.mark.parametrize("text", ["agent", "representative please", "i want to talk to a real person",
                                  "can i speak to someone", "let me speak to a human",
                                  "transfer me to customer service", "get me an agent",
                                  "hello can i talk to an agent please"])
def test_asking_for_a_human_goes_to_an_agent(router: Router, text: str) -> None:
    reply = router.route(text)
    assert reply.intent == "agent"
    assert "agent" in reply.text
    assert not reply.end_call


@pytest.mark.parametrize("text", ["when can i talk to someone", "what time can i speak to an agent",
                                  "are agents available on saturday"])
def test_asking_when_a_human_is_available_is_answered_from_the_kb(router: Router, text: str) -> None:
    reply = router.route(text)
    assert reply.intent == "kb_answer"
    assert reply.passage_ids == ["agent-hours#1"]


def test_zero_on_the_keypad_asks_for_an_agent(router: Router) -> None:
    assert router.route("", dtmf="0").intent == "agent"


def test_other_keypad_digits_alone_are_not_understood_yet(router: Router) -> None:
    reply = router.route("", dtmf="1001#")
    assert reply.intent == "unknown"
    assert router.route("yes").intent == "agent"


@pytest.mark.parametrize(("text", "passage_id", "figure"), [
    ("how long do i have to return something", "returns#1", "30 days"),
    ("whats your return policy for plus members", "returns#1", "60 days"),
    ("how much is express shipping", "shipping#2", "$12.99"),
    ("how long do refunds take", "refunds#1", "5 to 7 business days"),
    ("How much does Brightline Plus cost?", "brightline-plus#1", "$9.99"),
    ("what's the warranty for plus members", "warranty#1", "2 years"),
])
def test_a_question_is_answered_from_the_knowledge_base(
    router: Router, text: str, passage_id: str, figure: str
) -> None:
    reply = router.route(text)
    assert reply.intent == "kb_answer"
    assert reply.passage_ids[0] == passage_id
    assert figure in reply.text
    assert reply.confidence > 0.5
    assert_speakable(reply)


@pytest.mark.parametrize("text", ["what's the weather in paris", "do you sell cars",
                                  "who won the game last night", "can you book me a flight"])
def test_an_unknown_question_gets_the_honest_answer_and_an_agent_offer(router: Router, text: str) -> None:
    reply = router.route(text)
    assert (reply.intent, reply.text, reply.passage_ids) == ("unknown", DONT_KNOW, [])
    assert reply.confidence > 0.5  # sure that it does not know


def test_yes_to_the_agent_offer_goes_to_an_agent(router: Router) -> None:
    router.route("what is the capital of france")
    assert router.route("yes please").intent == "agent"


def test_no_to_the_agent_offer_asks_what_else_and_a_second_no_ends_the_call(router: Router) -> None:
    router.route("what is the capital of france")
    reply = router.route("no")
    assert (reply.intent, reply.end_call) == ("unknown", False)
    assert router.route("no").end_call


def test_a_new_question_after_the_agent_offer_is_answered(router: Router) -> None:
    router.route("do you sell cars")
    assert router.route("how much is express shipping").intent == "kb_answer"


def test_yes_out_of_the_blue_does_not_transfer_or_end_the_call(router: Router) -> None:
    reply = router.route("yes")
    assert reply.intent == "unknown"
    assert not reply.end_call


def test_a_follow_up_question_uses_the_previous_question_as_context(router: Router) -> None:
    router.route("how long is the warranty")
    reply = router.route("and for plus members")
    assert reply.intent == "kb_answer"
    assert "2 years" in reply.text


def test_replies_from_any_answerer_are_made_speakable() -> None:
    fake = FakeAnswerer("See **our** [policy](https://x.example/p) at https://x.example now.")
    reply = Router(fake).route("what is the policy")
    assert reply.text == "See our policy at now."
    assert reply.passage_ids == ["fake#1"]
    assert_speakable(reply)


def test_the_router_passes_the_last_answered_question_as_context() -> None:
    fake = FakeAnswerer("Fine.")
    router = Router(fake)
    router.route("first question")
    router.route("second question")
    assert fake.contexts == [None, "first question"]


def test_the_company_name_is_configurable(answerer: GroundedAnswerer) -> None:
    assert "Acme" in Router(answerer, company="Acme").route("hello").text


@pytest.mark.parametrize("text", ["hello", "agent", "bye", "", "thanks", "what is the return policy",
                                  "blah blah", "i was charged twice", "yes", "no"])
def test_every_reply_is_short_plain_speech_with_a_known_intent(router: Router, text: str) -> None:
    assert_speakable(router.route(text))
