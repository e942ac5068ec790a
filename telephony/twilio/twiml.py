"""TwiML for the voice webhook and Twilio's request signatures (with the ``twilio`` package)."""

from __future__ import annotations

from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

STREAM_PATH = "/twilio/stream"


def connect_stream_twiml(stream_url: str, *, parameters: dict[str, str]) -> str:
    """``<Response><Connect><Stream url=…><Parameter …/></Stream></Connect></Response>``."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def stream_url_for(public_url: str, *, forwarded_proto: str | None, host: str) -> str:
    """The WebSocket URL Twilio should open: from the configured public URL when there is one,
    else from the request (``wss`` when it came over https, as a proxy's X-Forwarded-Proto
    says)."""
    if public_url:
        parts = urlsplit(public_url if "://" in public_url else f"https://{public_url}")
        scheme = "ws" if parts.scheme in ("http", "ws") else "wss"
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}"
    proto = (forwarded_proto or "http").split(",")[0].strip().lower()
    scheme = "wss" if proto in ("https", "wss") else "ws"
    return f"{scheme}://{host}{STREAM_PATH}"


def signature_is_valid(auth_token: str, url: str, params: dict[str, str],
                       signature: str | None) -> bool:
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, params, signature))
