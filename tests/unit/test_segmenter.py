"""The track segmenter (monitor stream, agent legs) on scripted VAD timelines."""

import pytest

from telephony.segmenter import TrackSegmenter, Utterance, VadStream
from tests.fakes import FakeVad, silence, speech

pytestmark = pytest.mark.unit


def feed(segmenter: TrackSegmenter, *chunks: bytes):
    done = []
    for chunk in chunks:
        for i in range(0, len(chunk), 640):
            done.extend(segmenter.feed(chunk[i:i + 640]))
    return done


def test_speech_between_silences_is_one_utterance_with_its_times():
    segmenter = TrackSegmenter("agent", FakeVad().stream())
    (utterance,) = feed(segmenter, silence(500), speech(1200), silence(900))
    assert utterance.speaker == "agent"
    assert 450 <= utterance.start_ms <= 560 and 1650 <= utterance.end_ms <= 1800
    assert 1.2 <= len(utterance.audio) / 16000 <= 1.2 + 0.2 + 0.9 + 0.1  # pre-roll and tail


def test_a_short_pause_does_not_split_and_a_click_is_not_speech():
    segmenter = TrackSegmenter("caller", FakeVad().stream())
    assert feed(segmenter, speech(32), silence(600)) == []  # a click
    utterances = feed(segmenter, speech(800), silence(300), speech(800), silence(900))
    assert len(utterances) == 1


def test_flush_returns_an_utterance_still_open():
    segmenter = TrackSegmenter("caller", FakeVad().stream())
    assert feed(segmenter, speech(600)) == []
    (utterance,) = segmenter.flush()
    assert utterance.speaker == "caller" and segmenter.flush() == []


def test_the_twilio_monitor_still_exports_the_segmenter_for_older_imports():
    from telephony.twilio import monitor

    assert (monitor.TrackSegmenter, monitor.Utterance, monitor.VadStream) == (
        TrackSegmenter, Utterance, VadStream)
