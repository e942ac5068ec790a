"""WhisperTranscriber.words(): the word-timed pass used to silence PII in recordings."""

from types import SimpleNamespace

import numpy as np
import pytest

from nlu.report import CallerVoice
from voice.asr import WhisperTranscriber

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber(None, threads=1, beam_size=5)


def test_words_decode_once_greedily_with_a_bound_on_length(transcriber, monkeypatch):
    """No temperature fallback (a card number read out looks repetitive and took 26 s for 5 s
    of audio) and no endless "41, 41, 41, ..." while every call's turns wait for the lock."""
    seen = {}

    def transcribe(audio, **options):
        seen.update(options)
        word = SimpleNamespace(word=" card", start=0.5, end=0.9)
        return iter([SimpleNamespace(words=[word])]), None

    monkeypatch.setattr(transcriber._model, "transcribe", transcribe)
    words = transcriber.words(np.zeros(16_000 * 5, dtype=np.float32))
    assert [(w.text, w.start_s, w.end_s) for w in words] == [(" card", 0.5, 0.9)]
    assert seen["temperature"] == 0.0 and seen["beam_size"] == 1
    assert seen["word_timestamps"] is True
    assert 16 < seen["max_new_tokens"] <= 80  # 5 s of speech is a few dozen tokens


def test_words_of_a_spoken_card_number_come_back_timed_inside_the_audio(transcriber, tmp_path):
    audio = CallerVoice("flite", tmp_path).phone_audio(
        "My card number is four one one one, one one one one, one one one one.")
    words = transcriber.words(audio)
    assert any("card" in w.text.lower() for w in words)
    assert all(0 <= w.start_s <= w.end_s <= len(audio) / 16_000 + 0.5 for w in words)
    assert len(words) < 60  # a decoding loop would run on to hundreds
