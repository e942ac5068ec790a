"""A caller who says a card number: the transcript, the logs and the recording keep no trace
of it (the real server, models and a Twilio-protocol caller speaking with flite)."""

from __future__ import annotations

import io
import re
import time
import urllib.error
import urllib.request
import wave

import numpy as np
import pytest

from tests.e2e.conftest import API_TOKEN
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CARD = "four one one one, one one one one, one one one one, one one one one"


def recording(server, call_sid: str, *, wait_s: float = 20.0) -> np.ndarray:
    """The call's recording, once written (after the call, with the PII silenced)."""
    request = urllib.request.Request(f"{server.base_url}/api/calls/{call_sid}/recording",
                                     headers={"Authorization": f"Bearer {API_TOKEN}"})
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response, \
                    wave.open(io.BytesIO(response.read())) as wav:
                assert response.headers["Content-Type"] == "audio/wav"
                assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
                return np.frombuffer(wav.readframes(wav.getnframes()),
                                     dtype=np.int16).reshape(-1, 2)
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


async def test_a_spoken_card_number_is_redacted_in_transcript_logs_and_recording(server, voices):
    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say(f"My card number is {CARD}.")),
    ], final_listen_s=8.0)

    record = server.call_record(result.call_sid)
    (turn,) = [t for t in record["turns"] if t["speaker"] == "caller"]
    assert re.search(r"\[(card|number)\]", turn["text"]), turn
    assert not re.search(r"\d(?:[\s,.-]*\d){6}", turn["text"]), turn  # no 7 digits in any form
    assert turn["redacted"] in (["card"], ["number"])

    log = server.log_text()
    assert not re.search(r"4\s*1\s*1\s*1[\s,.-]*1\s*1\s*1", log)

    frames = recording(server, result.call_sid)
    caller = frames[turn["start_ms"] * 8:turn["end_ms"] * 8, 0]
    assert len(caller) > 8000
    silent = float(np.mean(caller == 0))
    assert silent >= 0.4, f"only {silent:.0%} of the turn is silenced"
    # "My card number is" stays audible: only the digits were silenced.
    assert np.abs(caller[:4000]).max() > 500
