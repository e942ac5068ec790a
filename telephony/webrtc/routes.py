"""Browser calling over HTTP: the caller's page and offer (public), the agent's offer (signed in).

- ``GET /call``: the page (``static/call.html``: a call button, captions, hang-up; no build
  step). ``GET /call/static/{name}``: its script and style, and ``embed.js`` for a company's
  own site (docs/webrtc.md).
- ``GET /call/config``: the ICE servers the page should use (``IVA_WEBRTC_ICE_SERVERS``).
- ``POST /call/offer`` ``{"sdp", "type": "offer", "pc_id"?}`` → ``{"sdp", "type", "pc_id",
  "call_id"}``. Public, because customers are not signed in, and so bounded: the body is at
  most ``MAX_OFFER_BYTES`` (413), a malformed offer is a 400 saying why, and at most
  ``max_calls`` browser calls run at once (503 with ``Retry-After``). With ``pc_id`` it
  renegotiates that call's connection.
- ``POST /api/handoffs/{id}/webrtc/offer``: the agent who accepted the handoff of a browser
  call answers it in their own browser (``telephony.webrtc.agent``); 409 when the handoff is
  not theirs to answer or the call is not a browser call in progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pipecat.transports.smallwebrtc.connection import IceServer as RTCIceServer
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

from review.handoffs import AgentDesk
from telephony.webrtc.call import BrowserCall, BrowserCallRunner, CallEnded
from telephony.webrtc.signalling import (
    MAX_OFFER_BYTES,
    IceServer,
    Offer,
    OfferTooLarge,
    SignallingError,
    parse_offer,
)

__all__ = ["BrowserCalls", "webrtc_router"]

log = logging.getLogger("iva.webrtc")

_ASSETS = {"call.js": "text/javascript; charset=utf-8", "call.css": "text/css; charset=utf-8",
           "agent-phone.js": "text/javascript; charset=utf-8",
           "embed.js": "text/javascript; charset=utf-8"}
# The page may be framed by a company's own site (docs/webrtc.md), so no frame-ancestors.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self' blob:;"
                               " object-src 'none'; base-uri 'none'; form-action 'none'",
}
_ANSWER_TIMEOUT_S = 15.0


def _static(name: str) -> str:
    return resources.files("telephony.webrtc").joinpath(f"static/{name}").read_text("utf-8")


class BrowserCalls:
    """The browser calls in progress, by call id and by peer connection id; at most
    ``max_calls`` at once."""

    def __init__(self, *, max_calls: int) -> None:
        self.max_calls = max_calls
        self._calls: dict[str, BrowserCall] = {}
        self._reserved = 0  # offers being answered, counted against the limit

    def __len__(self) -> int:
        return len(self._calls)

    def reserve(self) -> bool:
        if len(self._calls) + self._reserved >= self.max_calls:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        self._reserved -= 1

    def add(self, call: BrowserCall) -> None:
        self._calls[call.call_id] = call

    def remove(self, call: BrowserCall) -> None:
        self._calls.pop(call.call_id, None)

    def get(self, call_id: str) -> BrowserCall | None:
        return self._calls.get(call_id)

    def by_pc_id(self, pc_id: str) -> BrowserCall | None:
        return next((c for c in self._calls.values() if c.pc_id == pc_id), None)

    async def close(self) -> None:
        """End every call at shutdown, each with its record closed (as a restart would)."""
        calls = list(self._calls.values())
        for call in calls:
            await call.end(outcome="interrupted_by_restart", at_once=True)
        if calls:
            await asyncio.wait([asyncio.ensure_future(c.wait_finished()) for c in calls],
                               timeout=10)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise OfferTooLarge(f"an offer is at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise OfferTooLarge(f"an offer is at most {limit} bytes")
    return bytes(body)


def webrtc_router(runner: BrowserCallRunner, *, desk: AgentDesk, ice_servers: list[IceServer],
                  max_calls: int, agent_answer_timeout_s: float,
                  agent: Callable[..., Any] | None = None,
                  calls: BrowserCalls | None = None) -> APIRouter:
    """``agent`` is the authentication dependency of the agent's endpoint (it returns who is
    signed in, with ``name`` and ``is_supervisor``); without it the endpoint is not served.
    ``calls`` keeps the calls in progress (a new, empty one by default)."""
    calls = calls if calls is not None else BrowserCalls(max_calls=max_calls)
    rtc_ice = [RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
               for s in ice_servers]
    browser_ice = [s.to_browser() for s in ice_servers]

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await calls.close()

    router = APIRouter(tags=["browser calls"], lifespan=lifespan)

    async def answer(offer: Offer, connection: SmallWebRTCConnection) -> None:
        try:
            await asyncio.wait_for(connection.initialize(sdp=offer.sdp, type=offer.type),
                                   _ANSWER_TIMEOUT_S)
        except Exception as exc:  # aiortc's error for an SDP it cannot use, whatever it is
            await _close_quietly(connection)
            log.info("browser offer refused: %s: %s", type(exc).__name__, exc)
            raise SignallingError(f"the offer could not be answered: {exc}"[:300]) from exc

    @router.get("/call", response_class=HTMLResponse)
    async def call_page() -> HTMLResponse:
        return HTMLResponse(_static("call.html"), headers=_PAGE_HEADERS)

    @router.get("/call/static/{name}")
    async def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise HTTPException(status_code=404, detail="no such file")
        return Response(_static(name), media_type=_ASSETS[name],
                        headers={"Cache-Control": "max-age=300"})

    @router.get("/call/config")
    async def config() -> dict[str, Any]:
        return {"iceServers": browser_ice, "available": len(calls) < calls.max_calls}

    @router.post("/call/offer")
    async def caller_offer(request: Request) -> JSONResponse:
        try:
            offer = parse_offer(await _read_body(request, MAX_OFFER_BYTES))
        except SignallingError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        if offer.pc_id is not None:
            call = calls.by_pc_id(offer.pc_id)
            if call is None:
                return JSONResponse({"detail": f"no call with pc_id {offer.pc_id}"},
                                    status_code=404)
            await call.connection.renegotiate(sdp=offer.sdp, type=offer.type)
            return JSONResponse({**call.connection.get_answer(), "call_id": call.call_id})
        if not calls.reserve():
            log.warning("browser call refused: %d calls already (IVA_WEBRTC_MAX_CALLS)",
                        len(calls))
            return JSONResponse({"detail": "All our lines are busy. Please try again in a "
                                           "minute."}, status_code=503,
                                headers={"Retry-After": "30"})
        try:
            connection = SmallWebRTCConnection(ice_servers=rtc_ice)
            try:
                await answer(offer, connection)
            except SignallingError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=exc.status)
            try:
                call = BrowserCall(connection, runner=runner,
                                   agent_answer_timeout_s=agent_answer_timeout_s,
                                   on_finished=calls.remove)
            except BaseException:
                await _close_quietly(connection)
                raise
            calls.add(call)
        finally:
            calls.release()
        call.start()
        log.info("browser call %s: answered (%d in progress)", call.call_id, len(calls))
        return JSONResponse({**connection.get_answer(), "call_id": call.call_id})

    if agent is None:
        return router
    signed_in_agent = Depends(agent)

    @router.post("/api/handoffs/{handoff_id}/webrtc/offer")
    async def agent_offer(handoff_id: str, request: Request,
                          who: Any = signed_in_agent) -> JSONResponse:
        name = str(getattr(who, "name", who))
        handoff = desk.get(handoff_id)
        if handoff is None:
            raise HTTPException(status_code=404, detail=f"no handoff {handoff_id}")
        if handoff.status != "accepted":
            raise HTTPException(status_code=409, detail=f"handoff {handoff_id} is "
                                f"{handoff.status}; only an accepted handoff can be answered")
        if handoff.accepted_by != name and not getattr(who, "is_supervisor", False):
            raise HTTPException(status_code=403, detail=f"{handoff.accepted_by} accepted "
                                "this handoff; only they can answer it")
        call = calls.get(handoff.call_id)
        if call is None:
            raise HTTPException(status_code=409, detail="this call is not a browser call in "
                                "progress; answer it on the phone line instead")
        try:
            offer = parse_offer(await _read_body(request, MAX_OFFER_BYTES))
        except SignallingError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        if offer.pc_id is not None:
            raise HTTPException(status_code=400, detail="an agent's offer starts a new "
                                "connection; pc_id is not accepted here")
        connection = SmallWebRTCConnection(ice_servers=rtc_ice)
        try:
            await answer(offer, connection)
        except SignallingError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status)
        try:
            await call.attach_agent(connection, agent=name, speech=runner)
        except CallEnded as exc:
            await _close_quietly(connection)
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        log.info("call %s: %s answering in the browser", call.call_id, name)
        return JSONResponse({**connection.get_answer(), "call_id": call.call_id})

    return router


async def _close_quietly(connection: SmallWebRTCConnection) -> None:
    try:
        await connection.disconnect()
    except Exception:
        log.debug("closing a refused connection failed", exc_info=True)
