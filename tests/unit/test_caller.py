"""voice.caller: the simulated Twilio caller, against a tiny fake Media Streams server.

The fake answers like a voice bot would, only faster: a greeting on ``start``, then an answer
(tone + a mark) a moment after each utterance ends or after ``#``; it sends ``clear`` when the
caller speaks while its audio is still playing (a mark not yet echoed).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from telephony.audio import pcm16_to_ulaw, read_wav, ulaw_to_pcm16, write_wav
from telephony.twilio import protocol as tw
from voice import caller
from voice.caller import CallError, CallerTurn, add_call_arguments, main_call, place_call

pytestmark = pytest.mark.unit

QUIET_S = 0.15  # the caller's "assistant has finished" pause, short for fast tests
SECOND = 16000  # bytes of 8 kHz 16-bit PCM


def tone_ulaw(seconds: float) -> bytes:
    t = np.arange(int(seconds * 8000)) / 8000
    return pcm16_to_ulaw((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())


@dataclass
class Script:
    greeting_s: float = 0.1
    answer_s: float = 0.1
    answer_delay_s: float = 0.05  # after the fake decides the utterance ended
    hangover_s: float = 0.08  # silence that ends an utterance
    clear_greeting_after_s: float | None = None
    hang_up_after_greeting: bool = False
    stream_silence: bool = False  # like servers that send silence frames while idle


@dataclass
class FakeTwilioServer:
    script: Script
    inbound: list[tuple[float, tw.InboundEvent]] = field(default_factory=list)
    marks_sent: dict[str, float] = field(default_factory=dict)
    marks_echoed: dict[str, float] = field(default_factory=dict)
    clears_sent: list[float] = field(default_factory=list)
    answers_sent: list[float] = field(default_factory=list)
    last_voiced_seen: list[float] = field(default_factory=list)  # per utterance
    hung_up: bool = False  # the connection is over
    close_code: int | None = None  # the caller's close frame, None when the line dropped
    url: str = ""

    def events(self, kind: type) -> list:
        return [e for _, e in self.inbound if isinstance(e, kind)]

    async def say(self, ws: ServerConnection, sid: str, name: str, seconds: float) -> None:
        audio = tone_ulaw(seconds)
        for i in range(0, len(audio), 160):
            await ws.send(tw.media_message(sid, audio[i:i + 160]))
        await ws.send(tw.mark_message(sid, name))
        self.marks_sent[name] = time.monotonic()

    async def answer_later(self, ws: ServerConnection, sid: str) -> None:
        await asyncio.sleep(self.script.answer_delay_s)
        self.answers_sent.append(time.monotonic())
        await self.say(ws, sid, f"answer-{len(self.answers_sent)}", self.script.answer_s)

    async def clear_later(self, ws: ServerConnection, sid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.clears_sent.append(time.monotonic())
        await ws.send(tw.clear_message(sid))

    async def silence(self, ws: ServerConnection, sid: str) -> None:
        while True:
            await ws.send(tw.media_message(sid, b"\xff" * 160))
            await asyncio.sleep(0.02)

    async def handler(self, ws: ServerConnection) -> None:
        sid, in_speech, last_voiced = "", False, 0.0
        tasks: list[asyncio.Task[None]] = []
        try:
            async for text in ws:
                now = time.monotonic()
                event = tw.parse_inbound(text)
                self.inbound.append((now, event))
                if isinstance(event, tw.Start):
                    sid = event.stream_sid
                    await self.say(ws, sid, "greeting", self.script.greeting_s)
                    if self.script.stream_silence:
                        tasks.append(asyncio.create_task(self.silence(ws, sid)))
                    if self.script.hang_up_after_greeting:
                        await ws.close()
                    if self.script.clear_greeting_after_s is not None:
                        tasks.append(asyncio.create_task(
                            self.clear_later(ws, sid, self.script.clear_greeting_after_s)))
                elif isinstance(event, tw.Media):
                    pcm = np.frombuffer(ulaw_to_pcm16(event.payload), "<i2").astype(float)
                    if np.sqrt(np.mean(pcm ** 2)) > 500:
                        if not in_speech and set(self.marks_sent) - set(self.marks_echoed):
                            tasks.append(asyncio.create_task(self.clear_later(ws, sid, 0)))
                        in_speech, last_voiced = True, now
                    elif in_speech and now - last_voiced > self.script.hangover_s:
                        in_speech = False
                        self.last_voiced_seen.append(last_voiced)
                        tasks.append(asyncio.create_task(self.answer_later(ws, sid)))
                elif isinstance(event, tw.Dtmf) and event.digit == "#":
                    tasks.append(asyncio.create_task(self.answer_later(ws, sid)))
                elif isinstance(event, tw.Mark):
                    self.marks_echoed[event.name] = now
        except ConnectionClosed:
            pass
        for task in tasks:
            task.cancel()
        received = ws.protocol.close_rcvd
        self.close_code = received.code if received else None
        self.hung_up = True


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeTwilioServer]:
    server = FakeTwilioServer(getattr(request, "param", Script()))
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        server.url = f"ws://127.0.0.1:{port}/twilio/stream"
        yield server


def wav(tmp_path: Path, name: str, speech_s: float, silence_s: float) -> Path:
    """A tone burst then digital silence, at 16 kHz so the caller has to resample it."""
    t = np.arange(int(speech_s * 16000)) / 16000
    burst = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")
    path = tmp_path / name
    write_wav(path, np.concatenate([burst, np.zeros(int(silence_s * 16000), "<i2")]).tobytes(),
              16000)
    return path


async def call(fake: FakeTwilioServer, turns: list[CallerTurn], **options: object):
    options = {"quiet_s": QUIET_S, "final_listen_s": 1.0, "answer_timeout_s": 3.0, **options}
    return await place_call(fake.url, turns, **options)  # type: ignore[arg-type]


async def test_a_call_starts_like_twilio_and_streams_audio_every_20_ms(fake, tmp_path):
    result = await call(fake, [CallerTurn(wav=wav(tmp_path, "q.wav", 0.2, 0.2))],
                        caller="+15550123", call_sid="CA" + "1" * 32)
    assert isinstance(fake.inbound[0][1], tw.Connected)
    start = fake.inbound[1][1]
    assert isinstance(start, tw.Start) and start.call_sid == result.call_sid == "CA" + "1" * 32
    assert start.stream_sid.startswith("MZ") and len(start.stream_sid) == 34
    assert start.custom_parameters == {"From": "+15550123"}
    media = [(at, e) for at, e in fake.inbound if isinstance(e, tw.Media)]
    assert [e.chunk for _, e in media] == list(range(1, len(media) + 1))
    assert all(e.timestamp_ms == 20 * (e.chunk - 1) and len(e.payload) == 160 for _, e in media)
    pace = (media[-1][0] - media[0][0]) / (len(media) - 1)
    assert 0.018 < pace < 0.024
    assert any(e.payload == b"\xff" * 160 for _, e in media)  # silence between turns
    assert isinstance(fake.inbound[-1][1], tw.Stop)


@pytest.mark.parametrize("fake", [Script(stream_silence=True)], indirect=True)
async def test_each_turn_gets_the_answer_that_followed_it(fake, tmp_path):
    turns = [CallerTurn(wav=wav(tmp_path, "a.wav", 0.2, 0.1)),
             CallerTurn(wav=wav(tmp_path, "b.wav", 0.2, 0.1))]
    result = await call(fake, turns)
    assert result.greeting is not None and result.greeting.marks == ["greeting"]
    assert len(result.greeting.audio_pcm8k) == SECOND // 10
    assert [t.answer.marks for t in result.turns if t.answer] == [["answer-1"], ["answer-2"]]
    for turn in result.turns:
        assert turn.answer is not None and not turn.answer.cleared
        assert len(turn.answer.audio_pcm8k) == SECOND // 10
        assert turn.clear_received_at is None
        assert 0.1 <= turn.answer.ended_at - turn.answer.started_at < 0.5  # + silence ahead
    assert len(result.assistant_audio_pcm8k) > 3 * SECOND // 10  # the silence played too


@pytest.mark.parametrize("fake", [Script(greeting_s=0.5)], indirect=True)
async def test_marks_are_echoed_once_their_audio_has_played(fake):
    await call(fake, [])
    waited = fake.marks_echoed["greeting"] - fake.marks_sent["greeting"]
    assert 0.45 <= waited < 0.6


@pytest.mark.parametrize("fake", [Script(greeting_s=2.0, clear_greeting_after_s=0.3)],
                         indirect=True)
async def test_clear_empties_the_buffer_and_echoes_pending_marks_at_once(fake):
    result = await call(fake, [])
    assert fake.marks_echoed["greeting"] - fake.clears_sent[0] < 0.05
    assert result.greeting is not None and result.greeting.cleared
    assert 0.25 <= result.greeting.seconds <= 0.4  # what played before the clear, not 2 s


async def test_dtmf_turns_send_one_message_per_digit_250_ms_apart(fake):
    result = await call(fake, [CallerTurn(dtmf="12#")])
    sent = [(at, e) for at, e in fake.inbound if isinstance(e, tw.Dtmf)]
    assert [e.digit for _, e in sent] == ["1", "2", "#"]
    assert all(e.track == "inbound_track" for _, e in sent)
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:], strict=False)]
    assert all(0.24 <= gap < 0.3 for gap in gaps)
    turn = result.turns[0]
    assert turn.answer is not None and turn.latency_s == pytest.approx(0.05, abs=0.04)


async def test_latency_runs_from_the_end_of_speech_not_the_end_of_the_file(fake, tmp_path):
    question = wav(tmp_path, "q.wav", 0.3, 0.5)  # the answer comes while silence still plays
    result = await call(fake, [CallerTurn(wav=question)])
    turn = result.turns[0]
    assert turn.speech_end_at == pytest.approx(fake.last_voiced_seen[0], abs=0.01)
    assert turn.speech_start_at is not None
    assert turn.speech_end_at - turn.speech_start_at == pytest.approx(0.28, abs=0.03)
    server_side = fake.answers_sent[0] - fake.last_voiced_seen[0]  # hangover + delay ≈ 0.15
    assert turn.latency_s == pytest.approx(server_side, abs=0.03)
    assert 0.1 < turn.latency_s < 0.3


@pytest.mark.parametrize("fake", [Script(answer_s=1.5)], indirect=True)
async def test_a_barge_in_turn_speaks_over_the_answer_and_sees_the_clear(fake, tmp_path):
    turns = [CallerTurn(wav=wav(tmp_path, "q.wav", 0.2, 0.1)),
             CallerTurn(wav=wav(tmp_path, "b.wav", 0.2, 0.1), barge_in_after_s=0.4)]
    result = await call(fake, turns, final_listen_s=0.5)
    first, barge = result.turns
    assert first.answer is not None and barge.speech_start_at is not None
    assert barge.speech_start_at - first.answer.started_at == pytest.approx(0.4, abs=0.05)
    assert barge.clear_received_at is not None and first.clear_received_at is None
    assert first.answer.cleared and first.answer.marks == ["answer-1"]
    assert first.answer.seconds < 0.8  # 1.5 s were sent; the rest was cleared
    assert first.answer.ended_at == pytest.approx(barge.clear_received_at)
    assert barge.answer is not None and not barge.answer.cleared
    assert barge.latency_s is not None and barge.latency_s < 0.3


@pytest.mark.parametrize("hang_up, abrupt, stop_sent, close_code", [
    (True, False, True, 1000), (False, False, False, 1000), (False, True, False, None),
])
async def test_the_caller_hangs_up_with_stop_a_close_or_a_dropped_line(
        fake, hang_up, abrupt, stop_sent, close_code):
    await call(fake, [], hang_up=hang_up, abrupt=abrupt)
    for _ in range(50):
        if fake.hung_up:
            break
        await asyncio.sleep(0.01)
    assert fake.hung_up and fake.close_code == close_code
    assert bool(fake.events(tw.Stop)) is stop_sent


@pytest.mark.parametrize("fake", [Script(hang_up_after_greeting=True)], indirect=True)
async def test_a_server_hang_up_ends_the_call_early(fake, tmp_path):
    result = await call(fake, [CallerTurn(wav=wav(tmp_path, "q.wav", 0.2, 0.1))])
    assert result.closed_by_server and result.turns == []


async def test_an_unreachable_server_is_a_call_error():
    with pytest.raises(CallError, match="cannot reach"):
        await place_call("ws://127.0.0.1:9/twilio/stream", [])


@pytest.fixture
def fast_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command with the short pause these tests use (the CLI keeps the 0.8 s default)."""
    monkeypatch.setattr(caller, "place_call", functools.partial(place_call, quiet_s=QUIET_S))


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_call_arguments(parser)
    return parser.parse_args(list(argv))


async def test_the_cli_prints_one_line_per_turn_and_records_the_assistant(fake, tmp_path, capsys,
                                                                        fast_cli):
    question, record = wav(tmp_path, "q.wav", 0.2, 0.1), tmp_path / "heard.wav"
    code = await main_call(cli_args(str(question), "dtmf:#", "--url", fake.url, "--record",
                                    str(record), "--timeout", "3", "--final-listen", "1"))
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("call CA") and out[0].endswith("greeting 0.1 s")
    assert out[1].startswith(f"turn 1: sent {question} -> answer 0.1 s, latency ")
    assert out[2].startswith("turn 2: sent dtmf:# -> answer 0.1 s") and "clear no" in out[2]
    pcm, rate = read_wav(record)
    assert rate == 8000 and len(pcm) == 3 * SECOND // 10


async def test_the_cli_reports_json(fake, capsys, fast_cli):
    code = await main_call(cli_args("dtmf:#", "--url", fake.url, "--json", "--final-listen", "1"))
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["turns"][0]["sent"] == "dtmf:#"
    assert report["turns"][0]["answer"]["marks"] == ["answer-1"]
    assert isinstance(report["turns"][0]["latency_ms"], int)


async def test_the_cli_exits_2_with_one_line_when_the_server_is_unreachable(capsys):
    code = await main_call(cli_args("dtmf:1", "--url", "ws://127.0.0.1:9/twilio/stream"))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("iva call: cannot reach") and err.count("\n") == 1


async def test_the_cli_exits_2_on_a_missing_wav(tmp_path, capsys):
    assert await main_call(cli_args(str(tmp_path / "nope.wav"))) == 2
    assert capsys.readouterr().err == f"iva call: {tmp_path / 'nope.wav'}: no such WAV file\n"
