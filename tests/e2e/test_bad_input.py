"""Bad input on the Twilio stream closes that connection with a precise close code and a log
line; the server stays healthy, the next call works, records are kept."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from telephony.twilio import protocol as tw
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

START = tw.start_message("MZbad0001", "CAbad0001", custom_parameters={"From": "+15550101"})


async def close_code_after(url: str, *messages: str | bytes) -> int | None:
    async with websockets.connect(url, max_size=None) as ws:
        for message in messages:
            await ws.send(message)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=10)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


def start_for(call_sid: str) -> str:
    return tw.start_message(f"MZ{call_sid}", call_sid, custom_parameters={"From": "+15550101"})


@pytest.mark.parametrize("name, messages, code", [
    ("malformed JSON", ['{"event": "start", '], 1007),
    ("media before start", [tw.inbound_media_message("MZx", 1, 0, b"\xff" * 160)], 1008),
    ("unknown event", [tw.connected_message(), json.dumps({"event": "teleport"})], 1007),
    ("binary frame", [b"\x00\x01\x02"], 1003),
    ("1 MB message", [json.dumps({"event": "media", "pad": "x" * 1_000_000})], 1009),
])
async def test_bad_input_closes_only_that_connection(server, name, messages, code):
    assert await close_code_after(server.ws_url, *messages) == code, name
    with urllib.request.urlopen(server.base_url + "/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"


async def test_a_call_that_breaks_the_protocol_mid_call_keeps_its_record(server):
    code = await close_code_after(server.ws_url, tw.connected_message(), start_for("CAbroken01"),
                                  "not json at all")
    assert code == 1007
    record = server.call_record("CAbroken01")
    assert record["outcome"] == "error"
    assert any(e["type"] == "protocol_error" for e in record["events"])
    assert "CAbroken01" in server.log_text() and "closing the stream (code 1007)" in server.log_text()


async def test_an_abrupt_hang_up_mid_answer_keeps_the_record_and_the_next_call_works(server,
                                                                                      voices):
    question = voices.say("What is your return policy for limited edition items?")
    result = await place_call(server.ws_url, [CallerTurn(wav=question)], final_listen_s=1.0,
                              hang_up=False, abrupt=True)
    record = server.call_record(result.call_sid, wait_s=20)
    assert record["outcome"] == "caller_hung_up"
    assert any(t["speaker"] == "caller" for t in record["turns"])

    follow_up = await place_call(server.ws_url, [], final_listen_s=0.5)
    assert follow_up.greeting is not None and follow_up.greeting.audio_pcm8k
    assert server.call_record(follow_up.call_sid)["outcome"] == "completed"


async def test_words_said_just_before_a_hang_up_are_kept_unanswered_in_the_record(server, voices):
    question = voices.say("This is useless, I am calling my bank.")
    result = await place_call(server.ws_url, [CallerTurn(wav=question)], final_listen_s=0.0,
                              hang_up=False, abrupt=True)
    record = server.call_record(result.call_sid, wait_s=20)
    assert record["outcome"] == "caller_hung_up"
    (turn,) = [t for t in record["turns"] if t["speaker"] == "caller"]
    assert "useless" in turn["text"].lower(), turn
    assert turn["unanswered"] == "call ended"


async def test_the_api_needs_a_login_or_the_token(server):
    for path in ("/api/calls", "/api/handoffs", "/api/calls/CAnope/recording"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(server.base_url + path, timeout=5)
        assert error.value.code == 401, path
    request = urllib.request.Request(server.base_url + "/api/calls",
                                     headers={"Authorization": "Bearer wrong-token"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 401


async def test_an_unknown_call_id_is_a_404(server):
    with pytest.raises(urllib.error.HTTPError) as error:
        server.get_json("/api/calls/CAnope")
    assert error.value.code == 404
