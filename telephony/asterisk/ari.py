"""Call control for Asterisk calls through ARI, the Asterisk REST Interface.

Hang-up: ``DELETE /ari/channels/{id}?reason=normal``. Transfer, by the form of the target:

- ``context,extension[,priority]``: ``POST /ari/channels/{id}/continue?context=…&extension=…
  &priority=…`` (a priority that is not a number is sent as a ``label``);
- a bare extension (``6001``, ``+15550199``): the same, in ``IVA_ARI_CONTEXT`` (or, without one,
  the channel's current context) at priority 1;
- an endpoint (``PJSIP/agent``, ``SIP/…``, or a ``sip:`` URI, sent as ``PJSIP/sip:…``):
  ``POST /ari/channels/{id}/redirect?endpoint=…``.

All with HTTP basic auth (ari.conf's user and password). ``continue`` and ``redirect`` act only
on a channel that is in a Stasis application (ARI answers 409 otherwise): see
``docs/asterisk.md`` for the dialplan that makes transfers possible. Hang-up works on any
channel.

:func:`parse_target`, :func:`hangup_request` and :func:`transfer_request` are pure;
:class:`AriCallControl` sends their requests from a worker thread (as the Twilio bridge does)
so the event loop that carries call audio never waits on the network.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AriCallControl", "AriConfig", "AriError", "AriRequest", "DialplanTarget",
           "EndpointTarget", "hangup_request", "parse_target", "transfer_request"]

log = logging.getLogger("iva.asterisk")

_WORD = re.compile(r"[^\s,/:]+\Z")  # a context, extension or label: no spaces, commas, slashes
_TECH = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")

# What ARI's documented error statuses mean for these requests.
_STATUS_MEANINGS = {
    400: "bad parameters", 401: "the ARI user or password is wrong", 403: "the ARI user may not "
    "do this (read_only?)", 404: "the channel (or endpoint) does not exist",
    409: "the channel is not in a Stasis application, so ARI cannot move it",
    412: "the channel is in a state that cannot be moved", 422: "the endpoint is not of the "
    "channel's technology",
}


class AriError(Exception):
    """ARI refused the request or could not be reached, or the target is not understood."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class AriConfig:
    """Where ARI is and who we are to it (``IVA_ARI_*``)."""

    url: str  # http://127.0.0.1:8088, or with the /ari prefix
    user: str
    password: str = field(repr=False)
    context: str | None = None  # for bare-extension targets
    timeout_s: float = 5.0

    @property
    def base(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/ari") else base + "/ari"


@dataclass(frozen=True, slots=True)
class DialplanTarget:
    extension: str
    context: str | None = None
    priority: int | None = 1
    label: str | None = None


@dataclass(frozen=True, slots=True)
class EndpointTarget:
    endpoint: str


@dataclass(frozen=True, slots=True)
class AriRequest:
    method: str
    url: str
    headers: dict[str, str]


def parse_target(target: str, *, default_context: str | None = None
                 ) -> DialplanTarget | EndpointTarget:
    """What a transfer target (``IVA_TRANSFER_TARGET``) means on Asterisk."""
    text = target.strip()
    if not text:
        raise AriError("empty transfer target")
    if text.lower().startswith(("sip:", "sips:")) and not any(c.isspace() for c in text):
        return EndpointTarget("PJSIP/" + text)
    if "/" in text:
        tech, _, resource = text.partition("/")
        if not _TECH.match(tech) or not resource or any(c.isspace() for c in resource):
            raise AriError(f"{target!r:.60} is not an endpoint (TECH/resource, e.g. PJSIP/6001)")
        return EndpointTarget(text)
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (2, 3) or not all(_WORD.match(p) for p in parts):
            raise AriError(f"{target!r:.60} is not context,extension[,priority]")
        context, extension = parts[0], parts[1]
        if len(parts) == 2 or parts[2].isdigit():
            return DialplanTarget(extension, context, int(parts[2]) if len(parts) == 3 else 1)
        return DialplanTarget(extension, context, None, parts[2])
    if not _WORD.match(text):
        raise AriError(f"{target!r:.60} is not an Asterisk transfer target: use an extension, "
                       "context,extension[,priority], or an endpoint such as PJSIP/6001")
    return DialplanTarget(text, default_context)


def _auth(config: AriConfig) -> dict[str, str]:
    token = base64.b64encode(f"{config.user}:{config.password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}", "Accept": "application/json"}


def _channel_url(config: AriConfig, channel_id: str, action: str = "") -> str:
    if not channel_id:
        raise AriError("no channel id")
    return f"{config.base}/channels/{urllib.parse.quote(channel_id, safe='')}{action}"


def hangup_request(config: AriConfig, channel_id: str, *, reason: str = "normal") -> AriRequest:
    """``DELETE /ari/channels/{id}``: hang the channel up."""
    query = urllib.parse.urlencode({"reason": reason})
    return AriRequest("DELETE", f"{_channel_url(config, channel_id)}?{query}", _auth(config))


def transfer_request(config: AriConfig, channel_id: str, target: str) -> AriRequest:
    """``continue`` into the dialplan, or ``redirect`` to an endpoint (see the module doc)."""
    where = parse_target(target, default_context=config.context)
    if isinstance(where, EndpointTarget):
        query = {"endpoint": where.endpoint}
        action = "/redirect"
    else:
        query = {k: str(v) for k, v in (("context", where.context), ("extension", where.extension),
                                        ("priority", where.priority), ("label", where.label))
                 if v is not None}
        action = "/continue"
    url = f"{_channel_url(config, channel_id, action)}?{urllib.parse.urlencode(query)}"
    return AriRequest("POST", url, _auth(config))


def send(request: AriRequest, timeout_s: float) -> dict[str, Any]:
    """Send ``request`` (blocking); the reply's JSON object, if any. Raises ``AriError``."""
    http = urllib.request.Request(request.url, headers=request.headers, method=request.method,
                                  data=b"" if request.method == "POST" else None)
    path = urllib.parse.urlsplit(request.url).path
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = _message(exc.read()[:500])
        meaning = _STATUS_MEANINGS.get(exc.code, exc.reason)
        raise AriError(f"ARI refused {request.method} {path}: HTTP {exc.code}, {meaning}"
                       + (f" ({detail})" if detail else ""), status=exc.code) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AriError(f"cannot reach ARI for {request.method} {path}: {reason}") from exc
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _message(body: bytes) -> str:
    """ARI's error bodies are ``{"message": "..."}``; anything else is quoted briefly."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    return ""


class AriCallControl:
    """``telephony.control.CallControl`` for one Asterisk call.

    ``channel_id`` gives the ARI channel to act on once the call is known; ``end_stream``
    ends our media leg (the bridge's in-band hang-up); ``call_id`` names the call in logs.
    Without ARI (``config`` None) a hang-up is in-band only and transfers are not offered.
    """

    def __init__(self, *, config: AriConfig | None, channel_id: Callable[[], str | None],
                 end_stream: Callable[[], Awaitable[None]],
                 call_id: Callable[[], str | None] = lambda: None) -> None:
        self._config = config
        self._channel_id = channel_id
        self._end_stream = end_stream
        self._call_id = call_id

    @property
    def can_transfer(self) -> bool:
        return self._config is not None

    async def hang_up(self, *, reason: str) -> None:
        """Hang the channel up through ARI (when configured), then end the media leg."""
        channel = self._channel_id()
        call = self._call_id() or "-"
        log.info("call %s: hanging up (%s; ARI channel %s)", call, reason, channel or "-")
        if self._config is not None and channel:
            try:
                await asyncio.to_thread(send, hangup_request(self._config, channel),
                                        self._config.timeout_s)
            except AriError as exc:  # the media leg still ends below
                log.warning("call %s: ARI hang-up failed: %s", call, exc)
        await self._end_stream()

    async def transfer(self, target: str, handoff: Any) -> None:
        """Move the caller to ``target``; then our media leg ends (the call left us)."""
        if self._config is None:
            raise AriError("transfers need ARI: set IVA_ARI_URL, IVA_ARI_USER and IVA_ARI_PASSWORD")
        channel = self._channel_id()
        if not channel:
            raise AriError("no ARI channel id is known for this call")
        request = transfer_request(self._config, channel, target)
        await asyncio.to_thread(send, request, self._config.timeout_s)
        log.info("call %s: transferred to %s (ARI channel %s, handoff %s)", self._call_id() or "-",
                 target, channel, getattr(handoff, "id", "-"))
        await self._end_stream()
