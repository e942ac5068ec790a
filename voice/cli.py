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
                  "exception sending data: WebSocketDisconnect")


def _pipecat_noise_filter(record: dict) -> bool:  # type: ignore[type-arg]
    return not any(noise in record["message"] for noise in _PIPECAT_NOISE)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

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
    except ModelNotFoundError as exc:
        sys.stderr.write(f"iva serve: {exc}\n")
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                ws_max_size=16 * 1024 * 1024, lifespan="on")
    return 0


def _call(args: argparse.Namespace) -> int:
    from voice.caller import main_call

    _configure_logging(args.log_level or "WARNING")
    return asyncio.run(main_call(args))


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
