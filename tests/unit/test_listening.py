"""CallerTurnProcessor with fake VAD/ASR/turn models on scripted audio timelines."""

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pipecat.frames.frames import InputAudioRawFrame, InterruptionFrame
from pipecat.tests.utils import SleepFrame, run_test

from tests.fakes import (
    RATE,
    SPEECH,
    FakeAsr,
    FakeTurnModel,
    FakeVad,
    MemoryRecorder,
    silence,
    speech,
)
from voice.frames import CallerTurnFrame
from voice.listening import (
    CallerTurnProcessor,
    ListeningParams,
    PreRoll,
    is_backchannel,
    looks_complete,
    turn_segment,
)
from voice.session import CallSession

pytestmark = pytest.mark.unit

BACKCHANNELS = ("uh-huh", "mm-hmm", "okay", "right", "yeah")


def audio(*chunks: bytes) -> list:
    frames = []
    for chunk in chunks:
        for i in range(0, len(chunk), 640):  # 20 ms frames, like a phone line
            frames.append(InputAudioRawFrame(audio=chunk[i:i + 640], sample_rate=16000,
                                             num_channels=1))
    return frames


def make(asr: FakeAsr, *, turn_probability: float = 0.9, assistant_talking: bool = False):
    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    session.begin("CA1", caller=None)
    if assistant_talking:
        turn = session.reply_started("A long answer. With two sentences", intent="kb_answer",
                                     confidence=1.0, speech_end_at=None)
        session.sentence_queued(turn, "A long answer.", 2000)
        session.audio_sent()
    processor = CallerTurnProcessor(
        session=session, vad=FakeVad(), turn_model=FakeTurnModel(turn_probability), asr=asr,
        executor=ThreadPoolExecutor(1),
        params=ListeningParams(hesitation_ms=128, pause_ms=256, timeout_ms=896,
                               backchannel_max_ms=700,
                               backchannels=BACKCHANNELS),
    )
    return processor, session, recorder


def of_type(frames, kind):
    return [f for f in frames if isinstance(f, kind)]


async def test_a_finished_question_becomes_one_caller_turn():
    asr = FakeAsr(["how long do i have to return an item"])
    processor, _, _ = make(asr)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(silence(200), speech(1500), silence(400)), SleepFrame(0.3)])
    turns = of_type(down, CallerTurnFrame)
    assert [t.text for t in turns] == ["how long do i have to return an item"]
    assert 150 <= turns[0].start_ms <= 260
    assert 1650 <= turns[0].end_ms <= 1760
    assert of_type(down, InterruptionFrame) == []


async def test_an_unfinished_sentence_waits_for_the_silence_timeout():
    asr = FakeAsr(by_audio=lambda a: "my order number is one zero zero one")
    processor, _, recorder = make(asr, turn_probability=0.1)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(800), silence(400)), SleepFrame(0.2),
        *audio(speech(600), silence(1000)), SleepFrame(0.9)])
    turns = of_type(down, CallerTurnFrame)
    assert len(turns) == 1, "a pause between digit groups must not end the turn"
    assert "turn_incomplete" in recorder.events("CA1")


async def test_noise_that_transcribes_to_nothing_is_not_a_turn():
    processor, _, recorder = make(FakeAsr([""]))
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(300), silence(500)), SleepFrame(0.3)])
    assert of_type(down, CallerTurnFrame) == []
    assert "noise" in recorder.events("CA1")


async def test_long_speech_over_the_assistant_interrupts_it():
    asr = FakeAsr(["wait I have a different question about shipping"])
    processor, session, recorder = make(asr, assistant_talking=True)
    down, up = await run_test(processor, frames_to_send=[
        *audio(speech(1200), silence(400)), SleepFrame(0.3)])
    assert len(of_type(down, InterruptionFrame)) == 1
    assert len(of_type(up, InterruptionFrame)) == 1
    assert [t.text for t in of_type(down, CallerTurnFrame)] == [
        "wait I have a different question about shipping"]
    assert "barge_in" in recorder.events("CA1")
    assert session.current.interrupted


async def test_a_backchannel_does_not_interrupt():
    processor, session, recorder = make(FakeAsr(["Uh-huh."]), assistant_talking=True)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(400), silence(500)), SleepFrame(0.3)])
    assert of_type(down, InterruptionFrame) == []
    assert of_type(down, CallerTurnFrame) == []
    assert "backchannel" in recorder.events("CA1")
    assert not session.current.interrupted


async def test_a_short_real_word_over_the_assistant_interrupts():
    processor, _, _ = make(FakeAsr(["stop"]), assistant_talking=True)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(400), silence(500)), SleepFrame(0.3)])
    assert len(of_type(down, InterruptionFrame)) == 1
    assert [t.text for t in of_type(down, CallerTurnFrame)] == ["stop"]


async def test_audio_before_the_call_starts_is_ignored():
    recorder = MemoryRecorder()
    session = CallSession(recorder, channel="twilio")
    asr = FakeAsr(["hello"])
    processor = CallerTurnProcessor(session=session, vad=FakeVad(), turn_model=None, asr=asr,
                                    executor=ThreadPoolExecutor(1), params=ListeningParams())
    down, _ = await run_test(processor, frames_to_send=[*audio(speech(600), silence(600))])
    assert of_type(down, CallerTurnFrame) == [] and asr.calls == []


@pytest.mark.parametrize("text, expected", [
    ("uh-huh", True), ("Okay.", True), ("Right, right.", True), ("mm-hmm yeah", True),
    ("okay but what about shipping", False), ("stop", False), ("", False),
])
def test_backchannels_are_recognised_by_their_words(text, expected):
    assert is_backchannel(text, BACKCHANNELS) is expected


async def test_speculative_work_on_a_hesitation_is_discarded_when_the_caller_goes_on():
    asr = FakeAsr(by_audio=lambda a: f"{len(a) // 1600} tenths")
    processor, _, _ = make(asr)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(600), silence(160)), SleepFrame(0.1),
        *audio(speech(600), silence(400)), SleepFrame(0.3)])
    turns = of_type(down, CallerTurnFrame)
    assert len(turns) == 1 and len(asr.calls) >= 2
    assert turns[0].text == f"{int(max(asr.calls) * 10)} tenths", "the turn uses the full audio"
    assert max(asr.calls) > 1.3


@pytest.mark.parametrize("text, expected", [
    ("How much is express shipping?", True),
    ("Can I pause my membership.", True),
    ("Yes.", True),
    ("My order number is 1, 0, 0 1.", False),
    ("Wait.", False),
    ("my order number is", False),
    ("I want to return my headphones and", False),
    ("", False),
])
def test_punctuation_and_the_last_word_say_whether_a_sentence_is_finished(text, expected):
    assert looks_complete(text) is expected


async def test_a_plainly_finished_question_is_not_held_back_by_a_doubtful_turn_model():
    processor, _, recorder = make(FakeAsr(by_audio=lambda a: "How much is express shipping?"),
                                  turn_probability=0.05)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(1200), silence(300)), SleepFrame(0.3)])
    assert [t.text for t in of_type(down, CallerTurnFrame)] == ["How much is express shipping?"]
    assert "turn_complete_by_text" in recorder.events("CA1")


async def test_okay_after_the_assistant_has_finished_is_an_answer_not_a_backchannel(monkeypatch):
    processor, session, _ = make(FakeAsr(by_audio=lambda a: "Okay."), assistant_talking=True)
    turn = session.current
    # One call over two pipeline runs: the end of the first is not the end of the call.
    async def call_goes_on() -> None:
        return None
    monkeypatch.setattr(processor, "_keep_last_words", call_goes_on)
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(300)), SleepFrame(0.05)])
    session.mark_played(turn.sentences[0].mark)
    session.synthesis_finished(turn)  # the answer ends while the caller is speaking
    down2, _ = await run_test(processor, frames_to_send=[*audio(speech(100), silence(400)),
                                                         SleepFrame(0.3)])
    assert [t.text for t in of_type(down + down2, CallerTurnFrame)] == ["Okay."]


def _digits_so_far(audio) -> str:
    """What the fake recogniser hears: the first group alone, or the whole number."""
    return "one zero" if len(audio) / 16000 < 1.6 else "one zero, zero one."


async def test_a_pause_between_digit_groups_waits_for_the_dictation_timeout():
    processor, session, recorder = make(FakeAsr(by_audio=_digits_so_far), turn_probability=0.9)
    session.expecting = "order_number"
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(800), silence(1100)), SleepFrame(0.3),  # longer than timeout_ms (896)
        *audio(speech(700), silence(400)), SleepFrame(0.5)])
    turns = of_type(down, CallerTurnFrame)
    assert [t.text for t in turns] == ["one zero, zero one."]
    assert "dictating_digits" in recorder.events("CA1")


async def test_a_complete_code_that_was_asked_for_ends_the_turn_without_the_turn_model():
    asr = FakeAsr(["it's one zero zero one"])
    processor, session, recorder = make(asr, turn_probability=0.1)
    session.expecting = "order_number"
    down, _ = await run_test(processor, frames_to_send=[
        *audio(speech(1200), silence(400)), SleepFrame(0.2)])
    turns = of_type(down, CallerTurnFrame)
    assert [t.text for t in turns] == ["it's one zero zero one"]
    assert "turn_incomplete" not in recorder.events("CA1")
    assert set(asr.hints) == {"Order number 1 0 0 1."}  # digits primed as digits
    assert turns[0].end_ms <= 1300 + 100  # well before the 896 ms silence timeout would end it


# --- the turn segment as the recogniser gets it (turn_segment, for offline evaluation) ------------

def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16)


def test_a_turn_segment_has_the_pre_roll_before_the_words_and_ends_at_the_first_hesitation():
    segment = _samples(turn_segment(silence(1000) + speech(1000) + silence(1000), FakeVad()))
    spoken = np.flatnonzero(segment == SPEECH)
    assert len(spoken) == RATE  # every word, nothing cut
    lead_ms, trail_ms = spoken[0] * 1000 / RATE, (len(segment) - spoken[-1] - 1) * 1000 / RATE
    # PreRoll keeps 300 ms before the chunk where the VAD fired (64 ms of speech in)
    assert 200 <= lead_ms <= 300
    assert 100 <= trail_ms <= 200  # the hesitation (120 ms of silence), in 32 ms VAD windows


def test_a_turn_segment_runs_on_over_a_short_pause_to_the_last_hesitation():
    pcm = silence(500) + speech(600) + silence(150) + speech(600) + silence(1000)
    segment = _samples(turn_segment(pcm, FakeVad()))
    assert np.count_nonzero(segment == SPEECH) == 2 * RATE * 600 // 1000


def test_a_turn_segment_of_speech_that_never_stops_runs_to_the_end_and_of_silence_is_empty():
    segment = _samples(turn_segment(silence(400) + speech(700), FakeVad()))
    assert np.count_nonzero(segment == SPEECH) == RATE * 700 // 1000
    assert segment[-1] == SPEECH
    assert turn_segment(silence(2000), FakeVad()) == b""


def test_the_pre_roll_keeps_only_its_last_milliseconds_and_empties_when_taken():
    pre_roll = PreRoll(ms=100)
    for n in range(10):
        pre_roll.push(bytes([n]) * 640)  # 20 ms chunks at 16 kHz
    kept = pre_roll.take()
    assert [c[0] for c in kept] == [5, 6, 7, 8, 9]
    assert pre_roll.take() == []


async def test_words_the_caller_said_just_before_the_call_ended_are_kept_in_the_record():
    asr = FakeAsr(["this is useless"])
    processor, _, recorder = make(asr)
    down, _ = await run_test(processor, frames_to_send=[*audio(silence(200), speech(1200))])
    assert of_type(down, CallerTurnFrame) == []  # never answered: the caller is gone
    (turn,) = recorder.turns_of("caller")
    assert turn["text"] == "this is useless" and turn["meta"]["unanswered"] == "call ended"
    assert 150 <= turn["start_ms"] < turn["end_ms"] <= 1500


async def test_a_call_that_ends_in_silence_or_noise_adds_no_caller_turn():
    for frames, asr in (([*audio(silence(600))], FakeAsr(["never asked"])),
                        ([*audio(speech(300))], FakeAsr([""]))):
        processor, _, recorder = make(asr)
        await run_test(processor, frames_to_send=frames)
        assert recorder.turns_of("caller") == []


async def test_last_words_still_being_transcribed_when_the_call_ends_are_kept():
    def slow(audio):
        time.sleep(0.4)  # the turn decision is still waiting for this when the call ends
        return "I want to speak to a manager"
    processor, _, recorder = make(FakeAsr(by_audio=slow))
    await run_test(processor, frames_to_send=[*audio(speech(1200), silence(300))])
    (turn,) = recorder.turns_of("caller")
    assert turn["text"] == "I want to speak to a manager"
