"""Offer/answer over HTTP: what a page may send (``parse_offer``) and which ICE servers both
ends use (``parse_ice_servers``). Pure functions over bytes and strings.

Errors::

    SignallingError          a request the endpoint refuses (HTTP ``status``)
    ├── OfferError           the body is not an offer we can use (400)
    └── OfferTooLarge        the body is over the size limit (413)
    IceServerError           the ICE server setting cannot be read (a ValueError, at start-up)
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_OFFER_BYTES", "IceServer", "IceServerError", "Offer", "OfferError",
           "OfferTooLarge", "SignallingError", "parse_host_addresses", "parse_ice_servers",
           "parse_offer"]

# An audio offer from Chrome or Firefox is 3-8 KB; with video and many codecs, under 20 KB.
MAX_OFFER_BYTES: Final = 64 * 1024
_PC_ID: Final = re.compile(r"[A-Za-z0-9_.:#-]{1,128}")  # pipecat's: "<name>#<n>-<uuid hex>"
_ICE_SCHEMES: Final = ("stun:", "stuns:", "turn:", "turns:")


class SignallingError(Exception):
    """A signalling request the endpoint refuses; ``status`` is the HTTP status to answer."""

    status = 400


class OfferError(SignallingError):
    """The body is not a usable offer: not JSON, no SDP, not ``"type": "offer"``, ..."""


class OfferTooLarge(SignallingError):
    status = 413


class IceServerError(ValueError):
    """``IVA_WEBRTC_ICE_SERVERS`` cannot be read."""


@dataclass(frozen=True, slots=True)
class Offer:
    """A page's session description; ``pc_id`` names an existing connection to renegotiate."""

    sdp: str
    type: str = "offer"
    pc_id: str | None = None


def parse_offer(body: bytes, *, max_bytes: int = MAX_OFFER_BYTES) -> Offer:
    """``{"sdp": "v=0...", "type": "offer", "pc_id": optional}`` → :class:`Offer`."""
    if len(body) > max_bytes:
        raise OfferTooLarge(f"an offer is at most {max_bytes} bytes; this one is {len(body)}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OfferError("the body must be JSON: {\"sdp\": ..., \"type\": \"offer\"}") from exc
    if not isinstance(data, dict):
        raise OfferError("the body must be a JSON object: {\"sdp\": ..., \"type\": \"offer\"}")
    sdp, kind, pc_id = data.get("sdp"), data.get("type"), data.get("pc_id")
    if kind != "offer":
        raise OfferError(f"\"type\" must be \"offer\", not {kind!r}")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise OfferError("\"sdp\" must be a session description starting with v=0")
    lines = sdp.replace("\r\n", "\n").split("\n")
    if not any(line.startswith("m=audio ") for line in lines):
        raise OfferError("the offer has no audio (m=audio): a call needs the microphone")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise OfferError("the offer has no DTLS fingerprint (a=fingerprint)")
    if pc_id is not None and (not isinstance(pc_id, str) or not _PC_ID.fullmatch(pc_id)):
        raise OfferError("\"pc_id\" must be the id an earlier answer returned")
    return Offer(sdp=sdp, type=kind, pc_id=pc_id)


@dataclass(frozen=True, slots=True)
class IceServer:
    """One STUN or TURN server, as both aiortc and the browser's RTCPeerConnection take it."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def to_browser(self) -> dict[str, Any]:
        """For ``new RTCPeerConnection({iceServers: [...]})``."""
        entry: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            entry["username"] = self.username
        if self.credential is not None:
            entry["credential"] = self.credential
        return entry


def parse_ice_servers(value: str | None) -> list[IceServer]:
    """The ICE servers of ``IVA_WEBRTC_ICE_SERVERS``: empty (none: same host or LAN), a
    comma-separated list of ``stun:``/``turn:`` URLs, or JSON as the browser takes it
    (``[{"urls": "turn:turn.example.com:3478", "username": "u", "credential": "p"}]``, or a
    list of URL strings)."""
    text = (value or "").strip()
    if not text:
        return []
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise IceServerError(f"IVA_WEBRTC_ICE_SERVERS is not valid JSON: {exc}") from exc
        items = data if isinstance(data, list) else [data]
    else:
        items = [part.strip() for part in text.split(",") if part.strip()]
    return [_ice_server(item) for item in items]


def _ice_server(item: object) -> IceServer:
    if isinstance(item, str):
        item = {"urls": item}
    if not isinstance(item, dict):
        raise IceServerError(f"an ICE server is a URL or an object with \"urls\", not {item!r}")
    unknown = set(item) - {"urls", "url", "username", "credential"}
    if unknown:
        raise IceServerError(f"unknown ICE server field(s): {', '.join(sorted(unknown))}")
    raw = item.get("urls", item.get("url"))
    urls = [raw] if isinstance(raw, str) else raw
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise IceServerError("an ICE server needs \"urls\": a URL or a list of URLs")
    username, credential = item.get("username"), item.get("credential")
    for name, field in (("username", username), ("credential", credential)):
        if field is not None and not isinstance(field, str):
            raise IceServerError(f"an ICE server's {name} must be a string")
    parsed = tuple(_ice_url(u) for u in urls)
    if any(u.startswith(("turn:", "turns:")) for u in parsed) and (not username or not credential):
        raise IceServerError(f"TURN server {parsed[0]} needs a username and a credential")
    return IceServer(urls=parsed, username=username, credential=credential)


def _ice_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(_ICE_SCHEMES) or len(url) <= len("turn:") or " " in url:
        raise IceServerError(f"an ICE server URL starts with stun:, stuns:, turn: or turns:, "
                             f"not {url!r}")
    return url


def parse_host_addresses(value: str | None) -> list[str]:
    """``IVA_WEBRTC_HOST_ADDRESSES``: comma-separated IP addresses (empty: none given)."""
    addresses = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            addresses.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise IceServerError(f"IVA_WEBRTC_HOST_ADDRESSES: {item!r} is not an IP address") \
                from None
    return addresses
