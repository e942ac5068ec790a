"""DialogueProcessor: keypad entries (``#`` and the timeout), the assistant per call, and what
the call record gets from each reply."""

import pytest
from pipecat.frames.frames import InputDTMFFrame, KeypadEntry
from pipecat.tests.utils import SleepFrame, run_test

from nlu.assistant import Reply
from telephony.frames import CallStartedFrame
from tests.fakes import MemoryRecorder
from voice.frames import AssistantReplyFrame, CallerTurnFrame
from voice.session import CallSession
from voice.speaking import DialogueProcessor

pytestmark = pytest.mark.unit


class EchoAssistant:
    """Replies with what it got; escalates when asked for an agent."""

    threshold = 0.85

    def __init__(self, call_id: str, caller: str | None) -> None:
        self.call_id, self.caller = call_id, caller
        self.turns: list[tuple[str, str]] = []
        self.heard: list[tuple[tuple[str, float], ...]] = []  # the recogniser's hypotheses
        self.flow = None

    def respond(self, text: str, *, dtmf: str = "",
                alternatives: tuple[tuple[str, float], ...] = ()) -> Reply:
        self.turns.append((text, dtmf))
        self.heard.append(tuple(alternatives))
        if text == "agent":
            return Reply("agent", 0.99, "Connecting you.", escalate="caller asked for an agent",
                         flow="order_status", facts={"order_id": "ORD-1001"})
        if text == "boom":
            raise RuntimeError("broken")
        return Reply("order_status", 0.9, f"got {text or dtmf}", slots={"order_number": "ORD-1"},
                     expects="order_number")


def make(timeout_s: float = 5.0):
    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    session.begin("CA1", caller="+15550100")
    made: list[EchoAssistant] = []

    def factory(call_id: str, caller: str | None) -> EchoAssistant:
        made.append(EchoAssistant(call_id, caller))
        return made[-1]

    processor = DialogueProcessor(session=session, assistant_factory=factory, greeting="Hi.",
                                  dtmf_timeout_s=timeout_s)
    return processor, session, recorder, made


def keys(text: str) -> list:
    return [InputDTMFFrame(button=KeypadEntry(k)) for k in text]


def replies(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, AssistantReplyFrame)]


async def test_the_call_start_makes_the_assistant_with_the_caller_id_and_greets():
    processor, _, _, made = make()
    down, _ = await run_test(processor, frames_to_send=[
        CallStartedFrame(call_id="CA1", caller="+15550100")])
    assert replies(down) == ["Hi."]
    assert [(a.call_id, a.caller) for a in made] == [("CA1", "+15550100")]


async def test_keys_up_to_the_pound_key_are_one_entry():
    processor, _, recorder, made = make()
    down, _ = await run_test(processor, frames_to_send=[*keys("10"), *keys("01#")])
    assert replies(down) == ["got 1001#"]
    assert made[0].turns == [("", "1001#")]
    (turn,) = recorder.turns_of("caller")
    assert turn["text"] == "[keypad] 1001#" and turn["meta"]["dtmf"] == "1001"


async def test_keys_without_the_pound_key_are_taken_after_the_timeout():
    processor, _, recorder, made = make(timeout_s=0.3)
    down, _ = await run_test(processor, frames_to_send=[*keys("1002"), SleepFrame(0.6)])
    assert replies(down) == ["got 1002"]
    assert "dtmf_timeout" in recorder.events("CA1")


async def test_a_reply_that_escalates_is_an_event_with_its_reason_and_facts():
    processor, session, recorder, _ = make()
    await run_test(processor, frames_to_send=[
        CallerTurnFrame(text="agent", start_ms=0, end_ms=500, speech_end_at=0.0)])
    (event,) = [e for e in recorder.calls["CA1"]["events"] if e["type"] == "escalation"]
    assert event["reason"] == "caller asked for an agent"
    assert event["facts"] == {"order_id": "ORD-1001"}


async def test_slots_and_what_the_reply_expects_reach_the_record_and_turn_taking():
    processor, session, recorder, _ = make()
    await run_test(processor, frames_to_send=[
        CallerTurnFrame(text="where is my order", start_ms=0, end_ms=500, speech_end_at=0.0)])
    (turn,) = recorder.turns_of("caller")
    assert turn["meta"]["slots"] == {"order_number": "ORD-1"}
    assert session.expecting == "order_number"


async def test_the_recognisers_hypotheses_reach_the_assistant_with_the_turn():
    processor, _session, _recorder, made = make()
    heard = (("Can I cancel my plus?", -0.3), ("Can I cancel my bus?", -0.5))
    await run_test(processor, frames_to_send=[
        CallerTurnFrame(text="Can I cancel my plus?", start_ms=0, end_ms=500, speech_end_at=0.0,
                        alternatives=heard),
        CallerTurnFrame(text="yes", start_ms=900, end_ms=1200, speech_end_at=0.0)])
    assert made[0].turns == [("Can I cancel my plus?", ""), ("yes", "")]
    assert made[0].heard == [heard, ()]


async def test_an_assistant_that_fails_gets_an_apology_not_a_dead_call():
    processor, _, recorder, _ = make()
    down, _ = await run_test(processor, frames_to_send=[
        CallerTurnFrame(text="boom", start_ms=0, end_ms=500, speech_end_at=0.0),
        CallerTurnFrame(text="hello", start_ms=600, end_ms=900, speech_end_at=0.0)])
    assert replies(down)[0].startswith("Sorry, something went wrong")
    assert replies(down)[1] == "got hello"
    assert "assistant_error" in recorder.events("CA1")


def make_with_mood():
    from nlu.escalation import EscalationModel, EscalationSettings
    from voice.mood import CallMood

    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    session.begin("CA1", caller="+15550100")
    mood = CallMood(EscalationModel.default(), EscalationSettings())
    processor = DialogueProcessor(session=session, assistant_factory=EchoAssistant,
                                  greeting="Hi.", mood=mood)
    return processor, recorder


def turns(*texts: str) -> list:
    return [CallerTurnFrame(text=t, start_ms=i * 5000, end_ms=i * 5000 + 3000, speech_end_at=0.0)
            for i, t in enumerate(texts)]


async def test_a_boiling_caller_is_handed_over_with_the_reasons():
    from voice.mood import ESCALATION_ANNOUNCEMENT

    processor, recorder = make_with_mood()
    down, _ = await run_test(processor, frames_to_send=turns(
        "where is my order",
        "this is the third time I've called and nobody fixed it, this is ridiculous",
        "I am sick of this, you people are useless and I want my money back now",
        "this is a joke"))
    said = replies(down)
    assert ESCALATION_ANNOUNCEMENT in said[1:3], said  # within two turns of the first signal
    (event,) = [e for e in recorder.calls["CA1"]["events"] if e["type"] == "escalation"]
    assert event["reason"].startswith("frustration: ")
    scores = [t["sentiment"] for t in recorder.turns_of("caller")]
    assert scores[0] > scores[1] and scores[1] < 0


async def test_a_calm_caller_is_not_handed_over():
    processor, recorder = make_with_mood()
    down, _ = await run_test(processor, frames_to_send=turns(
        "where is my order", "it's one zero zero one", "ok thanks, that's helpful",
        "no that's all, have a nice day"))
    assert not [e for e in recorder.calls["CA1"]["events"] if e["type"] == "escalation"]


def test_the_mood_is_read_while_the_caller_speaks():
    import numpy as np

    from nlu.escalation import EscalationModel, EscalationSettings
    from voice.mood import CallMood

    readings = []
    mood = CallMood(EscalationModel.default(), EscalationSettings(), live_every_s=1.0,
                    on_live=readings.append)
    t = np.arange(16000 * 3) / 16000
    voice = (np.sin(2 * np.pi * 150 * t) * 8000 * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)))
    pcm = voice.astype(np.int16).tobytes()
    mood.speech_started()
    for i in range(0, len(pcm), 640):
        mood.feed(pcm[i:i + 640])
    assert len(readings) == 3 and all(-1.0 <= r.score <= 1.0 for r in readings)
