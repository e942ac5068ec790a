"""Benchmark: simulated phone calls against a real server with the real models.

Starts ``iva serve`` on a free loopback port, places calls over one bridge or each in turn
(``--bridge``), caller audio at real-time pace with voices from flite and espeak-ng, then reads
each call's record and prints and writes to docs/benchmarks.md:

* voice-to-voice latency p50/p95: caller's end of speech → first answer audio (measured by the
  client on the wire, and by the server as ``latency_ms``), and its parts: end-of-turn wait,
  ASR time per utterance, routing, TTS time to first audio;
* barge-in stop time: caller speech onset → the answer stops (Twilio's ``clear``,
  chan_websocket's ``FLUSH_MEDIA``, else the last of its audio received).

Bridges (``--bridge``, default ``twilio``; ``all`` runs each with ``--calls`` calls):

  twilio       Twilio Media Streams over WebSocket, μ-law 8 kHz (``iva call``'s engine)
  audiosocket  Asterisk AudioSocket over TCP, slin 8 kHz
  websocket    Asterisk chan_websocket (WS /asterisk/media), μ-law 8 kHz
  sip          SIP over UDP (INVITE/ACK/BYE) and RTP, PCMU
  webrtc       WebRTC from aiortc (POST /call/offer), Opus; the answer timed by its first
               RTP packet with sound, before aiortc's receive buffer (80-180 ms more)

The callers other than Twilio's are in scripts/bench_bridges.py. With one bridge the table has
a row per measure; with ``all``, a column per bridge.
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
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_bridges import (  # noqa: E402
    BRIDGES,
    Figures,
    Target,
    add_record_figures,
    new_figures,
    run_bridge,
)
from tests.e2e.conftest import Voices, free_port, start_server  # noqa: E402
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

BRIDGE_NAMES = {
    "twilio": "Twilio", "audiosocket": "AudioSocket", "websocket": "chan_websocket",
    "sip": "SIP/RTP", "webrtc": "WebRTC",
}
BRIDGE_DESCRIPTIONS = {
    "twilio": "Twilio Media Streams (WebSocket, μ-law 8 kHz)",
    "audiosocket": "Asterisk AudioSocket (TCP, slin 8 kHz)",
    "websocket": "Asterisk chan_websocket (WebSocket, μ-law 8 kHz)",
    "sip": "SIP over UDP with RTP (PCMU)",
    "webrtc": "WebRTC from an aiortc client (Opus 48 kHz; answers timed by their first RTP "
              "packet with sound)",
}
LABELS = {
    "client_latency_ms": "voice-to-voice, measured by the caller (end of speech → first answer audio received)",
    "server_latency_ms": "voice-to-voice, measured by the server (`latency_ms`: end of speech → first audio sent)",
    "endpoint_ms": "  of which: end of speech → turn decided and transcribed (pause + turn model + ASR)",
    "asr_ms": "  ASR time per utterance (faster-whisper {model}, int8, beam {beam})",
    "route_ms": "  routing and answer composition (intent from {hypotheses} ASR hypotheses at most)",
    "tts_first_ms": "  TTS time to first audio (piper, first sentence)",
    "barge_in_stop_ms": "barge-in stop time (caller speech onset → `clear` received)",
}
BARGE_IN_LABELS = {
    "twilio": LABELS["barge_in_stop_ms"],
    "websocket": "barge-in stop time (caller speech onset → `FLUSH_MEDIA` received)",
    "all": "barge-in stop time (caller speech onset → Twilio `clear` / chan_websocket "
           "`FLUSH_MEDIA` received; other bridges: the answer's last audio received)",
}
OTHER_BARGE_IN_LABEL = "barge-in stop time (caller speech onset → the answer's last audio received)"


def recogniser() -> dict[str, str]:
    """The recogniser the benchmarked server runs, from the same IVA_* settings it reads."""
    from voice.settings import load_settings

    settings = load_settings()
    return {"model": settings.asr_model or "tiny.en", "beam": str(settings.asr_beam_size),
            "hypotheses": str(min(settings.asr_hypotheses, settings.asr_beam_size))}


def labels_for(bridge: str) -> dict[str, str]:
    """The row labels of a table: the recogniser named, the barge-in row for ``bridge``."""
    labels = {key: label.format(**recogniser()) for key, label in LABELS.items()}
    return {**labels, "barge_in_stop_ms": BARGE_IN_LABELS.get(bridge, OTHER_BARGE_IN_LABEL)}


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


def bridges_of(choice: str) -> list[str]:
    return list(BRIDGES) if choice == "all" else [choice]


async def twilio_calls(ws_url: str, calls: list[Path], barge_ins: list[tuple[Path, Path]],
                       record_of: Callable[[str], dict]) -> Figures:
    """The question and barge-in calls over Twilio Media Streams (``voice.caller``)."""
    figures = new_figures()
    for i, wav in enumerate(calls):
        result = await place_call(ws_url, [CallerTurn(wav=wav)], final_listen_s=4.0)
        for turn in result.turns:
            if turn.latency_s is not None:
                figures["client_latency_ms"].append(turn.latency_s * 1000)
        add_record_figures(record_of(result.call_sid), figures)
        sys.stderr.write(f"call {i + 1}/{len(calls)}: {QUESTIONS[i % len(QUESTIONS)]!r} → "
                         f"{[round((t.latency_s or 0) * 1000) for t in result.turns]} ms\n")
    for i, (question, interruption) in enumerate(barge_ins):
        result = await place_call(ws_url, [
            CallerTurn(wav=question), CallerTurn(wav=interruption, barge_in_after_s=1.0)],
            final_listen_s=4.0)
        barge = result.turns[1]
        if barge.clear_received_at is not None and barge.speech_start_at is not None:
            figures["barge_in_stop_ms"].append(
                (barge.clear_received_at - barge.speech_start_at) * 1000)
        sys.stderr.write(f"barge-in {i + 1}/{len(barge_ins)}: clear "
                         f"{'received' if barge.clear_received_at else 'MISSING'}\n")
    return figures


async def run(args: argparse.Namespace) -> tuple[dict[str, Figures], dict[str, list[str]]]:
    """Every bridge's figures, and the calls that failed on each."""
    bridges = bridges_of(args.bridge)
    tmp = Path(tempfile.mkdtemp(prefix="iva-bench-"))
    voices = Voices(tmp)
    ports = {}
    if "audiosocket" in bridges:
        ports["IVA_AUDIOSOCKET_PORT"] = str(free_port())
    if "sip" in bridges:
        ports["IVA_SIP_PORT"] = str(free_port())
    server = start_server(tmp, ports)
    target = Target(server, audiosocket_port=int(ports.get("IVA_AUDIOSOCKET_PORT", 0)),
                    sip_port=int(ports.get("IVA_SIP_PORT", 0)))
    deadline = time.monotonic() + 180  # a server that has run a while has its TTS cache warm
    while not server.get_json("/healthz").get("speech_cache_warm") and time.monotonic() < deadline:
        await asyncio.sleep(1)
    # The same callers on every bridge: question i in voice i, the same barge-in call.
    calls = [voices.say(QUESTIONS[i % len(QUESTIONS)], voice="flite" if i % 2 == 0 else "espeak")
             for i in range(args.calls)]
    barge_ins = [(voices.say(QUESTIONS[0], voice="flite"), voices.say(BARGE_IN, voice="espeak"))
                 for _ in range(args.barge_ins)]
    # One call first, not measured: a fresh server's first turns pay for warming up (the
    # recogniser's and the encoder's first runs), which would land on the first bridge only.
    await place_call(server.ws_url, [CallerTurn(wav=calls[0])], final_listen_s=2.0)
    results: dict[str, Figures] = {}
    failures: dict[str, list[str]] = {}
    try:
        for bridge in bridges:
            if bridge == "twilio":
                results[bridge] = await twilio_calls(server.ws_url, calls, barge_ins,
                                                     server.call_record)
                failures[bridge] = []
            else:
                results[bridge], failures[bridge] = await run_bridge(bridge, target, calls,
                                                                     barge_ins)
    finally:
        server.process.terminate()
        server.process.wait(timeout=20)
    return results, failures


def command_of(args: argparse.Namespace) -> str:
    bridge = f" --bridge {args.bridge}" if args.bridge != "twilio" else ""
    return f"./scripts/bench{bridge} --calls {args.calls} --barge-ins {args.barge_ins}"


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{pct(values, 0.5):.0f} / {pct(values, 0.95):.0f} ({len(values)})"


def table(results: dict[str, Figures]) -> list[str]:
    """One bridge: a row per measure (n, p50, p95). Several: a column per bridge."""
    if len(results) == 1:
        [(bridge, figures)] = results.items()
        labels = labels_for(bridge)
        lines = ["| measure | n | p50 (ms) | p95 (ms) |", "|---|---|---|---|"]
        for key, label in labels.items():
            values = figures[key]
            lines.append(f"| {label} | {len(values)} | {pct(values, 0.5):.0f} | "
                         f"{pct(values, 0.95):.0f} |")
        return lines
    labels = labels_for("all")
    lines = ["| measure | " + " | ".join(BRIDGE_NAMES[b] for b in results) + " |",
             "|---|" + "---|" * len(results)]
    for key, label in labels.items():
        lines.append(f"| {label} | " + " | ".join(_cell(f[key]) for f in results.values()) + " |")
    return lines


def report(results: dict[str, Figures], args: argparse.Namespace, *,
           failures: dict[str, list[str]] | None = None, when: str | None = None,
           host: str | None = None) -> str:
    now = when or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### Run of {now}",
        "",
        f"Machine: {host or machine()}.",
        f"Command: `{command_of(args)}`; "
        "callers speak with flite and espeak-ng voices, answers come from the demo KB.",
    ]
    if list(results) != ["twilio"]:
        lines.append("Bridges: " + "; ".join(f"{BRIDGE_NAMES[b]}: {BRIDGE_DESCRIPTIONS[b]}"
                                             for b in results) + ".")
    if len(results) > 1:
        lines.append("Each cell: p50 / p95 in ms (n).")
    failed = {b: f for b, f in (failures or {}).items() if f}
    if failed:
        lines.append("Failed calls (left out of the figures): " + "; ".join(
            f"{BRIDGE_NAMES[b]} {len(f)} ({f[0]})" for b, f in failed.items()) + ".")
    lines += ["", *table(results)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bridge", choices=[*BRIDGES, "all"], default="twilio",
                        help="the way in to call over; all: each in turn (default: twilio)")
    parser.add_argument("--calls", type=int, default=12,
                        help="question calls to place (per bridge)")
    parser.add_argument("--barge-ins", type=int, default=4,
                        help="barge-in calls to place (per bridge)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    results, failures = asyncio.run(run(args))
    text = report(results, args, failures=failures)
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
