"""Benchmark: simulated phone calls against a real server with the real models.

Starts ``iva serve`` on a free loopback port, places calls with ``iva call``'s engine (the
Twilio protocol over a real WebSocket, caller audio at real-time pace, voices from flite and
espeak-ng), then reads each call's record and prints and writes to docs/benchmarks.md:

* voice-to-voice latency p50/p95: caller's end of speech → first answer audio (measured by the
  client on the wire, and by the server as ``latency_ms``), and its parts: end-of-turn wait,
  ASR time per utterance, routing, TTS time to first audio;
* barge-in stop time: caller speech onset → ``clear`` received by the client.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Voices, start_server  # noqa: E402
from voice.caller import CallerTurn, place_call  # noqa: E402

QUESTIONS = [
    "How long do I have to return an item?",
    "How much does express shipping cost?",
    "How much is Brightline Plus?",
    "What is the warranty on electronics?",
    "When are your agents available?",
    "Can I get a refund on a gift card?",
    "How long does standard shipping take?",
    "Can I pause my membership?",
]
BARGE_IN = "Wait, I have a different question about my order."


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


async def run(args: argparse.Namespace) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="iva-bench-"))
    voices = Voices(tmp)
    server = start_server(tmp)
    deadline = time.monotonic() + 180  # a server that has run a while has its TTS cache warm
    while not server.get_json("/healthz").get("speech_cache_warm") and time.monotonic() < deadline:
        await asyncio.sleep(1)
    figures: dict[str, list[float]] = {k: [] for k in (
        "client_latency_ms", "server_latency_ms", "endpoint_ms", "asr_ms", "route_ms",
        "tts_first_ms", "barge_in_stop_ms")}
    try:
        for i in range(args.calls):
            question = QUESTIONS[i % len(QUESTIONS)]
            voice = "flite" if i % 2 == 0 else "espeak"
            wav = voices.say(question, voice=voice)
            result = await place_call(server.ws_url, [CallerTurn(wav=wav)], final_listen_s=4.0)
            for turn in result.turns:
                if turn.latency_s is not None:
                    figures["client_latency_ms"].append(turn.latency_s * 1000)
            record = server.call_record(result.call_sid)
            for t in record.get("turns", []):
                if t["speaker"] == "caller":
                    for key in ("endpoint_ms", "asr_ms", "route_ms"):
                        if t.get(key) is not None:
                            figures[key].append(float(t[key]))
                elif t["speaker"] == "assistant" and t.get("intent") != "greeting":
                    if t.get("latency_ms") is not None:
                        figures["server_latency_ms"].append(float(t["latency_ms"]))
                    if t.get("tts_first_ms") is not None:
                        figures["tts_first_ms"].append(float(t["tts_first_ms"]))
            sys.stderr.write(f"call {i + 1}/{args.calls}: {question!r} → "
                             f"{[round((t.latency_s or 0) * 1000) for t in result.turns]} ms\n")
        for i in range(args.barge_ins):
            question = voices.say(QUESTIONS[0], voice="flite")
            interruption = voices.say(BARGE_IN, voice="espeak")
            result = await place_call(server.ws_url, [
                CallerTurn(wav=question), CallerTurn(wav=interruption, barge_in_after_s=1.0)],
                final_listen_s=4.0)
            barge = result.turns[1]
            if barge.clear_received_at is not None and barge.speech_start_at is not None:
                figures["barge_in_stop_ms"].append(
                    (barge.clear_received_at - barge.speech_start_at) * 1000)
            sys.stderr.write(f"barge-in {i + 1}/{args.barge_ins}: clear "
                             f"{'received' if barge.clear_received_at else 'MISSING'}\n")
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)
    return figures


def report(figures: dict[str, list[float]], args: argparse.Namespace) -> str:
    labels = {
        "client_latency_ms": "voice-to-voice, measured by the caller (end of speech → first answer audio received)",
        "server_latency_ms": "voice-to-voice, measured by the server (`latency_ms`: end of speech → first audio sent)",
        "endpoint_ms": "  of which: end of speech → turn decided and transcribed (pause + turn model + ASR)",
        "asr_ms": "  ASR time per utterance (faster-whisper tiny.en, int8)",
        "route_ms": "  routing and answer composition",
        "tts_first_ms": "  TTS time to first audio (piper, first sentence)",
        "barge_in_stop_ms": "barge-in stop time (caller speech onset → `clear` received)",
    }
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Run of {now}",
        "",
        f"Machine: {machine()}.",
        f"Command: `./scripts/bench --calls {args.calls} --barge-ins {args.barge_ins}`; "
        "callers speak with flite and espeak-ng voices, answers come from the demo KB.",
        "",
        "| measure | n | p50 (ms) | p95 (ms) |",
        "|---|---|---|---|",
    ]
    for key, label in labels.items():
        values = figures[key]
        lines.append(f"| {label} | {len(values)} | {pct(values, 0.5):.0f} | {pct(values, 0.95):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=12, help="question calls to place")
    parser.add_argument("--barge-ins", type=int, default=4, help="barge-in calls to place")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    text = report(figures, args)
    sys.stdout.write(text)
    if not args.no_write:
        path = ROOT / "docs" / "benchmarks.md"
        existing = path.read_text() if path.exists() else ""
        marker = "## Voice-to-voice latency\n"
        if marker not in existing:
            existing = ("# Benchmarks\n\nFigures written by `./scripts/bench` (newest first). "
                        "The machine is shared and noisy: compare runs, not single numbers.\n\n"
                        + marker + "\n")
        head, tail = existing.split(marker, 1)
        path.write_text(head + marker + "\n" + text + "\n" + tail.lstrip("\n"))
        subprocess.run(["git", "-C", str(ROOT), "status", "--short", str(path)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
