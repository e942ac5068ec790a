import pytest

from voice.turns import (
    SilenceTimeout,
    SpeechHesitated,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnDetector,
)

pytestmark = pytest.mark.unit


def feed(detector: TurnDetector, pattern: list[tuple[float, int]], t0: int = 0):
    """pattern: (probability, windows); returns (t_ms, event) pairs."""
    events, t = [], t0
    for prob, windows in pattern:
        for _ in range(windows):
            t += detector.window_ms
            events.extend((t, e) for e in detector.push(t, prob))
    return events, t


def test_speech_starts_after_start_ms_and_reports_its_true_start():
    detector = TurnDetector(start_ms=64)
    events, _ = feed(detector, [(0.0, 5), (0.9, 3)])
    assert [type(e) for _, e in events] == [SpeechStarted]
    assert events[0][1].start_ms == 5 * 32


def test_a_single_click_does_not_start_speech():
    detector = TurnDetector(start_ms=64)
    events, _ = feed(detector, [(0.9, 1), (0.0, 5), (0.9, 1), (0.0, 5)])
    assert events == []


def test_silence_after_speech_hesitates_pauses_then_times_out():
    detector = TurnDetector(hesitation_ms=128, pause_ms=256, timeout_ms=896)
    events, _ = feed(detector, [(0.9, 10), (0.0, 40)])
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SpeechHesitated, SpeechPaused, SilenceTimeout]
    assert events[1][0] - events[1][1].end_ms == 128
    assert events[2][0] - events[2][1].end_ms == 256
    assert events[3][0] - events[3][1].end_ms == 896


def test_speech_after_a_hesitation_resumes_before_any_pause():
    detector = TurnDetector(hesitation_ms=96, pause_ms=256)
    events, _ = feed(detector, [(0.9, 10), (0.0, 4), (0.9, 5), (0.0, 4)])
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, SpeechHesitated, SpeechResumed, SpeechHesitated]


def test_speech_after_a_pause_resumes_the_same_turn():
    detector = TurnDetector(hesitation_ms=128, pause_ms=256, timeout_ms=2000)
    events, _ = feed(detector, [(0.9, 10), (0.0, 10), (0.9, 5)])
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechHesitated, SpeechPaused,
                                           SpeechResumed]
    assert detector.segment_start_ms == 0


def test_the_undecided_band_keeps_a_turn_open():
    detector = TurnDetector(threshold=0.5, pause_ms=256)
    events, _ = feed(detector, [(0.9, 5), (0.4, 20)])
    assert [type(e) for _, e in events] == [SpeechStarted]


def test_end_turn_lets_the_next_speech_open_a_new_turn():
    detector = TurnDetector(pause_ms=128)
    feed(detector, [(0.9, 5), (0.0, 5)])
    detector.end_turn()
    events, _ = feed(detector, [(0.9, 5)], t0=1000)
    assert [type(e) for _, e in events] == [SpeechStarted]
    assert events[0][1].start_ms >= 1000


def test_current_speech_counts_only_the_ongoing_run():
    detector = TurnDetector()
    feed(detector, [(0.9, 10)])
    assert detector.current_speech_ms == 320
    feed(detector, [(0.0, 1)])
    assert detector.current_speech_ms == 0


def test_wait_longer_moves_the_silence_timeout_even_after_it_was_sent():
    detector = TurnDetector(hesitation_ms=128, pause_ms=256, timeout_ms=896)
    events, t = feed(detector, [(0.9, 10), (0.0, 30)])  # 960 ms of silence: timed out
    assert [type(e) for _, e in events][-1] is SilenceTimeout
    assert detector.wait_longer(1504)
    more, t = feed(detector, [(0.0, 20)], t0=t)  # 1600 ms of silence in all
    assert [type(e) for _, e in more] == [SilenceTimeout]
    assert not detector.wait_longer(1504)  # the silence is already longer: end the turn now
