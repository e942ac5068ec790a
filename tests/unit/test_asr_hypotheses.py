"""WhisperTranscriber returns the beam's hypotheses, for the intent classifier to weigh."""

import numpy as np
import pytest

from nlu.report import CallerVoice, service_segmenter
from voice.asr import Hypothesis, WhisperTranscriber
from voice.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> np.ndarray:
    """A caller's question as the service hears it: espeak-ng over a phone line, cut by the VAD."""
    audio = CallerVoice("espeak", tmp_path_factory.mktemp("voice")).phone_audio(
        "what time do you close on sunday")
    return service_segmenter()(audio)


def test_the_beam_gives_its_hypotheses_best_first(question) -> None:
    transcriber = WhisperTranscriber(None, threads=1, beam_size=5, hypotheses=5)
    heard = transcriber.transcribe(question)
    assert 2 <= len(heard.alternatives) <= 5
    assert all(isinstance(h, Hypothesis) for h in heard.alternatives)
    assert heard.alternatives[0].text == heard.text and heard.text
    scores = [h.score for h in heard.alternatives]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)


def test_no_more_hypotheses_than_the_beam_holds_and_none_for_one(question) -> None:
    narrow = WhisperTranscriber(None, threads=1, beam_size=2, hypotheses=5)
    assert len(narrow.transcribe(question).alternatives) == 2
    single = WhisperTranscriber(None, threads=1, beam_size=5, hypotheses=1)
    heard = single.transcribe(question)
    assert heard.text and heard.alternatives == ()


def test_the_settings_choose_how_many(monkeypatch) -> None:
    made = {}
    monkeypatch.setattr(WhisperTranscriber, "__init__",
                        lambda self, model, **options: made.update(options, model=model))
    WhisperTranscriber.from_settings(Settings(asr_beam_size=4, asr_hypotheses=3))
    assert (made["beam_size"], made["hypotheses"]) == (4, 3)
    with pytest.raises(ValueError):
        Settings(asr_hypotheses=0)
