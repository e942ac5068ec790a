"""Understanding callers end to end: the real server, models and demo backend, a Twilio-protocol
caller speaking with flite/espeak-ng (or typing on the keypad), the answers transcribed back."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_twilio_calls import heard_by_sentence as heard
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JAMIE, SAM = "+15550100", "+15550101"


def caller_turns(record: dict) -> list[dict]:
    return [t for t in record["turns"] if t["speaker"] == "caller"]


def answers(record: dict) -> list[dict]:
    return [t for t in record["turns"] if t["speaker"] == "assistant"]

# The listener takes 0.8 s of quiet as the end of an answer; these multi-sentence answers get
# 2 s. Twice in CI the transcript of an answer held only its first sentence ("... a regional
# logistics issue in Ohio.", never "May 8"). The second time the server's recording of the call
# held the whole answer without a pause, and the caller hung up 2 s after the answer's length:
# whisper had stopped early on the whole answer, so answers are transcribed sentence by
# sentence (`heard_by_sentence`).
ANSWER_PAUSE_S = 2.0


async def test_order_status_with_a_spoken_order_number(server, voices, transcriber):
    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say("Hi, where is my order?")),
        CallerTurn(wav=voices.say("It's one zero zero one.")),
    ], caller=JAMIE, final_listen_s=20.0, quiet_s=ANSWER_PAUSE_S)

    ask, told = (heard(transcriber, t.answer.audio_pcm8k) for t in result.turns)
    assert "order number" in ask, ask
    assert re.search(r"ohio", told) and re.search(r"may 8|may eighth", told), told

    record = server.call_record(result.call_sid)
    first, second = caller_turns(record)
    assert first["intent"] == "order_status"
    assert second["slots"]["order_number"] == "ORD-1001"
    assert second["facts"]["order_status"] == "delayed"
    assert "regional logistics issue in Ohio" in answers(record)[-1]["text"]


async def test_order_status_with_the_order_number_typed_on_the_keypad(server, voices,
                                                                    transcriber):
    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say("I want to check the status of my order.")),
        CallerTurn(dtmf="1002#"),
    ], caller=SAM, final_listen_s=20.0, quiet_s=ANSWER_PAUSE_S)

    told = heard(transcriber, result.turns[1].answer.audio_pcm8k)
    # Cut into sentences, "The laptop stand." is short, and tiny.en has heard it as "the lock up
    # stand" and "the lap out stands" in CI: the caller checks the delivery date, the record
    # the item's name.
    assert re.search(r"april 28|april twenty", told), told

    record = server.call_record(result.call_sid)
    assert "laptop stand" in answers(record)[-1]["text"].lower()
    keypad = caller_turns(record)[1]
    assert keypad["text"] == "[keypad] 1002#" and keypad["dtmf"] == "1002"
    assert keypad["slots"]["order_number"] == "ORD-1002"
    assert {"dtmf"} <= {e["type"] for e in record["events"]}


async def test_a_return_eligibility_question(server, voices, transcriber):
    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say("Can I still return the laptop stand I bought?")),
        CallerTurn(wav=voices.say("Order one zero zero two.")),
    ], caller=SAM, final_listen_s=20.0, quiet_s=ANSWER_PAUSE_S)

    told = heard(transcriber, result.turns[1].answer.audio_pcm8k)
    assert re.search(r"may 28|may twenty", told), told

    record = server.call_record(result.call_sid)
    second = caller_turns(record)[1]
    assert second["flow"] == "return_eligibility"
    assert second["facts"]["returnable"] is True
    assert second["facts"]["last_return_day"] == "2026-05-28"


async def test_a_membership_cancellation_to_the_end_with_its_audit_entry(server, voices,
                                                                        transcriber):
    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say("I want to cancel my Brightline Plus membership.")),
        CallerTurn(wav=voices.say("Four three zero zero four.")),
        CallerTurn(wav=voices.say("No thanks.")),
        CallerTurn(wav=voices.say("Yes, cancel it.")),
    ], caller=JAMIE, final_listen_s=20.0, quiet_s=ANSWER_PAUSE_S)

    verify, offer, confirm, done = (heard(transcriber, t.answer.audio_pcm8k)
                                    for t in result.turns)
    # tiny.en hears the 8 kHz "postcode" as "post code", "post good", "postcard" ...
    assert "verify your account" in verify and re.search(r"\bpost", verify), verify
    assert "pause" in offer, offer
    assert "cancel" in confirm, confirm
    # "Done." is a sentence of its own: on a loaded machine the caller may hear a gap after
    # it and take it for the whole answer, so the rest is checked in the record.
    assert "done" in done or "cancel" in done, done

    record = server.call_record(result.call_sid)
    final = answers(record)[-1]["text"]
    assert "membership is cancelled" in final and "May 31" in final, final
    assert caller_turns(record)[0]["intent"] == "membership_cancel"
    assert caller_turns(record)[-1]["facts"]["outcome"] == "cancelled"
    audit = server.get_json(f"/api/calls/{result.call_sid}/audit")
    actions = [entry["action"] for entry in audit["entries"]]  # type: ignore[index]
    assert "identity.verified" in actions and "membership.cancelled" in actions, actions


async def test_an_out_of_scope_question_gets_no_invented_answer(server, voices, transcriber):
    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say("What will the weather be like tomorrow?")),
    ], caller=JAMIE, final_listen_s=8.0)

    said = heard(transcriber, result.turns[0].answer.audio_pcm8k)
    assert "don t have information" in said or "do not have information" in said, said
    assert "connect you" in said

    record = server.call_record(result.call_sid)
    assert caller_turns(record)[0]["intent"] == "out_of_scope"
    assert not any(e["type"] == "kb_passages" for e in record["events"])
