"""TwiML for the voice webhook, the stream URL it points at, and Twilio's request signatures.

Built on the ``twilio`` package (``VoiceResponse`` and ``RequestValidator``) rather than by
hand, so escaping and the signature algorithm are Twilio's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Dial, Start, VoiceResponse

STREAM_PATH = "/twilio/stream"
MONITOR_PATH = "/twilio/monitor"


def connect_stream_twiml(stream_url: str, *, parameters: Mapping[str, str]) -> str:
    """``<Response><Connect><Stream url=…><Parameter name=… value=…/>…</Stream></Connect>
    </Response>``: a bidirectional Media Stream; ``parameters`` arrive in the ``start``
    message as ``customParameters``."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def stream_url_for(base_url_or_host: str, *, forwarded_proto: str | None, host: str) -> str:
    """The WebSocket URL Twilio should open, ending in ``/twilio/stream``.

    - ``base_url_or_host`` with a scheme (the configured public URL, e.g.
      ``https://iva.example.com/prefix``): its host and path; ``wss`` for https/wss, else ``ws``.
    - a bare host (``iva.example.com``): ``wss`` (Twilio reaches public hosts over TLS).
    - empty: the request's ``host``, with ``wss`` when the request came over https as the
      proxy's ``X-Forwarded-Proto`` says (its first value), ``ws`` otherwise.
    """
    if base_url_or_host:
        if "://" not in base_url_or_host:
            return f"wss://{base_url_or_host.strip('/')}{STREAM_PATH}"
        parts = urlsplit(base_url_or_host)
        scheme = "wss" if parts.scheme.lower() in ("https", "wss") else "ws"
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}"
    proto = (forwarded_proto or "").split(",")[0].strip().lower()
    scheme = "wss" if proto in ("https", "wss") else "ws"
    return f"{scheme}://{host}{STREAM_PATH}"


def signature_is_valid(auth_token: str, url: str, params: Mapping[str, str],
                       signature: str | None) -> bool:
    """Whether ``X-Twilio-Signature`` matches the request Twilio made to ``url`` with the form
    ``params`` (``url`` must be the public URL Twilio used, query string included)."""
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def transfer_twiml(target: str, *, caller_id: str | None = None, handoff_id: str | None = None,
                   timeout_s: int = 30, monitor_url: str | None = None) -> str:
    """``<Response><Dial>…</Dial></Response>`` to hand the live call to a human.

    ``target`` is a phone number (``+15550199``), a SIP URI (``sip:agent@pbx.example.com``),
    a Twilio Client identity (``client:alice``) or a queue (``queue:support``). For SIP the
    handoff id travels as an ``X-IVA-Handoff`` header so the agent's desk can show the summary.
    With ``monitor_url``, a listen-only stream of both tracks starts first
    (``<Start><Stream track="both_tracks">``) so the transcript goes on after pick-up.
    """
    target = target.strip()
    if not target:
        raise ValueError("the transfer target is empty")
    response = VoiceResponse()
    if monitor_url:
        start = Start()
        stream = start.stream(url=monitor_url, track="both_tracks")
        if handoff_id:
            stream.parameter(name="handoff", value=handoff_id)
        response.append(start)
    dial = Dial(caller_id=caller_id, timeout=timeout_s, answer_on_bridge=True)
    kind, _, rest = target.partition(":")
    if kind.lower() in ("sip", "sips") and rest:
        uri = target
        if handoff_id:
            uri += ("&" if "?" in uri else "?") + f"X-IVA-Handoff={handoff_id}"
        dial.sip(uri)
    elif kind.lower() == "client" and rest:
        dial.client(rest)
    elif kind.lower() == "queue" and rest:
        dial.queue(rest)
    elif _PHONE.fullmatch(target):
        dial.number(target)
    else:
        raise ValueError(f"transfer target {target!r} is not a phone number, sip:, client: or "
                         "queue: target")
    response.append(dial)
    return str(response)


_PHONE = re.compile(r"\+?[0-9][0-9 ()\-.]{2,20}")
