"""SIP transfers end to end: the real server and models; a baresip caller asking for a person,
the desk accepting over the handoffs API, and a baresip "human agent" that answers by itself
(warm transfer, the default); a SIPp caller that accepts a REFER (blind transfer)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.baresip import BaresipAgent, BaresipCaller
from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.e2e.test_sip_calls import SCENARIOS, SipServer, call_of, sipp
from tests.e2e.test_twilio_calls import heard, heard_in_windows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AGENT_LINE = "Hello, this is Amy from Brightline, how can I help?"


def sip_server(tmp_path_factory: pytest.TempPathFactory, name: str,
               env: dict[str, str]) -> Iterator[SipServer]:
    if not shutil.which("sipp") or not shutil.which("baresip"):
        pytest.skip("SIPp or baresip is not installed (scripts/test installs them)")
    port = free_port()
    folder = tmp_path_factory.mktemp(name)
    server = start_server(folder, {"IVA_SIP_PORT": str(port), "IVA_HANDOFF_TIMEOUT_S": "20",
                                   **env})
    yield SipServer(server, port, folder)
    stop_server(server, f"e2e-{name}.log")


@pytest.fixture(scope="module")
def agent_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def warm(tmp_path_factory, agent_port) -> Iterator[SipServer]:
    yield from sip_server(tmp_path_factory, "sip-warm-transfer-server", {
        "IVA_TRANSFER_TARGET": f"sip:agent@127.0.0.1:{agent_port}"})


def desk_accepts(server: Server, caller: str, *, within_s: float = 40.0) -> threading.Thread:
    """Play the agent at the desk, in the background: accept the caller's handoff."""
    accepted: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and not accepted:
            waiting = server.get_json("/api/handoffs?status=waiting")
            for handoff in waiting["handoffs"]:  # type: ignore[index]
                if handoff.get("caller") == caller:
                    accepted.append(server.post_json(f"/api/handoffs/{handoff['id']}/accept"))
            time.sleep(0.2)

    thread = threading.Thread(target=accept, daemon=True)
    thread.accepted = accepted  # type: ignore[attr-defined]
    thread.start()
    return thread


def spoken(voices, parts: list[tuple[float, str]], path: Path) -> Path:
    """One WAV with each text said at its time (seconds from the start), silence between."""
    pieces: list[str] = []
    at = 0.0
    for n, (start_s, text) in enumerate(parts):
        wav = voices.say(text)
        piece = path.with_suffix(f".{n}.wav")
        subprocess.run(["sox", str(wav), str(piece), "pad", f"{max(0.0, start_s - at):.2f}", "0"],
                       check=True)
        pieces.append(str(piece))
        at = max(at, start_s) + float(subprocess.run(
            ["soxi", "-D", str(wav)], capture_output=True, text=True, check=True).stdout)
    # and silence after: baresip's file source hangs up at the end of its file
    subprocess.run(["sox", *pieces, "-r", "8000", "-c", "1", str(path), "pad", "0", "60"],
                   check=True)
    return path


def test_a_warm_transfer_briefs_the_agent_then_bridges_and_transcribes_both_sides(
        warm, agent_port, voices, transcriber, tmp_path):
    # The caller asks at 5 s (after the greeting), then, once put through, speaks to the agent;
    # the agent's phone says its line again and again from the moment it answers (what it
    # says over the briefing is not passed on).
    caller_speech = spoken(voices, [(0.0, "I want to speak to a person."),
                                    (35.0, "Hi Amy, my parcel never arrived."),
                                    (45.0, "Hi Amy, my parcel never arrived.")],
                           tmp_path / "caller.wav")
    agent_speech = spoken(voices, [(at, AGENT_LINE) for at in (2.0, 12.0, 22.0, 32.0, 42.0)],
                          tmp_path / "agent.wav")
    agent = BaresipAgent(tmp_path, speech=agent_speech, port=agent_port)
    agent.start(seconds=80)
    desk = desk_accepts(warm.server, "5550201")
    phone = BaresipCaller(tmp_path, question=caller_speech, user="5550201", lead_s=5.0)
    caller_heard = phone.call(f"sip:iva@127.0.0.1:{warm.sip_port}", seconds=62)
    agent_heard = agent.wait(timeout_s=60)
    desk.join(timeout=5)

    assert desk.accepted, "the desk never saw the handoff"  # type: ignore[attr-defined]
    record = call_of(warm.server, "5550201", wait_s=20)
    assert record["outcome"] == "transferred", record["events"]
    kinds = [e["type"] for e in record["events"]]
    assert {"handoff", "handoff_accepted", "transfer"} <= set(kinds), kinds

    after = [t for t in record["turns"] if t.get("after_transfer")]
    agent_turns = " ".join(t["text"] for t in after if t["speaker"] == "agent").lower()
    caller_turns = " ".join(t["text"] for t in after if t["speaker"] == "caller").lower()
    assert "amy" in agent_turns or "help" in agent_turns, record["turns"]
    assert "parcel" in caller_turns or "arrive" in caller_turns, record["turns"]

    # the agent heard the briefing (its first 13 s or so), then the caller; the caller heard
    # the agent. Transcribed in overlapping windows: whisper may stop early in long, sparse audio.
    split = 8000 * 2 * 20
    briefing = heard(transcriber, agent_heard[:split])
    later = heard_in_windows(transcriber, agent_heard[split:])
    assert "transfer" in briefing, briefing
    assert "connecting you" in briefing or "asked for an agent" in briefing, briefing
    assert "parcel" in later or "arrive" in later, later
    caller_side = heard_in_windows(transcriber, caller_heard)
    # "Hello, this is Amy from Brightline": the greeting has neither "amy" nor "this is"
    assert any(w in caller_side for w in ("amy", "this is", "from brightline")), \
        f"the caller never heard the agent: {caller_side}"

    # both legs ended: the caller's BYE answered, ours to the agent answered
    log = warm.server.log_text()
    assert "bridged call over (caller_hung_up)" in log, log[-3000:]
    assert "Traceback" not in log
    agent_log = agent.log_text()
    assert "terminated" in agent_log.lower() or "closed" in agent_log.lower(), agent_log[-2000:]


@pytest.fixture(scope="module")
def blind(tmp_path_factory) -> Iterator[SipServer]:
    yield from sip_server(tmp_path_factory, "sip-blind-transfer-server", {
        "IVA_TRANSFER_TARGET": "sip:agent@127.0.0.1:5099", "IVA_SIP_TRANSFER_MODE": "refer"})


def test_a_blind_transfer_refers_the_caller_and_hangs_up_on_the_final_notify(
        blind, voices, tmp_path):
    question = voices.say("I want to speak to a person.")
    subprocess.run(["sox", str(question), "-r", "8000", "-c", "1", "-e", "u-law",
                    str(tmp_path / "question.wav")], check=True)
    desk = desk_accepts(blind.server, "5550202")
    result = sipp(blind, SCENARIOS / "refer_call.xml", caller="5550202", cwd=tmp_path,
                  timeout_s=60)
    desk.join(timeout=5)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    record = call_of(blind.server, "5550202", wait_s=20)
    assert record["outcome"] == "transferred", record["events"]
    (transfer,) = [e for e in record["events"] if e["type"] == "transfer"]
    assert transfer["target"] == "sip:agent@127.0.0.1:5099", transfer
    log = blind.server.log_text()  # (addresses in the log are redacted)
    assert "REFER to" in log and "the caller's phone reached" in log, log[-3000:]
    assert "Traceback" not in log
