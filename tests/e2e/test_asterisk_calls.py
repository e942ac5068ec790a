"""Calls from Asterisk end to end: the real server and models, Asterisk's side of AudioSocket
(TCP) and of chan_websocket played faithfully, caller speech from flite, the assistant's
answers transcribed back."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from telephony.asterisk import chan_websocket as cw
from tests.e2e.asterisk_lines import AudioSocketLine, WebSocketLine
from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.e2e.test_twilio_calls import heard

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class AsteriskServer:
    server: Server
    audiosocket_port: int

    @property
    def media_url(self) -> str:
        return self.server.base_url.replace("http://", "ws://") + "/asterisk/media"


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskServer]:
    port = free_port()
    server = start_server(tmp_path_factory.mktemp("asterisk-server"),
                          {"IVA_AUDIOSOCKET_PORT": str(port)})
    yield AsteriskServer(server, port)
    stop_server(server, "e2e-asterisk-server.log")


def fact(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


async def test_an_audiosocket_call_answers_a_question_hears_the_keypad_and_ends(asterisk, voices,
                                                                             transcriber):
    line = await AudioSocketLine.dial(asterisk.audiosocket_port)
    try:
        greeting = await line.answer(after=0.0)
        assert len(greeting) > 8000, "no greeting"
        asked = await line.say(voices.say("How long do I have to return an item?"))
        answer = await line.answer(after=asked)
        said = heard(transcriber, answer)
        assert fact(r"\b30\b|thirty", said), said
        await line.dtmf("1001#")
        await line.answer(after=asked + 1.0, timeout_s=10.0)  # the reply to the digits
    finally:
        await line.hang_up()

    record = asterisk.server.call_record(line.call_id)
    assert record["channel"] == "asterisk_audiosocket" and record["caller"] is None
    assert record["outcome"] == "completed"
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert "return" in caller_turns[0]["text"].lower()
    assert caller_turns[0]["intent"] == "returns_refunds"
    assert fact(r"\b30\b|thirty", answers[1]["text"].lower()), answers[1]
    assert answers[1]["latency_ms"] is not None and 0 < answers[1]["latency_ms"] < 5000
    digits = [e["digit"] for e in record["events"] if e["type"] == "dtmf"]
    assert digits == ["1", "0", "0", "1", "#"]


async def test_a_websocket_call_in_ulaw_answers_with_marks_and_knows_the_caller(asterisk, voices,
                                                                              transcriber):
    line = await WebSocketLine.dial(asterisk.media_url + "?caller=%2B15550100")
    try:
        greeting = await line.answer(after=0.0)
        assert len(greeting) > 8000, "no greeting"
        assert line.received(cw.Command.ANSWER), "the channel was not answered"
        asked = await line.say(voices.say("How much does express shipping cost?"))
        said = heard(transcriber, await line.answer(after=asked))
        assert fact(r"12\.99|twelve", said), said
        await line.dtmf("5")
        await asyncio.sleep(1.0)
    finally:
        await line.hang_up()

    assert len(line.received(cw.Command.MARK_MEDIA)) >= 2  # the greeting's and the answer's
    record = asterisk.server.call_record(line.call_id)
    assert record["channel"] == "asterisk_websocket" and record["caller"] == "+15550100"
    assert record["outcome"] == "completed"
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert caller_turns[0]["intent"] == "shipping", caller_turns
    assert fact(r"12\.99|twelve", answers[1]["text"].lower()), answers[1]
    assert answers[1]["interrupted"] is False
    assert [e["digit"] for e in record["events"] if e["type"] == "dtmf"] == ["5"]


async def test_speaking_over_an_answer_flushes_asterisks_queue(asterisk, voices):
    line = await WebSocketLine.dial(asterisk.media_url, codec="slin16",
                                    fmt=cw.ControlFormat.JSON)
    try:
        await line.answer(after=0.0)
        asked = await line.say(voices.say("What is your return policy for limited edition items?"))
        while (began := line.audible_since(asked)) is None and not line.closed.is_set():
            await asyncio.sleep(0.05)
        assert began is not None, "no answer to speak over"
        await asyncio.sleep(1.0)
        interrupted = await line.say(voices.say("How much is express shipping?"))
        flushes = line.received(cw.Command.FLUSH_MEDIA)
        assert flushes and began < flushes[0] < interrupted + 2.0, "no FLUSH_MEDIA on barge-in"
        assert await line.answer(after=interrupted), "the interruption was not answered"
    finally:
        await line.hang_up()

    record = asterisk.server.call_record(line.call_id)
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert answers[1]["interrupted"] is True
    assert len(answers[1]["text"]) < len(answers[1]["planned_text"])
    assert any(e["type"] == "barge_in" for e in record["events"])
    assert "express" in [t for t in record["turns"] if t["speaker"] == "caller"][1]["text"].lower()


async def test_malformed_input_ends_only_the_connection_that_sent_it(asterisk):
    good = await WebSocketLine.dial(asterisk.media_url)
    bad_ws = await WebSocketLine.dial(asterisk.media_url)
    bad_tcp = await AudioSocketLine.dial(asterisk.audiosocket_port)
    try:
        await good.answer(after=0.0)
        await bad_ws.send_text("MEDIA_START connection_id:again")
        await bad_tcp.send(b"\x42\x00\x00")  # a packet kind AudioSocket does not have
        assert await bad_ws.wait_closed() and bad_ws.close_code == 1007
        assert await bad_tcp.wait_closed() and bad_tcp.hung_up_by_server
        typed = good.heard[-1][0]
        await good.dtmf("7#")
        assert await good.answer(after=typed, timeout_s=15.0), "the good call stopped answering"
        assert not good.closed.is_set()
    finally:
        for line in (good, bad_ws, bad_tcp):
            await line.hang_up()

    for line in (bad_ws, bad_tcp):
        record = asterisk.server.call_record(line.call_id)
        assert record["outcome"] == "error"
        assert any(e["type"] == "protocol_error" for e in record["events"])
    assert asterisk.server.call_record(good.call_id)["outcome"] == "completed"
    # One warning each (call ids are not compared: the log's PII filter may mask digit runs).
    log = asterisk.server.log_text()
    assert log.count(": closing the media WebSocket (code 1007): MEDIA_START: missing") == 1
    assert log.count(": dropping the AudioSocket connection from 127.0.0.1:") == 1
