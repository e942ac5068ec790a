"""Warm transfer of Asterisk calls through ARI end to end: the server configured with ARI, a
local stand-in for Asterisk's REST interface that checks method, path, query and basic auth,
callers on both bridges asking for a person, and the agent accepting over the handoffs API."""

from __future__ import annotations

import base64
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from telephony.asterisk import chan_websocket as cw
from tests.e2e.asterisk_lines import AudioSocketLine, WebSocketLine
from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.e2e.test_transfer import agent_accepts
from tests.e2e.test_twilio_calls import heard

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARI_USER, ARI_PASSWORD = "iva", "e2e-ari-password"
TARGET = "agents,6000,1"  # context,extension,priority: ARI "continue"


class AriStandIn:
    """The part of ARI a transfer uses; answers 204 like Asterisk, 401 to wrong credentials."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        ari = self
        expected = "Basic " + base64.b64encode(f"{ARI_USER}:{ARI_PASSWORD}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                ari.requests.append({"method": self.command, "path": url.path,
                                     "query": dict(urllib.parse.parse_qsl(url.query)),
                                     "auth_ok": self.headers.get("Authorization") == expected})
                self.send_response(204 if ari.requests[-1]["auth_ok"] else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_channel(self, channel_id: str) -> list[dict]:
        quoted = urllib.parse.quote(channel_id, safe="")
        return [r for r in self.requests if r["path"].startswith(f"/ari/channels/{quoted}")]


@pytest.fixture(scope="module")
def ari() -> Iterator[AriStandIn]:
    stand_in = AriStandIn()
    yield stand_in
    stand_in.server.shutdown()


@pytest.fixture(scope="module")
def ari_server(tmp_path_factory, ari) -> Iterator[tuple[Server, int]]:
    port = free_port()
    server = start_server(tmp_path_factory.mktemp("asterisk-ari-server"), {
        "IVA_AUDIOSOCKET_PORT": str(port), "IVA_ARI_URL": ari.url, "IVA_ARI_USER": ARI_USER,
        "IVA_ARI_PASSWORD": ARI_PASSWORD, "IVA_TRANSFER_TARGET": TARGET,
        "IVA_HANDOFF_TIMEOUT_S": "8",
    })
    yield server, port
    stop_server(server, "e2e-asterisk-ari-server.log")


async def ask_for_a_person(line, voices, server: Server) -> tuple[bytes, dict]:
    """Greeting, the request, the agent's acceptance; then Asterisk's side waits for the
    service to let go of the call (it has been moved). Returns what the caller heard after
    asking (the announcement, then hold tones) and the accepted handoff."""
    await line.answer(after=0.0)
    asked = await line.say(voices.say("I want to talk to a person."))
    accepted = await agent_accepts(server, line.call_id)
    answer = await line.answer(after=asked, timeout_s=5.0)
    assert await line.wait_closed(timeout_s=15.0), "the service kept the transferred call"
    return answer, accepted


async def test_a_websocket_caller_asking_for_a_person_is_continued_in_the_dialplan(
        ari_server, ari, voices, transcriber):
    server, _ = ari_server
    caller_channel = "pbx1-1715000000.42"  # the caller's channel, from the URI's v() params
    url = server.base_url.replace("http://", "ws://") + (
        f"/asterisk/media?caller=%2B15550100&channel_id={urllib.parse.quote(caller_channel)}")
    line = await WebSocketLine.dial(url)
    try:
        answer, accepted = await ask_for_a_person(line, voices, server)
    finally:
        await line.hang_up()

    assert "connect you" in heard(transcriber, answer), "the caller was not told"
    assert accepted["status"] == "accepted" and accepted["reason"] == "caller asked for an agent"
    (request,) = ari.for_channel(caller_channel)
    assert (request["method"], request["path"]) == (
        "POST", f"/ari/channels/{caller_channel}/continue")
    assert request["query"] == {"context": "agents", "extension": "6000", "priority": "1"}
    assert request["auth_ok"]
    assert line.received(cw.Command.HANGUP), "our media leg was not hung up after the transfer"

    record = server.call_record(line.call_id)
    assert record["outcome"] == "transferred" and record["caller"] == "+15550100"
    assert {"handoff", "handoff_accepted", "transfer"} <= {e["type"] for e in record["events"]}


async def test_an_audiosocket_caller_is_moved_by_the_channel_its_uuid_names(ari_server, ari,
                                                                            voices):
    server, port = ari_server
    line = await AudioSocketLine.dial(port)
    try:
        await ask_for_a_person(line, voices, server)
    finally:
        await line.hang_up()

    (request,) = ari.for_channel(line.call_id)
    assert request["path"] == f"/ari/channels/{line.call_id}/continue" and request["auth_ok"]
    assert line.hung_up_by_server  # the hang-up packet after the move
    assert server.call_record(line.call_id)["outcome"] == "transferred"
