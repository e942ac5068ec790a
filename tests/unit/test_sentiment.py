"""Caller sentiment: words (lexicon, negation, contact-centre patterns), voice from synthetic
audio, conversation signals, and the per-call tracker that combines them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nlu.classifier import EVAL_FILE as INTENTS_EVAL
from nlu.classifier import TRAIN_FILE as INTENTS_TRAIN
from nlu.classifier import load_examples
from nlu.sentiment import (
    LEXICON_FILE,
    ConversationSignals,
    Lexicon,
    SentimentTracker,
    VoiceFeatures,
    VoiceTracker,
    asks_for_human,
    combine,
    label_of,
    text_sentiment,
)

pytestmark = pytest.mark.unit

SR = 16_000


def score(text: str) -> float:
    return text_sentiment(text).score


# --- words ---------------------------------------------------------------------------------------

def test_repeat_contact_and_unresolved_read_as_clearly_negative() -> None:
    result = text_sentiment("This is the third time I've called and nobody fixed it.")
    assert result.score <= -0.6
    assert result.label == "negative"
    assert {"repeat_contact", "unresolved"} <= result.categories
    assert any("third time" in cue for cue in result.negative)
    assert "nobody fixed" in result.negative


def test_cues_are_quoted_as_the_recogniser_wrote_them() -> None:
    result = text_sentiment("This is the THIRD time I've called")
    assert result.cues == ["This is the THIRD time"]


@pytest.mark.parametrize("text, category", [
    ("i called yesterday and they said it would be sorted, it wasn't", "repeat_contact"),
    ("how many times do i have to explain this", "repeat_contact"),
    ("my order still hasn't arrived", "unresolved"),
    ("it's still not working after the repair", "unresolved"),
    ("no one has ever called me back", "unresolved"),
    ("you promised a refund and nothing happened", "unresolved"),
    ("i've been waiting for weeks", "waiting"),
    ("i was on hold forever", "waiting"),
    ("this is taking forever", "waiting"),
    ("cancel everything, i'm done with you", "threat"),
    ("i'm going to report you", "threat"),
    ("i'll be speaking to my lawyer", "threat"),
    ("great, just great", "sarcasm"),
    ("oh wonderful, another menu", "sarcasm"),
    ("thanks for nothing", "sarcasm"),
    ("i love how i have to call every week", "sarcasm"),
    ("this is f***ing ridiculous", "profanity"),
    ("what the hell is going on", "profanity"),
    ("that's complete [BLEEP]", "profanity"),
    ("this s*** never works", "profanity"),
])
def test_contact_centre_frustration_is_negative(text: str, category: str) -> None:
    result = text_sentiment(text)
    assert category in result.categories, result
    assert result.score <= -0.25, result


@pytest.mark.parametrize("text", [
    "thank you so much", "that's brilliant, thanks", "perfect, cheers", "no problem at all",
    "you've been very helpful", "lovely, have a nice day",
])
def test_thanks_and_satisfaction_are_positive(text: str) -> None:
    assert score(text) >= 0.25


@pytest.mark.parametrize("text", [
    "i'd like to check my order", "one zero zero four", "", "what time do you open",
    "i want to cancel my membership", "yes", "ORD-1001",
])
def test_plain_requests_are_neutral(text: str) -> None:
    assert label_of(score(text)) == "neutral"


def test_negation_flips_and_shrinks() -> None:
    assert score("i'm happy") > 0.25
    assert score("i'm not happy") < -0.25
    assert abs(score("i'm not happy")) < abs(score("i'm happy"))
    assert score("that's not bad at all") > 0
    assert score("it never arrived, i'm not pleased") < -0.25


def test_negation_stops_at_punctuation() -> None:
    assert score("no, that's great") > 0.25


def test_intensifiers_and_dampeners() -> None:
    assert score("i'm really annoyed") < score("i'm annoyed") < score("i'm a bit annoyed") < 0


def test_the_clause_after_but_weighs_more() -> None:
    assert score("thanks, but this is the third time i've called") < -0.25
    assert score("the box was damaged but you sorted it, thanks") > 0.25


def test_case_does_not_matter() -> None:
    assert score("THANK YOU") == score("thank you")
    assert score("I'M FURIOUS") == score("i'm furious")


def test_profanity_is_counted() -> None:
    result = text_sentiment("this f***ing thing, what the hell")
    assert result.profanity == 2


def test_shipped_lexicon_loads_and_stays_in_range() -> None:
    lexicon = Lexicon.load(LEXICON_FILE)
    assert len(lexicon) >= 300
    assert lexicon.get(("thank", "you")).valence > 0
    assert lexicon.get(("fucking",)).profanity


def test_a_bad_lexicon_line_is_reported(tmp_path) -> None:
    path = tmp_path / "lex.tsv"
    path.write_text("great\t2.5\nawful\tvery bad\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lex.tsv:2"):
        Lexicon.load(path)


def test_text_sentiment_is_fast() -> None:
    texts = ["this is the third time i've called and nobody fixed it, it's ridiculous"] * 500
    started = time.perf_counter()
    for t in texts:
        text_sentiment(t)
    assert (time.perf_counter() - started) / len(texts) < 0.002


# --- asking for a person ---------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "I want to talk to a person", "representative", "get me a manager", "human please",
    "can i speak with someone", "put me through to somebody who can help", "agent agent",
    "i'd like to speak to an agent about a charge", "is there a real person i can talk to",
    "no more robots", "i don't want to talk to a machine", "operator", "can you transfer me",
    "let me talk to your supervisor", "i need a human", "stop, agent", "press zero",
])
def test_requests_for_a_person_are_recognised(text: str) -> None:
    assert asks_for_human(text)


@pytest.mark.parametrize("text", [
    "when can i talk to a real person", "i don't want to talk to a person, just my refund",
    "i spoke to someone yesterday", "where's my order", "i need support with my order",
    "what's the earliest i can talk to someone", "can you talk me through returns",
    "i have someone at home to take the parcel", "i spoke to a real person last week",
])
def test_other_mentions_of_people_are_not_requests(text: str) -> None:
    assert not asks_for_human(text)


def test_request_detection_covers_the_intent_data() -> None:
    """The intent files were written for the classifier, not for these rules: a fair check."""
    examples = load_examples(INTENTS_TRAIN) + load_examples(INTENTS_EVAL)
    agent = [e.text for e in examples if e.intent == "agent"]
    other = [e.text for e in examples if e.intent != "agent"]
    assert sum(map(asks_for_human, agent)) >= 0.95 * len(agent)
    assert sum(map(asks_for_human, other)) <= 0.01 * len(other)


# --- voice -----------------------------------------------------------------------------------

def voiced(f0: float, seconds: float, *, amplitude: float = 0.05, syllables_per_s: float = 0,
           seed: int = 0) -> np.ndarray:
    """A harmonic tone (five partials), optionally amplitude-modulated into "syllables"."""
    t = np.arange(int(SR * seconds)) / SR
    x = sum((amplitude / k) * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6))
    if syllables_per_s:
        x = x * (0.5 - 0.5 * np.cos(2 * np.pi * syllables_per_s * t)) ** 2
    x = x + np.random.default_rng(seed).normal(0, 0.001, len(t))
    return (x * 32767).astype("<i2")


def noise(seconds: float, *, amplitude: float = 0.05) -> np.ndarray:
    x = np.random.default_rng(1).normal(0, amplitude, int(SR * seconds))
    return (np.clip(x, -1, 1) * 32767).astype("<i2")


def speak(tracker: VoiceTracker, pcm: np.ndarray, *, words: int | None = None) -> VoiceFeatures:
    data = pcm.tobytes()
    tracker.speech_started()
    for i in range(0, len(data), 640):
        tracker.feed(data[i:i + 640])
    tracker.speech_stopped()
    return tracker.end_turn(words=words)


def test_pitch_is_measured_on_a_harmonic_tone() -> None:
    first = speak(VoiceTracker(), voiced(150, 2.0, syllables_per_s=4))
    assert first.pitch_hz == pytest.approx(150, abs=2)
    assert not first.against_baseline
    assert (first.energy_change_db, first.pitch_change_semitones) == (0.0, 0.0)


def test_a_louder_higher_voice_reads_as_aroused_against_the_baseline() -> None:
    tracker = VoiceTracker()
    speak(tracker, voiced(150, 3.2, syllables_per_s=4))
    assert tracker.baseline_ready
    calm = speak(tracker, voiced(150, 2.0, syllables_per_s=4, seed=2))
    agitated = speak(tracker, voiced(220, 2.0, amplitude=0.15, syllables_per_s=4, seed=3))
    assert abs(calm.energy_change_db) < 1 and abs(calm.pitch_change_semitones) < 0.3
    assert calm.arousal < 0.1
    assert agitated.against_baseline
    assert agitated.energy_change_db == pytest.approx(20 * np.log10(3), abs=1.0)
    assert agitated.pitch_change_semitones == pytest.approx(12 * np.log2(220 / 150), abs=0.3)
    assert agitated.arousal > 0.8
    assert agitated.describe() == "louder and higher"


def test_noise_is_unvoiced() -> None:
    features = speak(VoiceTracker(), noise(1.0))
    assert features.pitch_hz is None
    assert features.level_db is not None


def test_a_faster_syllable_train_gives_a_higher_rate() -> None:
    tracker = VoiceTracker()
    slow = speak(tracker, voiced(150, 3.0, syllables_per_s=3))
    fast = speak(tracker, voiced(150, 3.0, syllables_per_s=6))
    assert slow.rate == pytest.approx(3, abs=0.5)
    assert fast.rate == pytest.approx(6, abs=0.7)
    assert fast.rate_change_ratio > 1.6
    assert "faster" in fast.describe()


def test_words_per_second_is_used_when_word_counts_are_given() -> None:
    tracker = VoiceTracker()
    speak(tracker, voiced(150, 3.0, syllables_per_s=4), words=6)  # 2 words/s
    turn = speak(tracker, voiced(150, 2.0, syllables_per_s=4), words=6)  # 3 words/s
    assert turn.rate == pytest.approx(3.0)
    assert turn.rate_change_ratio == pytest.approx(1.5)


def test_live_reads_the_turn_so_far_without_closing_it() -> None:
    tracker = VoiceTracker()
    speak(tracker, voiced(150, 3.0, syllables_per_s=4))
    data = voiced(220, 1.0, amplitude=0.15, syllables_per_s=4).tobytes()
    tracker.speech_started()
    for i in range(0, len(data), 640):
        tracker.feed(data[i:i + 640])
    live = tracker.live()
    assert live.speech_seconds == pytest.approx(1.0)
    assert live.arousal > 0.5
    assert tracker.has_audio
    assert tracker.end_turn().speech_seconds == pytest.approx(1.0)
    assert not tracker.has_audio


def test_audio_outside_speech_and_odd_frame_sizes_are_handled() -> None:
    tracker = VoiceTracker()
    tracker.feed(voiced(150, 0.5).tobytes())  # no segment open: ignored
    assert not tracker.has_audio
    data = voiced(150, 1.0).tobytes()
    tracker.speech_started()
    for i in range(0, len(data), 1000):  # not 20 ms multiples
        tracker.feed(data[i:i + 1000])
    features = tracker.end_turn()
    assert features.speech_seconds == pytest.approx(1.0, abs=0.02)
    assert tracker.end_turn().level_db is None  # an empty turn


def test_voice_tracking_runs_far_faster_than_real_time() -> None:
    data = voiced(180, 20.0, syllables_per_s=5).tobytes()
    tracker = VoiceTracker()
    started = time.perf_counter()
    tracker.speech_started()
    for i in range(0, len(data), 640):
        tracker.feed(data[i:i + 640])
    tracker.end_turn()
    elapsed = time.perf_counter() - started
    assert 20.0 / elapsed > 50  # measured: several hundred times real time on one core


# --- conversation signals ------------------------------------------------------------------

def test_repeated_questions_by_words_or_by_intent_after_a_failed_answer() -> None:
    signals = ConversationSignals()
    signals.on_caller_turn("i need the tracking number for my parcel", "order_status")
    signals.on_assistant_reply("order_status", failed=False)
    signals.on_caller_turn("the tracking number for my parcel please", "order_status")
    assert signals.repeated_now and signals.repeated_questions == 1
    signals.on_caller_turn("how do i use my discount", "membership_info")
    signals.on_assistant_reply("membership_info", failed=True)
    signals.on_caller_turn("what about plus", "membership_info")
    assert signals.repeated_questions == 2
    signals.on_caller_turn("okay thanks", "goodbye")
    assert not signals.repeated_now


def test_failed_answers_count_and_reset_in_a_row() -> None:
    signals = ConversationSignals()
    for failed in (True, True, False, True):
        signals.on_caller_turn("something", None)
        signals.on_assistant_reply(None, failed=failed)
    assert signals.failed_answers == 3
    assert signals.failed_in_a_row == 1


def test_barge_in_marks_the_next_caller_turn_only() -> None:
    signals = ConversationSignals()
    signals.on_barge_in()
    signals.on_caller_turn("stop, that's not what i asked", "deny")
    assert signals.barged_in_now and signals.barge_ins == 1
    signals.on_caller_turn("my order please", "order_status")
    assert not signals.barged_in_now


def test_asking_for_a_person_profanity_and_threats_are_counted() -> None:
    signals = ConversationSignals()
    signals.on_caller_turn("what the hell, this is s*** service", "order_status")
    signals.on_caller_turn("i'll take you to court", "order_status")
    assert (signals.profanity, signals.threats, signals.asked_for_human) == (2, 1, False)
    signals.on_caller_turn("get me a manager", "order_status")
    assert signals.asked_for_human_now
    signals.on_caller_turn("yes", "affirm")
    assert signals.asked_for_human and not signals.asked_for_human_now
    signals.on_caller_turn("hmm", "agent")
    assert signals.asked_for_human_now
    assert signals.features()["profanity"] == 2


# --- the tracker -------------------------------------------------------------------------------

def test_a_loud_neutral_turn_turns_negative_and_an_excited_thanks_stays_positive() -> None:
    loud = VoiceFeatures(energy_change_db=8, pitch_change_semitones=4, rate_change_ratio=1.3)
    neutral = combine(text_sentiment("the tracking number for my parcel"), loud)
    thanks = combine(text_sentiment("thank you so much"), loud)
    assert neutral.label == "negative" and neutral.text_score == 0.0
    assert thanks.label == "positive"


def test_tracker_combines_audio_words_and_signals_per_turn() -> None:
    tracker = SentimentTracker()
    for pcm, text in ((voiced(150, 3.2, syllables_per_s=4), "hi, i'm calling about my order"),
                      (voiced(230, 2.0, amplitude=0.15, syllables_per_s=6), "this is ridiculous")):
        data = pcm.tobytes()
        tracker.voice.speech_started()
        for i in range(0, len(data), 640):
            tracker.voice.feed(data[i:i + 640])
        tracker.voice.speech_stopped()
        turn = tracker.caller_turn(text, "order_status")
    assert turn.voice is not None and turn.voice.against_baseline
    assert turn.voice_arousal > 0.8
    assert turn.score < turn.text_score < 0
    assert len(tracker.trend) == 2 and tracker.trend[0] > tracker.trend[1]
    assert tracker.summary()["label"] == "negative"


def test_tracker_without_audio_reads_words_only() -> None:
    tracker = SentimentTracker()
    turn = tracker.caller_turn("thanks, that's perfect", "goodbye")
    assert turn.voice is None and turn.voice_arousal == 0
    assert turn.label == "positive"
    assert tracker.live("this is the third time").label == "negative"
    assert len(tracker.turns) == 1  # live readings are not recorded
