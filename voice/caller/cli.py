"""`iva call`'s command line: turns from arguments, a readable or JSON report."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from telephony.audio import read_wav, write_wav
from voice.caller.call import place_call
from voice.caller.model import (
    AssistantSpeech,
    CallError,
    CallerTurn,
    CallResult,
)

log = logging.getLogger("iva.caller")


# ------------------------------------------------------------------------------ CLI
def add_call_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("turns", nargs="*", metavar="TURN",
                        help="a WAV file to speak, or dtmf:DIGITS to type (e.g. dtmf:1001#)")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/twilio/stream",
                        help="the server's Media Streams URL (default %(default)s)")
    parser.add_argument("--from", dest="caller", default="+15550100", metavar="NUMBER",
                        help="caller number, sent as the From parameter (default %(default)s)")
    parser.add_argument("--barge-in-after", type=float, metavar="SECONDS",
                        help="speak each WAV turn after the first this long after the answer "
                        "began, over it, instead of waiting for it to end")
    parser.add_argument("--record", type=Path, metavar="PATH.wav",
                        help="write what the assistant said, as played (8 kHz WAV)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                        help="how long to wait for an answer to begin (default %(default)s)")
    parser.add_argument("--final-listen", type=float, default=6.0, metavar="SECONDS",
                        help="after the last turn, listen this long at most (default %(default)s)")
    parser.add_argument("--abrupt", action="store_true",
                        help="hang up by dropping the connection (no stop message)")


def _turns_from(raw: list[str], barge_in_after: float | None) -> list[CallerTurn]:
    turns: list[CallerTurn] = []
    for item in raw:
        if item.startswith("dtmf:"):
            turns.append(CallerTurn(dtmf=item.removeprefix("dtmf:")))
            continue
        if not Path(item).is_file():
            raise ValueError(f"{item}: no such WAV file")
        read_wav(item)  # fail on a bad file before dialling
        spoken_before = any(t.wav is not None for t in turns)
        turns.append(CallerTurn(wav=Path(item),
                                barge_in_after_s=barge_in_after if spoken_before else None))
    return turns


def _summary(result: CallResult) -> dict[str, object]:
    def ms(seconds: float | None) -> int | None:
        return None if seconds is None else round(seconds * 1000)

    def speech(s: AssistantSpeech | None) -> dict[str, object] | None:
        return None if s is None else {"seconds": round(s.seconds, 2), "marks": s.marks,
                                       "cleared": s.cleared}

    return {"call_sid": result.call_sid, "greeting": speech(result.greeting),
            "closed_by_server": result.closed_by_server,
            "turns": [{"turn": n, "sent": t.turn.describe(), "answer": speech(t.answer),
                       "latency_ms": ms(t.latency_s), "clear": t.clear_received_at is not None}
                      for n, t in enumerate(result.turns, 1)]}


async def main_call(args: argparse.Namespace) -> int:
    """``iva call``: 0 when every turn was answered, 1 otherwise, 2 when the call failed."""
    try:
        turns = _turns_from(args.turns, args.barge_in_after)
    except ValueError as exc:  # includes AudioFormatError
        sys.stderr.write(f"iva call: {exc}\n")
        return 2
    try:
        result = await place_call(args.url, turns, caller=args.caller,
                                  answer_timeout_s=args.timeout,
                                  final_listen_s=args.final_listen, abrupt=args.abrupt)
    except CallError as exc:
        sys.stderr.write(f"iva call: {exc}\n")
        return 2
    if args.record:
        try:
            write_wav(args.record, result.assistant_audio_pcm8k, 8000)
        except OSError as exc:
            sys.stderr.write(f"iva call: cannot write {args.record}: {exc.strerror or exc}\n")
            return 2
    answered = len(result.turns) == len(turns) and all(t.answer for t in result.turns)
    out = sys.stdout
    if args.json:
        out.write(json.dumps(_summary(result), indent=2) + "\n")
        return 0 if answered else 1
    greeting = result.greeting
    out.write(f"call {result.call_sid}: greeting "
              f"{f'{greeting.seconds:.1f} s' if greeting else 'not heard'}\n")
    for n, t in enumerate(result.turns, 1):
        answer = f"answer {t.answer.seconds:.1f} s" if t.answer else "NO ANSWER"
        latency = f"{t.latency_s * 1000:.0f} ms" if t.latency_s is not None else "-"
        clear = "yes" if t.clear_received_at is not None else "no"
        out.write(f"turn {n}: sent {t.turn.describe()} -> {answer}, latency {latency}, "
                  f"clear {clear}\n")
    if len(result.turns) < len(turns):
        out.write(f"the server hung up before turn {len(result.turns) + 1}\n")
    if args.record:
        out.write(f"assistant audio written to {args.record}\n")
    return 0 if answered else 1

