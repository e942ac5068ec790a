"""Warm transfer: the handoff on the desk, hold tones, the transfer, the no-agent path; the
Twilio TwiML and REST request; the summary; the handoffs API and the desk WebSocket."""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pipecat.frames.frames import TTSAudioRawFrame

from kb import DEMO_KB_DIR
from kb.answers import GroundedAnswerer
from kb.backend import DEMO_TODAY, SqliteBackend
from kb.index import KnowledgeBase
from nlu.assistant import Assistant
from nlu.classifier import IntentClassifier
from nlu.flows import FlowContext
from nlu.summary import handoff_summary
from review.desk_api import desk_router
from review.handoffs import AgentDesk, Handoff, HandoffError
from review.store import CallStore
from telephony.twilio.control import TransferError, call_update_request
from telephony.twilio.twiml import transfer_twiml
from voice.frames import AssistantReplyFrame
from voice.handover import Handover, hold_tones
from voice.session import CallSession

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return IntentClassifier.default()


@pytest.fixture
def store(tmp_path: Path):
    with CallStore(tmp_path / "calls.sqlite3") as store:
        yield store


@pytest.fixture
def assistant(classifier, tmp_path: Path):
    backend = SqliteBackend(tmp_path / "backend.sqlite3")
    answerer = GroundedAnswerer(KnowledgeBase.from_directory(DEMO_KB_DIR, embeddings=False))
    yield Assistant(classifier=classifier, answerer=answerer,
                    context=FlowContext(backend, call_id="CA1", caller_phone="+15550100",
                                        today=DEMO_TODAY))
    backend.close()


class FakeControl:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.transfers: list[tuple[str, str]] = []

    @property
    def can_transfer(self) -> bool:
        return True

    async def transfer(self, target: str, handoff: Any) -> None:
        if self.fail:
            raise TransferError("Twilio refused the transfer: HTTP 401")
        self.transfers.append((target, handoff.id))


def make(store: CallStore, *, control=None, timeout_s: float = 2.0, target: str | None = "+15550199"):
    session = CallSession(store, channel="twilio")
    session.begin("CA1", caller="+15550100")
    session.caller_turn("this is the third time I've called and nobody fixed it", start_ms=0,
                        end_ms=2000, intent="order_status")
    desk = AgentDesk(store)
    pushed: list[Any] = []

    async def push(frame: Any) -> None:
        pushed.append(frame)

    handover = Handover(session=session, desk=desk, control=control, target=target,
                        timeout_s=timeout_s, push=push,
                        summarize=lambda s, a, reason: {"text": f"summary: {reason}"})
    return session, desk, handover, pushed


async def test_an_accepted_handoff_is_transferred_with_the_transcript(store, assistant):
    control = FakeControl()
    session, desk, handover, pushed = make(store, control=control)
    seen: list[dict] = []
    desk.subscribe(seen.append)
    run = asyncio.create_task(handover.run("caller asked for a person", assistant))
    await asyncio.sleep(0.05)
    (waiting,) = desk.queue()
    assert waiting["status"] == "waiting" and waiting["reason"] == "caller asked for a person"
    assert "third time" in waiting["transcript"][0]["text"]
    assert session.on_hold
    session.caller_turn("hello? anyone there?", start_ms=3000, end_ms=4000)  # on hold: forwarded
    desk.accept(waiting["id"], "alice")
    await asyncio.wait_for(run, 2)
    assert control.transfers == [("+15550199", waiting["id"])]
    record = store.get_handoff(waiting["id"])
    assert record["status"] == "connected" and record["accepted_by"] == "alice"
    assert session.final_outcome == "transferred"
    assert any(m["type"] == "turn" and "anyone there" in m["turn"]["text"] for m in seen)
    events = [e["type"] for e in store.get_call("CA1")["events"]]
    assert events[:3] == ["handoff", "handoff_accepted", "transfer"]


async def test_hold_tones_play_while_the_caller_waits(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl(), timeout_s=1.3)
    await handover.run("caller asked for a person", assistant)
    tones = [f for f in pushed if isinstance(f, TTSAudioRawFrame)]
    assert len(tones) >= 1 and tones[0].sample_rate == 8000


async def test_nobody_accepting_offers_a_callback_that_becomes_a_ticket(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl(), timeout_s=0.2)
    await handover.run("caller asked for a person", assistant)
    replies = [f for f in pushed if isinstance(f, AssistantReplyFrame)]
    assert "call you back" in replies[-1].text and not session.on_hold
    assert store.list_handoffs()[0]["status"] == "no_agent"
    reply = assistant.respond("yes please call me back")
    assert reply.end_call and reply.ticket == {"kind": "callback", "phone": "+15550100"}
    handover.ticket(reply.ticket)
    assert store.list_handoffs()[0]["status"] == "callback"


async def test_a_message_can_be_left_instead(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl(), timeout_s=0.1)
    await handover.run("escalation", assistant)
    ask = assistant.respond("I'd rather leave a message")
    assert "leave your message" in ask.text and not ask.end_call
    left = assistant.respond("my headphones never arrived, please ring me after five")
    assert left.ticket == {"kind": "message",
                           "text": "my headphones never arrived, please ring me after five"}
    handover.ticket(left.ticket)
    assert store.list_handoffs()[0]["ticket"]["kind"] == "message"


async def test_a_failed_transfer_tells_the_caller_and_offers_a_callback(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl(fail=True))
    run = asyncio.create_task(handover.run("caller asked for a person", assistant))
    await asyncio.sleep(0.05)
    desk.accept(desk.queue()[0]["id"], "bob")
    await asyncio.wait_for(run, 2)
    assert store.list_handoffs()[0]["status"] == "failed"
    assert "couldn't connect you" in [f for f in pushed if isinstance(f, AssistantReplyFrame)][-1].text
    assert session.final_outcome is None


async def test_without_a_target_the_transfer_fails_clearly(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl(), target=None)
    run = asyncio.create_task(handover.run("r", assistant))
    await asyncio.sleep(0.05)
    desk.accept(desk.queue()[0]["id"], "bob")
    await asyncio.wait_for(run, 2)
    assert "IVA_TRANSFER_TARGET" in store.list_handoffs()[0]["detail"]


async def test_a_caller_who_hangs_up_while_waiting_abandons_the_handoff(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl(), timeout_s=5)
    run = asyncio.create_task(handover.run("r", assistant))
    await asyncio.sleep(0.05)
    run.cancel()
    handover.call_ended()
    assert store.list_handoffs()[0]["status"] == "abandoned"


async def test_a_handoff_cannot_be_accepted_twice(store, assistant):
    session, desk, handover, pushed = make(store, control=FakeControl())
    run = asyncio.create_task(handover.run("r", assistant))
    await asyncio.sleep(0.05)
    handoff_id = desk.queue()[0]["id"]
    desk.accept(handoff_id, "alice")
    with pytest.raises(HandoffError):
        desk.accept(handoff_id, "bob")
    await asyncio.wait_for(run, 2)


def test_hold_tones_are_quiet_and_continuous():
    first, second = hold_tones(8000, 1.0), hold_tones(8000, 1.0, phase_s=1.0)
    samples = np.frombuffer(first + second, dtype=np.int16)
    assert len(samples) == 16000 and 0 < np.abs(samples).max() < 0.2 * 32767


# --- Twilio -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "inner"), [
    ("+15550199", "<Number>+15550199</Number>"),
    ("sip:agent@pbx.example.com", "<Sip>sip:agent@pbx.example.com?X-IVA-Handoff=H1</Sip>"),
    ("client:alice", "<Client>alice</Client>"),
    ("queue:support", "<Queue>support</Queue>"),
])
def test_transfer_twiml_dials_each_kind_of_target(target, inner):
    twiml = transfer_twiml(target, handoff_id="H1")
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Dial')
    assert inner in twiml and twiml.endswith("</Dial></Response>")


@pytest.mark.parametrize("target", ["", "   ", "agent desk", "sip"])
def test_a_bad_transfer_target_is_refused(target):
    with pytest.raises(ValueError):
        transfer_twiml(target)


def test_the_call_update_request_has_basic_auth_and_the_twiml():
    request = call_update_request(account_sid="AC123", auth_token="tok", call_sid="CA9",
                                  twiml="<Response/>", api_base_url="http://127.0.0.1:1/")
    assert request.url == "http://127.0.0.1:1/2010-04-01/Accounts/AC123/Calls/CA9.json"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    assert urllib.parse.parse_qs(request.body.decode()) == {"Twiml": ["<Response/>"]}
    with pytest.raises(TransferError, match="ACCOUNT_SID"):
        call_update_request(account_sid="", auth_token="tok", call_sid="CA9", twiml="x")


# --- summary ------------------------------------------------------------------------------------

def test_the_summary_says_who_what_was_tried_mood_and_why(tmp_path, assistant):
    for said in ("where is my order", "one zero zero one", "that's useless, get me a person"):
        assistant.respond(said)
    backend = assistant.context.backend
    jamie = backend.customer_by_phone("+15550100")
    summary = handoff_summary(reason="caller asked for a person", caller="+15550100",
                              customer=jamie, plus_member=True,
                              context=assistant.handoff_context(),
                              sentiment={"label": "negative", "trend": [0.0, -0.6]})
    assert summary["customer"]["name"] == "Jamie Rivera" and summary["intent"] == "order_status"
    assert summary["slots"] == {"order_number": "ORD-1001"}
    assert summary["caller"] == "*****0100"
    text = summary["text"]
    assert text.startswith("Jamie Rivera (Plus member), identified by caller ID called about an order")
    assert "ORD-1001" in text and "Mood: negative" in text and "caller asked for a person" in text


# --- the API and the WebSocket -----------------------------------------------------------------

def test_handoffs_api_and_desk_socket(store):
    desk = AgentDesk(store)
    app = FastAPI()
    app.include_router(desk_router(desk))
    store.start_call(call_id="CA7", channel="twilio", caller=None, started_at=datetime.now(UTC))
    handoff = Handoff(call_id="CA7", reason="billing dispute", summary={"text": "s"},
                      transcript=[{"speaker": "caller", "text": "charged twice"}])

    async def offer() -> None:
        desk.offer(handoff)

    with TestClient(app) as client, client.websocket_connect("/agent/ws") as ws:
        assert ws.receive_json() == {"type": "snapshot", "agent": "agent", "handoffs": []}
        client.portal.call(offer)  # on the app's event loop, like a call would
        pushed = ws.receive_json()
        assert pushed["type"] == "handoff" and pushed["handoff"]["id"] == handoff.id
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"action": "accept", "id": handoff.id})
        assert ws.receive_json()["handoff"]["status"] == "accepted"
    client = TestClient(app)
    listed = client.get("/api/handoffs").json()["handoffs"]
    assert [h["id"] for h in listed] == [handoff.id]
    one = client.get(f"/api/handoffs/{handoff.id}").json()
    assert set(one) >= {"id", "call_id", "status", "reason", "summary", "transcript",
                        "sentiment", "target"}
    assert client.post(f"/api/handoffs/{handoff.id}/accept").status_code == 409
    assert client.get("/api/handoffs/nope").status_code == 404
    assert client.get("/api/handoffs?status=bogus").status_code == 422
    noted = client.post(f"/api/handoffs/{handoff.id}/notes", json={"text": "refund issued"})
    assert noted.json()["notes"][0]["text"] == "refund issued"
    assert client.post(f"/api/handoffs/{handoff.id}/notes", json={"text": " "}).status_code == 422
    assert "Agent desk" in client.get("/agent").text
