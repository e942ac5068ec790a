"""Direct SIP calls end to end: the real server and models, Debian's SIPp and baresip as the
callers, caller speech from flite, the assistant's answers checked in the call record and,
for baresip, transcribed back from what the phone recorded."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.baresip import BaresipCaller
from tests.e2e.conftest import Server, free_port, start_server, stop_server
from tests.e2e.test_twilio_calls import heard
from tests.sip_peer import fuzz_bases, mutants

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCENARIOS = Path(__file__).parent / "sipp"
RING_S = 0.3  # long enough for SIPp to CANCEL after the 180


@dataclass
class SipServer:
    server: Server
    sip_port: int
    folder: Path


@pytest.fixture(scope="module")
def sip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipServer]:
    if not shutil.which("sipp"):
        pytest.skip("SIPp is not installed (scripts/test installs sip-tester)")
    port = free_port()
    folder = tmp_path_factory.mktemp("sip-server")
    server = start_server(folder, {"IVA_SIP_PORT": str(port), "IVA_SIP_RING_S": str(RING_S)})
    yield SipServer(server, port, folder)
    stop_server(server, "e2e-sip-server.log")


def sipp(sip: SipServer, scenario: Path, *, caller: str, cwd: Path,
         timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run one SIPp call; its error log is in the result's stderr when it fails."""
    result = subprocess.run(
        ["sipp", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1", "-p", "0", "-mp",
         str(free_port()), "-key", "caller", caller, "-timeout", f"{int(timeout_s)}s", "-nostdin",
         "-trace_err", f"127.0.0.1:{sip.sip_port}"],
        cwd=cwd, capture_output=True, text=True, timeout=timeout_s + 10)
    if result.returncode != 0:
        errors = "\n".join(p.read_text(errors="replace") for p in cwd.glob("*errors.log"))
        result.stderr += errors
    return result


def call_of(server: Server, caller: str, *, wait_s: float = 10.0) -> dict:
    """The ended call record of ``caller``'s SIP call."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        listing = server.get_json("/api/calls?channel=sip&limit=50")
        calls = listing["calls"] if isinstance(listing, dict) else listing  # type: ignore[index]
        mine = [c for c in calls if c.get("caller") == caller]
        if mine:
            record = server.call_record(mine[0]["id"], wait_s=max(deadline - time.monotonic(), 1))
            if record.get("ended_at"):
                return record
        time.sleep(0.2)
    raise AssertionError(f"no ended SIP call from {caller}")


def fact(pattern: str, text: str) -> bool:
    return re.search(pattern, text) is not None


def test_a_sipp_caller_asks_a_question_hears_the_answer_and_presses_keys(sip, voices, tmp_path):
    question = voices.say("How long do I have to return an item?")
    subprocess.run(["sox", str(question), "-r", "8000", "-c", "1", "-e", "u-law",
                    str(tmp_path / "question.wav")], check=True)
    scenario = (SCENARIOS / "question_call.xml").read_text()
    scenario = (scenario.replace("%GREETING_MS%", "5000").replace("%ANSWER_MS%", "14000")
                .replace("%DIGITS%", "12#"))
    (tmp_path / "call.xml").write_text(scenario)

    result = sipp(sip, tmp_path / "call.xml", caller="5550101", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    record = call_of(sip.server, "5550101")
    assert record["channel"] == "sip" and record["outcome"] == "completed"
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert caller_turns and "return" in caller_turns[0]["text"].lower(), caller_turns
    assert caller_turns[0]["intent"] == "returns_refunds", caller_turns
    assert len(answers) >= 2 and fact(r"\b30\b|thirty", answers[1]["text"].lower()), answers
    assert answers[1]["latency_ms"] is not None and 0 < answers[1]["latency_ms"] < 5000
    digits = [e["digit"] for e in record["events"] if e["type"] == "dtmf"]
    assert digits == ["1", "2", "#"], record["events"]


def test_a_re_invite_puts_the_call_on_hold_and_takes_it_off(sip, tmp_path):
    result = sipp(sip, SCENARIOS / "hold_call.xml", caller="5550102", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = call_of(sip.server, "5550102")
    kinds = [e["type"] for e in record["events"]]
    assert "hold" in kinds and "resumed" in kinds
    assert kinds.index("hold") < kinds.index("resumed")
    assert record["outcome"] == "completed"


def test_a_call_cancelled_while_ringing_gets_487_and_leaves_no_call(sip, tmp_path):
    result = sipp(sip, SCENARIOS / "cancel_call.xml", caller="5550103", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    listing = sip.server.get_json("/api/calls?channel=sip&limit=50")
    calls = listing["calls"] if isinstance(listing, dict) else listing  # type: ignore[index]
    assert not [c for c in calls if c.get("caller") == "5550103"]


def test_a_thousand_mutated_messages_leave_the_server_answering_calls(sip, tmp_path):
    peer_port = free_port()
    bad = mutants(fuzz_bases(sip.sip_port, peer_port), 1200, seed=3261)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", peer_port))
        sock.settimeout(0.0)
        for i, datagram in enumerate(bad):
            sock.sendto(datagram, ("127.0.0.1", sip.sip_port))
            if i % 50 == 49:
                time.sleep(0.02)  # a hostile peer, not a flood: the kernel buffer keeps up
        answered = 0
        time.sleep(1.0)
        try:
            while True:
                sock.recv(65_535)
                answered += 1
        except BlockingIOError:
            pass
    assert answered > 100, "most mutants should still get a response (400, 481, 488, ...)"

    # and a plain call still works: SIPp's built-in UAC, INVITE/200/ACK/BYE
    result = subprocess.run(
        ["sipp", "-sn", "uac", "-m", "1", "-d", "1500", "-i", "127.0.0.1", "-p", "0",
         "-s", "5550104", "-timeout", "30s", "-nostdin", f"127.0.0.1:{sip.sip_port}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=40)
    assert result.returncode == 0, result.stdout[-2000:]
    assert sip.server.process.poll() is None
    assert "Traceback" not in sip.server.log_text()


def test_a_baresip_caller_hears_the_spoken_answer(sip, voices, transcriber, tmp_path):
    if not shutil.which("baresip"):
        pytest.skip("baresip is not installed (scripts/test installs it)")
    question = voices.say("How much does express shipping cost?")
    phone = BaresipCaller(tmp_path, question=question, user="5550105")
    heard_pcm = phone.call(f"sip:iva@127.0.0.1:{sip.sip_port}", seconds=22)
    said = heard(transcriber, heard_pcm)
    assert fact(r"12\.99|twelve", said), said

    record = call_of(sip.server, "5550105")
    assert record["channel"] == "sip" and record["outcome"] == "completed"
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert len(answers) >= 2 and fact(r"12\.99|twelve", answers[1]["text"].lower()), answers
