"""scripts/bench.py's report and scripts/bench_bridges.py's pure parts, with made-up figures:
percentiles, the one-bridge table (as it has always been written) and the table per bridge."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from scripts import bench
from scripts.bench_bridges import (
    BRIDGES,
    MEASURES,
    VoicedFrame,
    add_record_figures,
    new_figures,
    stop_time,
    voiced_frames,
)

pytestmark = pytest.mark.unit

WHEN, HOST = "2026-11-30 10:00 UTC", "a test machine"


def args(bridge: str = "twilio", calls: int = 8, barge_ins: int = 4) -> argparse.Namespace:
    return argparse.Namespace(bridge=bridge, calls=calls, barge_ins=barge_ins, no_write=True)


def figures(base: float) -> dict[str, list[float]]:
    """Five values per measure: p50 = ``base`` + 30, p95 = ``base`` + 88."""
    return {key: [base + v for v in (40, 10, 100, 30, 20)] for key in MEASURES}


def rows(text: str) -> dict[str, list[str]]:
    """The table's rows by their (stripped) first cell."""
    out = {}
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = cells[1:]
    return out


def test_percentiles_interpolate_between_ranks() -> None:
    assert bench.pct([40.0, 10.0, 30.0, 20.0], 0.5) == 25.0
    assert bench.pct([float(v) for v in range(1, 101)], 0.95) == pytest.approx(95.05)
    assert bench.pct([7.0], 0.95) == 7.0
    assert math.isnan(bench.pct([], 0.5))


def test_a_twilio_run_is_reported_as_it_always_was() -> None:
    text = bench.report({"twilio": figures(100)}, args(calls=12), when=WHEN, host=HOST)
    assert text.splitlines()[:6] == [
        f"### Run of {WHEN}", "", f"Machine: {HOST}.",
        "Command: `./scripts/bench --calls 12 --barge-ins 4`; callers speak with flite and "
        "espeak-ng voices, answers come from the demo KB.",
        "", "| measure | n | p50 (ms) | p95 (ms) |"]
    table = rows(text)
    assert table[bench.LABELS["client_latency_ms"].strip()] == ["5", "130", "188"]
    assert table["barge-in stop time (caller speech onset → `clear` received)"] == [
        "5", "130", "188"]
    assert len(table) == 1 + len(MEASURES)
    assert "Bridges:" not in text


def test_another_single_bridge_names_itself_and_its_barge_in_signal() -> None:
    text = bench.report({"websocket": figures(0)}, args("websocket"), when=WHEN, host=HOST)
    assert "`./scripts/bench --bridge websocket --calls 8 --barge-ins 4`" in text
    assert "Bridges: chan_websocket: Asterisk chan_websocket" in text
    table = rows(text)
    assert table["barge-in stop time (caller speech onset → `FLUSH_MEDIA` received)"] == [
        "5", "30", "88"]
    sip = bench.report({"sip": figures(0)}, args("sip"), when=WHEN, host=HOST)
    assert "the answer's last audio received" in sip


def test_every_bridge_gets_a_column_of_p50_p95_and_n() -> None:
    results = {bridge: figures(100 * i) for i, bridge in enumerate(BRIDGES)}
    results["sip"]["barge_in_stop_ms"] = []  # none measured: a dash, not "nan"
    results["webrtc"]["asr_ms"] = [300.0, 100.0]
    text = bench.report(results, args("all"), when=WHEN, host=HOST,
                        failures={"sip": ["call 3: TimeoutError: no 200"], "twilio": []})
    table = rows(text)
    assert table["measure"] == ["Twilio", "AudioSocket", "chan_websocket", "SIP/RTP", "WebRTC"]
    assert table[bench.LABELS["client_latency_ms"]] == [
        "30 / 88 (5)", "130 / 188 (5)", "230 / 288 (5)", "330 / 388 (5)", "430 / 488 (5)"]
    assert table[bench.labels_for("all")["asr_ms"].strip()][4] == "200 / 290 (2)"
    assert table[bench.BARGE_IN_LABELS["all"]][3] == "-"
    assert "nan" not in text
    assert "Each cell: p50 / p95 in ms (n)." in text
    assert "Failed calls (left out of the figures): SIP/RTP 1 (call 3: TimeoutError: no 200)." \
        in text
    assert "`./scripts/bench --bridge all --calls 8 --barge-ins 4`" in text


def test_a_call_record_gives_the_server_figures_of_its_answers_not_the_greeting() -> None:
    record = {"turns": [
        {"speaker": "assistant", "intent": "greeting", "latency_ms": None, "tts_first_ms": 90},
        {"speaker": "caller", "endpoint_ms": 380, "asr_ms": 250, "route_ms": 11},
        {"speaker": "assistant", "intent": "returns_refunds", "latency_ms": 402,
         "tts_first_ms": 0},
        {"speaker": "caller", "endpoint_ms": None, "asr_ms": None, "route_ms": None},
    ]}
    found = new_figures()
    add_record_figures(record, found)
    assert found == {"client_latency_ms": [], "server_latency_ms": [402.0],
                     "endpoint_ms": [380.0], "asr_ms": [250.0], "route_ms": [11.0],
                     "tts_first_ms": [0.0], "barge_in_stop_ms": []}


def test_only_frames_loud_enough_for_the_twilio_caller_count_as_speech() -> None:
    quiet, loud = np.full(160, 20, dtype="<i2"), np.full(160, 3000, dtype="<i2")
    pcm = np.concatenate([quiet, loud, loud, quiet, quiet[:80]]).tobytes()
    frames = voiced_frames(pcm, 320)
    assert [isinstance(f, VoicedFrame) for f in frames] == [False, True, True, False, False]
    assert len(frames[-1]) == 320  # the last one padded to 20 ms


def test_the_answer_stops_at_its_last_audible_chunk_while_the_caller_talks() -> None:
    heard = [(0.9, True), (1.1, True), (1.3, True), (1.5, False), (1.7, False), (4.0, True)]
    assert stop_time(heard, onset=1.0, ended=3.0) == 1.3
    assert stop_time(heard[:1], onset=1.0, ended=3.0) is None  # it was over before
    still = [(1.0 + 0.1 * i, True) for i in range(1, 21)]
    assert stop_time(still, onset=1.0, ended=3.0) is None  # it never stopped


def test_the_asr_row_names_the_recogniser_the_server_runs(monkeypatch) -> None:
    monkeypatch.setenv("IVA_ASR_BEAM_SIZE", "3")
    monkeypatch.setenv("IVA_ASR_MODEL", "base")
    text = bench.report({"twilio": figures(0)}, args("twilio"), when=WHEN, host=HOST)
    assert "ASR time per utterance (faster-whisper base, int8, beam 3)" in text
    assert "(intent from 3 ASR hypotheses at most)" in text  # the beam holds no more
    assert "{model}" not in text
