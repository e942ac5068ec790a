"""Call control for Twilio calls: hang up by closing the stream, transfer through the REST API.

A transfer updates the live call (``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``
with ``Twiml=<Response><Dial>…``, HTTP basic auth with the account SID and auth token). Twilio
then leaves the ``<Connect><Stream>`` (our media stream stops) and dials the target.
``api_base_url`` is Twilio's API by default; tests point it at a local stand-in.

:func:`call_update_request` is pure (it builds the request); :class:`TwilioCallControl` sends
it from a worker thread so the event loop that carries call audio never waits on the network.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telephony.twilio.twiml import transfer_twiml

__all__ = ["DEFAULT_API_BASE_URL", "CallUpdateRequest", "TransferError", "TwilioCallControl",
           "call_update_request"]

log = logging.getLogger("iva.twilio")

DEFAULT_API_BASE_URL = "https://api.twilio.com"


class TransferError(Exception):
    """The transfer could not be made (not configured, or Twilio refused or was unreachable)."""


@dataclass(frozen=True, slots=True)
class CallUpdateRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def call_update_request(*, account_sid: str, auth_token: str, call_sid: str, twiml: str,
                        api_base_url: str = DEFAULT_API_BASE_URL) -> CallUpdateRequest:
    """The REST request that replaces a live call's TwiML."""
    if not account_sid or not auth_token:
        raise TransferError("Twilio transfers need IVA_TWILIO_ACCOUNT_SID and IVA_TWILIO_AUTH_TOKEN")
    base = api_base_url.rstrip("/")
    path = (f"/2010-04-01/Accounts/{urllib.parse.quote(account_sid, safe='')}"
            f"/Calls/{urllib.parse.quote(call_sid, safe='')}.json")
    credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
    return CallUpdateRequest(
        url=base + path,
        headers={"Authorization": f"Basic {credentials}",
                 "Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json"},
        body=urllib.parse.urlencode({"Twiml": twiml}).encode(),
    )


def _send(request: CallUpdateRequest, timeout_s: float) -> dict[str, Any]:
    import json

    http = urllib.request.Request(request.url, data=request.body, headers=request.headers,
                                  method="POST")
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise TransferError(f"Twilio refused the transfer: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise TransferError(f"cannot reach the Twilio API: {exc}") from exc
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


class TwilioCallControl:
    """``telephony.control.CallControl`` for one Twilio Media Streams call."""

    def __init__(self, *, call_sid: Callable[[], str | None], account_sid: str | None,
                 auth_token: str | None, api_base_url: str = DEFAULT_API_BASE_URL,
                 end_stream: Callable[[], Awaitable[None]], timeout_s: float = 10.0,
                 monitor_url: str | None = None) -> None:
        self._call_sid = call_sid
        self._account_sid = account_sid or ""
        self._auth_token = auth_token or ""
        self._api_base_url = api_base_url
        self._end_stream = end_stream
        self._timeout_s = timeout_s
        self._monitor_url = monitor_url

    @property
    def can_transfer(self) -> bool:
        return bool(self._account_sid and self._auth_token)

    async def hang_up(self, *, reason: str) -> None:
        """Close the media stream; the TwiML after ``<Connect>`` is empty, so the call ends."""
        log.info("call %s: hanging up (%s)", self._call_sid() or "-", reason)
        await self._end_stream()

    async def transfer(self, target: str, handoff: Any) -> None:
        """Hand the call to ``target`` (number, ``sip:``, ``client:`` or ``queue:``)."""
        call_sid = self._call_sid()
        if not call_sid:
            raise TransferError("the call has not started")
        twiml = transfer_twiml(target, handoff_id=getattr(handoff, "id", None),
                               monitor_url=self._monitor_url)
        request = call_update_request(account_sid=self._account_sid, auth_token=self._auth_token,
                                      call_sid=call_sid, twiml=twiml,
                                      api_base_url=self._api_base_url)
        reply = await asyncio.to_thread(_send, request, self._timeout_s)
        log.info("call %s: transferred to %s (Twilio status %s)", call_sid, target,
                 reply.get("status", "-"))
