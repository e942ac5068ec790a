"""The ``iva`` command.

    iva serve [--host 127.0.0.1] [--port 8080]   serve calls, APIs and pages on one port
    iva call QUESTION.wav [dtmf:1001#] ...        dial a running server like Twilio would

Settings come from ``IVA_*`` environment variables or a TOML file named by ``IVA_CONFIG``;
command-line options override them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

log = logging.getLogger("iva")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiortc's ICE library logs every connectivity check of a browser call at INFO.
    if level.upper() != "DEBUG":
        logging.getLogger("aioice").setLevel(logging.WARNING)
    # No card number, SSN, email or phone number reaches a log line, whoever logs it.
    from review.redaction import RedactingFilter

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    # pipecat logs through loguru at DEBUG by default: keep its warnings and errors only.
    try:
        from loguru import logger as loguru_logger

        loguru_logger.remove()
        loguru_logger.add(sys.stderr, level="WARNING" if level.upper() != "DEBUG" else "DEBUG",
                          filter=_pipecat_noise_filter)
    except ImportError:  # pragma: no cover
        pass


# pipecat's WebSocket transport reports, at ERROR, a peer that closed first and the protocol
# errors our bridge has already logged in one clear line with the call id.
_PIPECAT_NOISE = ("exception while closing the websocket", "TwilioStreamError",
                  "AsteriskStreamError", "exception sending data: WebSocketDisconnect",
                  # browser calls carry audio only
                  "No video transceiver is available", "No screen video transceiver is available")


def _pipecat_noise_filter(record: dict) -> bool:  # type: ignore[type-arg]
    return not any(noise in record["message"] for noise in _PIPECAT_NOISE)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from review.users import UserStoreError
    from voice.app import create_app
    from voice.asr import ModelNotFoundError
    from voice.settings import load_settings

    overrides = {k: v for k, v in {"host": args.host, "port": args.port,
                                    "log_level": args.log_level}.items() if v is not None}
    try:
        settings = load_settings(**overrides)
    except (ValidationError, FileNotFoundError) as exc:
        sys.stderr.write(f"iva serve: bad configuration:\n{exc}\n")
        return 2
    _configure_logging(settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        app = create_app(settings)
    except (ModelNotFoundError, ValueError, UserStoreError) as exc:
        sys.stderr.write(f"iva serve: {exc}\n")
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                ws_max_size=16 * 1024 * 1024, lifespan="on")
    return 0


def _call(args: argparse.Namespace) -> int:
    from voice.caller import main_call

    _configure_logging(args.log_level or "WARNING")
    return asyncio.run(main_call(args))


def _kb_reload(args: argparse.Namespace) -> int:
    """Ask a running server to re-read its knowledge base."""
    import json
    import os
    import urllib.error
    import urllib.request

    url = args.url.rstrip("/") + "/api/kb/reload"
    request = urllib.request.Request(url, method="POST", data=b"")
    token = os.environ.get("IVA_API_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        sys.stderr.write(f"iva kb reload: the server refused ({exc.code}): {detail}\n")
        return 1
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        sys.stderr.write(f"iva kb reload: cannot reach {url}: {exc}\n")
        return 1
    sys.stdout.write(f"knowledge base reloaded: {body.get('passages')} passages\n")
    return 0


def _eval_nlu(args: argparse.Namespace) -> int:
    from nlu.report import main_eval_nlu

    _configure_logging(args.log_level or "WARNING")
    return main_eval_nlu(args)


def _eval_escalation(args: argparse.Namespace) -> int:
    from nlu.escalation import main_eval_escalation

    return main_eval_escalation(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iva",
        description="Voice contact-center assistant: answers phone and browser calls offline.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="serve calls (Twilio, ...), the APIs and the pages on one port",
        description="Load the speech models, then serve on HOST:PORT. Point a Twilio number's "
        "voice webhook at https://YOUR-HOST/twilio/voice. GET /healthz answers once calls "
        "can be taken. Settings: IVA_* environment variables or IVA_CONFIG=file.toml.",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1, IVA_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080, IVA_PORT)")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(func=_serve)

    from voice.caller import add_call_arguments

    call = sub.add_parser(
        "call", help="dial a running server over the Twilio protocol with WAV files",
        description="Play WAV files (any rate) as successive caller turns, each after the "
        "assistant has finished speaking, and print what happened and how fast. A turn "
        "'dtmf:1001#' types digits on the keypad instead.",
    )
    add_call_arguments(call)
    call.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    call.set_defaults(func=_call)

    kb = sub.add_parser("kb", help="knowledge-base commands (reload)",
                        description="Manage the knowledge base of a running server.")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, metavar="KB_COMMAND")
    reload = kb_sub.add_parser(
        "reload", help="make a running server re-read its KB documents",
        description="POST /api/kb/reload on the server: the Markdown files of IVA_KB_DIR are "
        "read again and calls that start afterwards use them. A KB that fails to load is "
        "refused and the old one stays in service. Sends IVA_API_TOKEN as a bearer token.",
    )
    reload.add_argument("--url", default="http://127.0.0.1:8080",
                        help="the server's base URL (default http://127.0.0.1:8080)")
    reload.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    reload.set_defaults(func=_kb_reload)

    evaluate = sub.add_parser("eval", help="measure accuracy (nlu)",
                              description="Measure the assistant's accuracy on held-out data.")
    eval_sub = evaluate.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    nlu = eval_sub.add_parser(
        "nlu", help="intent, slot and answer accuracy, as text and as speech through the ASR",
        description="Evaluate on the held-out sets (nlu/data/intents_eval.jsonl, "
        "nlu/data/slots_eval.jsonl, kb/data/answers_eval.jsonl): intent accuracy, slot "
        "accuracy, answer correctness and invented answers on out-of-scope questions; with "
        "--speech, the same utterances spoken by another voice (espeak-ng or flite) and "
        "transcribed by the service's recogniser.",
    )
    nlu.add_argument("--speech", action="store_true",
                     help="also run every utterance through TTS (another voice) and the ASR")
    nlu.add_argument("--voice", choices=["espeak", "flite"], default="espeak",
                     help="the caller voice for --speech (default espeak)")
    nlu.add_argument("--limit", type=int, default=None,
                     help="only the first N utterances of each set (quick checks)")
    nlu.add_argument("--json", dest="json_path", default=None,
                     help="also write the figures as JSON to this file")
    nlu.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    nlu.set_defaults(func=_eval_nlu)
    escalation = eval_sub.add_parser(
        "escalation", help="precision and recall of the escalation predictor (held-out snippets)",
        description="Replay labelled dialogue snippets (default nlu/data/escalation_eval.jsonl, "
        "never used in fitting) through the escalation predictor turn by turn, as it runs on "
        "live calls, and report precision, recall, callers who asked for a person and were "
        "transferred, and calm callers transferred.",
        add_help=False,
    )
    escalation.add_argument("rest", nargs=argparse.REMAINDER)
    escalation.set_defaults(func=_eval_escalation)

    from nlu.retrain import add_nlu_commands
    from review.db_cli import add_db_commands
    from review.users_cli import add_users_commands

    add_users_commands(sub)
    add_db_commands(sub)
    add_nlu_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
