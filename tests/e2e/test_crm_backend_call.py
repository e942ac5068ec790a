"""A call served from an HTTP CRM/OMS: the real server with ``IVA_BACKEND_URL`` pointing at a
local CRM that speaks docs/backend-api.md, a Twilio-protocol caller pausing the membership
with speech and the keypad, and what the CRM was sent checked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.test_twilio_calls import heard
from tests.fake_crm import FakeCrm, serve_crm
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JAMIE_PHONE, JAMIE = "+15550100", "CUST-1"
TOKEN = "crm-s3cret"


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCrm]:
    with serve_crm(tmp_path_factory.mktemp("crm") / "crm.sqlite3") as fake:
        yield fake


@pytest.fixture(scope="module")
def crm_server(crm: FakeCrm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("crm-server")
    server = start_server(tmp, {"IVA_BACKEND_URL": crm.base_url, "IVA_BACKEND_TOKEN": TOKEN})
    yield server
    stop_server(server, "e2e-crm-server.log")


async def test_a_membership_pause_is_done_in_the_crm_with_its_audit_entries(
        crm_server, crm, voices, transcriber):
    result = await place_call(crm_server.ws_url, [
        CallerTurn(wav=voices.say("I'd like to pause my membership for two months.")),
        CallerTurn(dtmf="43004#"),  # the postcode on file, typed
        CallerTurn(wav=voices.say("Yes, please.")),
    ], caller=JAMIE_PHONE, final_listen_s=20.0, quiet_s=2.0)

    verify, confirm, _done = (heard(transcriber, t.answer.audio_pcm8k) for t in result.turns)
    assert "verify your account" in verify and re.search(r"\bpost", verify), verify
    assert "pause" in confirm and re.search(r"two months|2 months", confirm), confirm

    record = crm_server.call_record(result.call_sid)
    caller = [t for t in record["turns"] if t["speaker"] == "caller"]
    assert caller[0]["intent"] == "membership_pause"
    assert caller[-1]["facts"]["outcome"] == "paused", caller[-1]
    final = [t for t in record["turns"] if t["speaker"] == "assistant"][-1]["text"]
    assert "paused" in final, final

    # What the CRM was sent: the caller looked up by phone, the pause, the audit entries,
    # every request with the bearer token.
    sent = crm.paths()
    assert "GET /api/v1/customers" in sent, sent
    pauses = [r for r in crm.received
              if (r.method, r.path) == ("POST", f"/api/v1/customers/{JAMIE}/membership/pause")]
    assert [p.body for p in pauses] == [{"months": 2, "call_id": result.call_sid}]
    assert {r.headers.get("Authorization") for r in crm.received} == {f"Bearer {TOKEN}"}
    assert crm.backing.membership(JAMIE).status == "paused"
    actions = [e.action for e in crm.backing.audit_log(result.call_sid)]
    assert "identity.verified" in actions and "membership.paused" in actions, actions

    # The service's own audit API reads the trail back from the CRM.
    audit = crm_server.get_json(f"/api/calls/{result.call_sid}/audit")
    assert "membership.paused" in [e["action"] for e in audit["entries"]]  # type: ignore[index]
