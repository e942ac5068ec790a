"""Warm transfer end to end: a server configured for Twilio transfers, a local stand-in for
Twilio's REST API that checks the request, callers speaking with flite/espeak-ng, and the
agent accepting over the handoffs API."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Server,
    free_port,
    start_server,
    stop_server,
)
from tests.e2e.test_twilio_calls import heard, heard_in_windows
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACCOUNT_SID, AUTH_TOKEN, TARGET = "ACe2e0000000000000000000000000000", "e2e-auth-token", "+15550199"


class TwilioApi:
    """The part of Twilio's REST API a transfer uses: updating a live call."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                api.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                     "form": urllib.parse.parse_qs(body.decode())})
                call_sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
                reply = json.dumps({"sid": call_sid, "status": "in-progress"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_call(self, call_sid: str) -> list[dict]:
        return [r for r in self.requests if call_sid in r["path"]]


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    api = TwilioApi()
    yield api
    api.server.shutdown()


@pytest.fixture(scope="module")
def transfer_server(tmp_path_factory, twilio_api) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("transfer-server")
    server = start_server(tmp, {
        "IVA_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "IVA_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "IVA_TWILIO_API_BASE_URL": twilio_api.url, "IVA_TRANSFER_TARGET": TARGET,
        "IVA_HANDOFF_TIMEOUT_S": "6",
    })
    yield server
    stop_server(server, "e2e-transfer-server.log")


async def agent_accepts(server: Server, call_sid: str, *, within_s: float = 40.0) -> dict:
    """Play the agent: wait for the call's handoff on the desk and accept it."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        waiting = await asyncio.to_thread(server.get_json, "/api/handoffs?status=waiting")
        for handoff in waiting["handoffs"]:  # type: ignore[index]
            if handoff["call_id"] == call_sid:
                return await asyncio.to_thread(server.post_json,
                                             f"/api/handoffs/{handoff['id']}/accept")
        await asyncio.sleep(0.2)
    raise AssertionError(f"no handoff for {call_sid} within {within_s} s")


async def test_asking_for_a_person_is_transferred_at_once_through_the_twilio_api(
        transfer_server, twilio_api, voices, transcriber):
    call_sid = "CA" + "e2e1" * 8
    call = asyncio.create_task(place_call(transfer_server.ws_url, [
        CallerTurn(wav=voices.say("I want to talk to a person.")),
    ], call_sid=call_sid, final_listen_s=14.0))
    accepted = await agent_accepts(transfer_server, call_sid)
    result = await call

    said = heard(transcriber, result.turns[0].answer.audio_pcm8k)
    assert "connect you" in said, said
    assert accepted["status"] == "accepted" and accepted["reason"] == "caller asked for an agent"
    assert "person" in " ".join(t["text"] for t in accepted["transcript"]).lower()

    (request,) = twilio_api.for_call(call_sid)
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request["auth"] == f"Basic {expected_auth}"
    (twiml,) = request["form"]["Twiml"]
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Start><Stream')
    assert f'<Dial answerOnBridge="true" timeout="30"><Number>{TARGET}</Number></Dial></Response>' \
        in twiml

    record = transfer_server.call_record(call_sid)
    assert record["outcome"] == "transferred"
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    assert caller_turns[0]["intent"] == "agent"  # at once: the first turn
    types = [e["type"] for e in record["events"]]
    assert {"escalation", "handoff", "handoff_accepted", "transfer"} <= set(types)
    handoff = transfer_server.get_json(f"/api/handoffs/{accepted['id']}")
    assert handoff["status"] == "connected"  # type: ignore[index]

    # Twilio's listen-only stream of both tracks: the transcript goes on after pick-up.
    monitor_url = transfer_server.ws_url.replace("/twilio/stream", "/twilio/monitor")
    assert f'<Start><Stream track="both_tracks" url="{monitor_url}">' in twiml
    await follow_after_transfer(monitor_url, call_sid, accepted["id"], [
        ("outbound", voices.say("Hello, this is Alex from Brightline. How can I help?",
                                voice="espeak")),
        ("inbound", voices.say("Hi Alex, my headphones are late.")),
    ])
    record = transfer_server.call_record(call_sid)
    after = [t for t in record["turns"] if t.get("after_transfer")]
    agent_words = " ".join(t["text"] for t in after if t["speaker"] == "agent").lower()
    caller_words = " ".join(t["text"] for t in after if t["speaker"] == "caller").lower()
    assert "alex" in agent_words or "brightline" in agent_words, after
    assert "headphones" in caller_words or "late" in caller_words, after
    handoff = transfer_server.get_json(f"/api/handoffs/{accepted['id']}")
    assert any(t["speaker"] == "agent" for t in handoff["transcript"])  # type: ignore[index]


async def follow_after_transfer(url: str, call_sid: str, handoff_id: str,
                                utterances: list[tuple[str, object]]) -> None:
    """Play Twilio's ``<Start><Stream track="both_tracks">``: each utterance on its track, in
    real time, with silence on the other track, then ``stop``."""
    import websockets

    from telephony.audio import pcm16_to_ulaw, read_wav, resample
    from telephony.twilio import protocol as tw

    stream_sid = "MZmonitor" + call_sid[-8:]
    async with websockets.connect(url) as ws:
        await ws.send(tw.connected_message())
        await ws.send(tw.start_message(stream_sid, call_sid, tracks=("inbound", "outbound"),
                                       custom_parameters={"handoff": handoff_id}))
        chunk, silence = 0, pcm16_to_ulaw(bytes(320))
        for track, wav in utterances:
            ulaw = pcm16_to_ulaw(resample(*read_wav(wav), 8000)) + silence * 50  # + 1 s quiet
            other = "inbound" if track == "outbound" else "outbound"
            for i in range(0, len(ulaw), 160):
                chunk += 1
                await ws.send(tw.inbound_media_message(stream_sid, chunk, chunk * 20,
                                                       ulaw[i:i + 160].ljust(160, b"\xff"),
                                                       track=track))
                await ws.send(tw.inbound_media_message(stream_sid, chunk, chunk * 20, silence,
                                                       track=other))
                await asyncio.sleep(0.02)
        await ws.send(tw.stop_message(stream_sid, call_sid))
        await asyncio.sleep(3.0)  # the last utterance is transcribed as the stream closes


async def test_nobody_answering_offers_a_callback_that_becomes_a_ticket(
        transfer_server, twilio_api, voices, transcriber):
    call_sid = "CA" + "e2e2" * 8
    result = await place_call(transfer_server.ws_url, [
        CallerTurn(wav=voices.say("Can I speak to a representative please?")),
        CallerTurn(wav=voices.say("Yes, please call me back.")),
    ], call_sid=call_sid, final_listen_s=12.0)

    heard_all = heard_in_windows(transcriber, result.assistant_audio_pcm8k)
    assert "agents are busy" in heard_all or "call you back" in heard_all, heard_all
    assert twilio_api.for_call(call_sid) == []  # nobody accepted: no transfer

    record = transfer_server.call_record(call_sid)
    said = [t["text"] for t in record["turns"] if t["speaker"] == "assistant"]
    assert any(text.startswith("I'm sorry, all our agents are busy") for text in said), said
    assert said[-1].startswith("All right. An agent will call you back"), said
    types = [e["type"] for e in record["events"]]
    assert {"handoff", "handoff_no_agent", "ticket"} <= set(types)
    (handoff,) = [h for h in transfer_server.get_json("/api/handoffs")["handoffs"]  # type: ignore[index]
                  if h["call_id"] == call_sid]
    assert handoff["status"] == "callback" and handoff["ticket"]["kind"] == "callback"
    assert record["outcome"] == "completed"


async def test_an_agent_accepts_on_the_desk_in_a_real_browser(transfer_server, twilio_api,
                                                              voices):
    from selenium.webdriver.common.by import By

    from tests.e2e.browser import chromium, screenshot, wait_for

    call_sid = "CA" + "e2e3" * 8
    with chromium() as browser:
        browser.get(transfer_server.base_url + "/agent")  # not signed in: the login page
        wait_for(browser, lambda b: "/login" in b.current_url, message="no login page")
        browser.find_element(By.CSS_SELECTOR, "[data-testid=username]").send_keys(ADMIN_USER)
        browser.find_element(By.CSS_SELECTOR, "[data-testid=password]").send_keys(ADMIN_PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "[data-testid=login]").click()
        wait_for(browser, lambda b: b.current_url.endswith("/agent"), message="not back on /agent")
        wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, "[data-testid=connection]")
                 .text == "live", message="the desk did not connect")
        call = asyncio.create_task(place_call(transfer_server.ws_url, [
            CallerTurn(wav=voices.say("This is useless. Let me talk to a real person.")),
        ], call_sid=call_sid, final_listen_s=16.0))
        mine = f'[data-testid=handoff][data-call-id="{call_sid}"]'
        card = await asyncio.to_thread(
            wait_for, browser, lambda b: b.find_elements(By.CSS_SELECTOR, mine),
            timeout=40, message="no handoff appeared on the desk")
        card[0].click()
        summary = browser.find_element(By.CSS_SELECTOR, "[data-testid=summary]").text
        assert "Jamie Rivera" in summary and "Transfer:" in summary, summary
        transcript = browser.find_element(By.CSS_SELECTOR, "[data-testid=transcript]").text
        assert "person" in transcript.lower(), transcript
        browser.find_element(By.CSS_SELECTOR, "[data-testid=accept]").click()
        await asyncio.to_thread(
            wait_for, browser, lambda b: "connected" in b.find_element(
                By.CSS_SELECTOR, "[data-testid=status]").text or "accepted" in b.find_element(
                By.CSS_SELECTOR, "[data-testid=status]").text,
            message="the accept did not go through")
        note = browser.find_element(By.CSS_SELECTOR, "[data-testid=note]")
        note.send_keys("Customer wanted a person; handled the delay.")
        browser.find_element(By.CSS_SELECTOR, "[data-testid=save-note]").click()
        await asyncio.to_thread(
            wait_for, browser, lambda b: "1 note" in b.find_element(
                By.CSS_SELECTOR, "[data-testid=notes]").text, message="the note was not saved")
        screenshot(browser, "agent-desk")
        await call

    (request,) = twilio_api.for_call(call_sid)
    assert TARGET in request["form"]["Twiml"][0]
    (handoff,) = [h for h in transfer_server.get_json("/api/handoffs")["handoffs"]  # type: ignore[index]
                  if h["call_id"] == call_sid]
    assert handoff["status"] == "connected" and handoff["notes"][0]["text"].startswith("Customer")


async def test_an_angry_caller_is_handed_over_within_two_turns_of_the_first_signal(
        transfer_server, twilio_api, voices):
    calm = {"voice": "espeak", "pitch": 45, "speed": 150, "amplitude": 90}
    angry = {"voice": "espeak", "pitch": 75, "speed": 170, "amplitude": 190}
    call_sid = "CA" + "e2e4" * 8
    call = asyncio.create_task(place_call(transfer_server.ws_url, [
        CallerTurn(wav=voices.say("Hi, I am calling about my order.", **calm)),
        CallerTurn(wav=voices.say("It is one zero zero one.", **calm)),
        CallerTurn(wav=voices.say("This is the third time I have called and nobody fixed it. "
                                  "This is ridiculous!", **angry)),
        CallerTurn(wav=voices.say("I am sick of waiting. You people are useless!", **angry)),
    ], call_sid=call_sid, final_listen_s=10.0))
    accepted = await agent_accepts(transfer_server, call_sid, within_s=120.0)
    result = await call
    record = transfer_server.call_record(call_sid)
    assert len(result.turns) >= 3, [(t["speaker"], t["text"], t["intent"]) for t in record["turns"]]
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    # The first clear signal is the first turn in the angry voice: the third caller turn.
    first_signal = 2
    angry_words = caller_turns[first_signal]["text"]
    escalations = [e for e in record["events"] if e["type"] == "escalation"]
    assert escalations, [e for e in record["events"] if e["type"] == "escalation_risk"]
    assert escalations[0]["reason"].startswith("frustration"), escalations[0]
    handed_over_at = next(i for i, t in enumerate(caller_turns) if t["intent"] == "escalation")
    assert handed_over_at - first_signal <= 1, caller_turns  # this turn or the next
    (handoff,) = [h for h in transfer_server.get_json("/api/handoffs")["handoffs"]  # type: ignore[index]
                  if h["call_id"] == call_sid]
    said = [t["text"] for t in handoff["transcript"] if t["speaker"] == "caller"]
    assert angry_words in said, (angry_words, said)  # the caller's own words, as recognised
    assert any(w in angry_words.lower() for w in ("third", "ridiculous", "fixed", "called")), \
        angry_words
    assert handoff["sentiment"]["label"] == "negative" and len(handoff["sentiment"]["trend"]) >= 3
    assert accepted["id"] == handoff["id"] and handoff["status"] == "connected"
    # The transfer reached Twilio's API with the right credentials and TwiML.
    (request,) = twilio_api.for_call(call_sid)
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"
    assert request["auth"] == "Basic " + base64.b64encode(
        f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert f"<Number>{TARGET}</Number>" in request["form"]["Twiml"][0]
    assert record["outcome"] == "transferred"
