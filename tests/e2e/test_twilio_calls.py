"""A phone call end to end: the real server and models, a Twilio-protocol client on a real
socket, caller speech from flite/espeak-ng, the assistant's answers transcribed back."""

from __future__ import annotations

import re

import numpy as np
import pytest

from telephony.audio import resample
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def heard(transcriber, pcm8k: bytes) -> str:
    """What the assistant said, as the real ASR hears it, normalised for fact checks."""
    pcm16k = resample(pcm8k, 8000, 16000)
    audio = np.frombuffer(pcm16k, dtype=np.int16).astype(np.float32) / 32768
    text = transcriber.transcribe(audio).text.lower()
    return re.sub(r"[^a-z0-9.$ ]", " ", text)


def heard_by_sentence(transcriber, pcm8k: bytes, *, pause_s: float = 0.25) -> str:
    """`heard` of each stretch of speech between pauses of ``pause_s`` or more, joined: given a
    whole multi-sentence answer, whisper sometimes stops after the first sentence (a CI run
    heard "... a regional logistics issue in Ohio." of an answer the server's recording holds
    whole), so the answer is cut where its sentences pause, as the service cuts a caller."""
    samples = np.frombuffer(pcm8k, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)  # 20 ms each
    if not len(frames):
        return ""
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    voiced = rms > max(200.0, rms.max() * 0.05)
    pieces, start, quiet = [], None, 0
    for i, v in enumerate([*voiced, False]):
        if v:
            start, quiet = (i if start is None else start), 0
        elif start is not None:
            quiet += 1
            if quiet * 0.02 >= pause_s or i == len(voiced):
                pieces.append(pcm8k[max(0, start - 5) * 320:(i + 5) * 320])  # 0.1 s either side
                start, quiet = None, 0
    return " ".join(heard(transcriber, piece) for piece in pieces)


def heard_in_windows(transcriber, pcm8k: bytes, *, window_s: float = 20.0,
                     step_s: float = 10.0) -> str:
    """`heard` over overlapping windows, joined: whisper may stop early in long, sparse audio,
    and with the overlap every utterance shorter than window_s - step_s is whole in a window."""
    window, step = int(window_s * 8000) * 2, int(step_s * 8000) * 2
    pieces = [heard(transcriber, pcm8k[at:at + window])
              for at in range(0, max(len(pcm8k) - (window - step), 1), step)]
    return " | ".join(pieces)


async def test_three_kb_questions_get_spoken_answers_with_the_right_facts(server, voices,
                                                                          transcriber):
    questions = [
        ("How long do I have to return an item?", [r"\b30\b|thirty"]),
        ("How much does express shipping cost?", [r"12\.99|twelve"]),
        ("What does Brightline Plus cost per month?", [r"9\.99|nine"]),
    ]
    turns = [CallerTurn(wav=voices.say(q)) for q, _ in questions]
    result = await place_call(server.ws_url, turns, final_listen_s=6.0)

    assert result.greeting is not None and len(result.greeting.audio_pcm8k) > 8000
    for (question, facts), turn in zip(questions, result.turns, strict=True):
        assert turn.answer is not None, f"no answer to {question!r}"
        said = heard(transcriber, turn.answer.audio_pcm8k)
        for fact in facts:
            assert re.search(fact, said), f"{question!r} answered {said!r}"
        assert turn.latency_s is not None and turn.latency_s < 5.0

    record = server.call_record(result.call_sid)
    assert record["channel"] == "twilio" and record["caller"] == "+15550100"
    assert record["outcome"] == "completed"
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert len(caller_turns) == 3
    assert "return" in caller_turns[0]["text"].lower()
    assert [t["intent"] for t in caller_turns] == ["returns_refunds", "shipping",
                                                   "membership_info"], caller_turns
    assert answers[0]["intent"] == "greeting"
    for answer in answers[1:]:
        assert answer["latency_ms"] is not None and 0 < answer["latency_ms"] < 5000
        assert answer["interrupted"] is False and answer["text"]
        assert answer["end_ms"] >= answer["start_ms"]
    assert any(e["type"] == "kb_passages" for e in record["events"])
    # A calm caller is not handed over.
    assert not {"escalation", "handoff"} & {e["type"] for e in record["events"]}
    assert all(t["sentiment"] is not None and t["sentiment"] > -0.25 for t in caller_turns)
    check_recording(server, result.call_sid, caller_turns, answers[1:])


def check_recording(server, call_sid: str, caller_turns: list[dict], answers: list[dict]) -> None:
    """The stereo recording: caller left, assistant right, on the transcript's clock."""
    from tests.e2e.test_pii_call import recording

    frames = recording(server, call_sid)

    def loudness(channel: int, start_ms: int, end_ms: int) -> float:
        part = frames[start_ms * 8:end_ms * 8, channel].astype(np.float64)
        return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0

    for turn in caller_turns:
        assert loudness(0, turn["start_ms"], turn["end_ms"]) > 300, turn
        assert loudness(1, turn["start_ms"], turn["end_ms"]) < 100, turn  # nobody talks over
    for answer in answers:
        assert loudness(1, answer["start_ms"], answer["end_ms"]) > 300, answer


async def test_speaking_over_an_answer_stops_it_with_a_clear(server, voices):
    question = voices.say("What is your return policy for limited edition items?")
    interruption = voices.say("How much is express shipping?")
    result = await place_call(server.ws_url, [
        CallerTurn(wav=question), CallerTurn(wav=interruption, barge_in_after_s=1.0),
    ], final_listen_s=12.0)

    barge = result.turns[1]
    assert barge.clear_received_at is not None, "no clear after the caller spoke over the answer"
    interrupted_answer = result.turns[0].answer
    assert interrupted_answer is not None and interrupted_answer.cleared
    assert barge.answer is not None, "the interrupting question was not answered"

    record = server.call_record(result.call_sid)
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    cut = answers[1]
    assert cut["interrupted"] is True
    assert len(cut["text"]) < len(cut["planned_text"]), "the heard text must be what was heard"
    assert any(e["type"] == "barge_in" for e in record["events"])
    assert "express" in [t for t in record["turns"] if t["speaker"] == "caller"][1]["text"].lower()


async def test_a_backchannel_does_not_interrupt_the_answer(server, voices):
    question = voices.say("What is your return policy for limited edition items?")
    backchannel = voices.say("okay")
    result = await place_call(server.ws_url, [
        CallerTurn(wav=question), CallerTurn(wav=backchannel, barge_in_after_s=1.0),
    ], final_listen_s=8.0)
    assert result.turns[1].clear_received_at is None
    record = server.call_record(result.call_sid)
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert answers[1]["interrupted"] is False
    assert not any(e["type"] == "barge_in" for e in record["events"])
    assert any(e["type"] == "backchannel" for e in record["events"])


async def test_keypad_digits_reach_the_call_record(server):
    result = await place_call(server.ws_url, [CallerTurn(dtmf="1001#")], final_listen_s=4.0)
    record = server.call_record(result.call_sid)
    digits = [e["digit"] for e in record["events"] if e["type"] == "dtmf"]
    assert digits == ["1", "0", "0", "1", "#"]
    keypad = [t for t in record["turns"] if t["speaker"] == "caller"]
    assert keypad and keypad[0]["dtmf"] == "1001"
    assert result.turns[0].answer is not None, "a keypad entry gets a spoken reply"
