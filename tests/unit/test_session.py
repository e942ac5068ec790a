import time

import pytest

from tests.fakes import MemoryRecorder
from voice.session import CallSession

pytestmark = pytest.mark.unit


def started_session() -> tuple[CallSession, MemoryRecorder]:
    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    session.begin("CA1", caller="+15550100")
    return session, recorder


def speak(session: CallSession, text: str, *, speech_end_at: float | None = None):
    turn = session.reply_started(text, intent="kb_answer", confidence=0.9,
                                 speech_end_at=speech_end_at)
    marks = [session.sentence_queued(turn, s, 1000) for s in text.split(". ")]
    session.synthesis_finished(turn)
    return turn, marks


def test_latency_runs_from_end_of_speech_to_first_audio_sent():
    session, recorder = started_session()
    turn, _ = speak(session, "Returns take 30 days.", speech_end_at=time.monotonic() - 0.4)
    session.audio_sent()
    session.audio_sent()  # only the first message counts
    latency = recorder.turns[turn.turn_id]["latency_ms"]
    assert 380 <= latency <= 1000
    assert session.latencies_ms == [latency]


def test_an_answer_is_finished_when_its_last_mark_comes_back():
    session, recorder = started_session()
    turn, marks = speak(session, "One. Two")
    session.audio_sent()
    assert session.assistant_speaking
    session.mark_played(marks[0])
    assert session.assistant_speaking
    session.mark_played(marks[1])
    assert not session.assistant_speaking
    stored = recorder.turns[turn.turn_id]
    assert stored["text"] == "One. Two" and stored["interrupted"] is False


def test_an_interrupted_answer_keeps_only_what_the_caller_heard():
    session, recorder = started_session()
    turn, marks = speak(session, "First sentence here. Second sentence is long and never heard")
    session.audio_sent()
    session.mark_played(marks[0])
    session.interrupted()
    stored = recorder.turns[turn.turn_id]
    assert stored["interrupted"] is True
    assert stored["text"].startswith("First sentence here")
    assert "never heard" not in stored["text"]
    assert "barge_in" in recorder.events("CA1")


def test_marks_echoed_after_a_clear_are_not_taken_as_heard():
    session, recorder = started_session()
    turn, marks = speak(session, "Alpha. Beta")
    session.audio_sent()
    session.interrupted()
    session.mark_played(marks[0])
    session.mark_played(marks[1])
    assert recorder.turns[turn.turn_id]["text"] == ""


def test_a_goodbye_hangs_up_only_after_it_was_heard():
    session, _ = started_session()
    hung_up = []
    session.on_goodbye_heard = lambda: hung_up.append(True)
    turn = session.reply_started("Goodbye", intent="goodbye", confidence=1.0,
                                 speech_end_at=None, end_call=True)
    mark = session.sentence_queued(turn, "Goodbye", 500)
    session.synthesis_finished(turn)
    session.audio_sent()
    assert hung_up == []
    session.mark_played(mark)
    assert hung_up == [True]


def test_ending_a_call_mid_answer_keeps_the_record():
    session, recorder = started_session()
    turn, _ = speak(session, "Something long")
    session.audio_sent()
    session.end("caller_hung_up")
    assert recorder.calls["CA1"]["outcome"] == "caller_hung_up"
    assert recorder.turns[turn.turn_id]["interrupted"] is True
    session.end("again")  # idempotent
    assert recorder.calls["CA1"]["outcome"] == "caller_hung_up"


def test_events_before_start_are_dropped_quietly():
    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    session.event("dtmf", digit="1")
    session.end("error")
    assert recorder.calls == {}


def test_pii_is_redacted_before_the_turn_is_stored_and_remembered_for_the_recording():
    from tests.fakes import MemoryRecorder

    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    session.begin("CA-pii", caller="+15550100")
    session.caller_turn("my card is 4111 1111 1111 1111 and order 1001", start_ms=1000,
                        end_ms=4000)
    (turn,) = recorder.turns_of("caller")
    assert "4111" not in turn["text"] and "[card]" in turn["text"] and "1001" in turn["text"]
    assert turn["meta"]["redacted"] == ["card"]
    assert session.pii_spans_ms == [(1000, 4000)]
    assert "4111" not in session.transcript[-1]["text"]
    session.caller_turn("where is order 1001", start_ms=5000, end_ms=6000)
    assert session.pii_spans_ms == [(1000, 4000)]
