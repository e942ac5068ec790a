"""The agent desk over HTTP: the handoffs API, the live WebSocket and the ``/agent`` page.

- ``GET /api/handoffs[?status=waiting]``, ``GET /api/handoffs/{id}``: the ARCHITECTURE.md shape
  (``id``, ``call_id``, ``status``, ``reason``, ``summary``, ``transcript``, ``sentiment``,
  ``target``, ...).
- ``POST /api/handoffs/{id}/accept`` and ``/decline``; ``POST /api/handoffs/{id}/notes``
  ``{"text": ...}`` (after-call notes, kept with the handoff and so with the call record).
- ``WS /agent/ws``: a snapshot of the open handoffs, then every change as it happens (pushed,
  no polling); the page sends ``{"action": "accept"|"decline"|"note", "id": ..., "text": ...}``.
- ``GET /agent``: the desk page (plain HTML and JavaScript, no build step).

The routes are async on purpose: the desk lives on the event loop with the calls it serves.
Who is acting comes from ``principal`` (a FastAPI dependency returning a name), and for the
WebSocket from ``websocket_principal``; both are the service's authentication.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

from review.handoffs import STATUSES, AgentDesk, HandoffError

__all__ = ["desk_router"]

log = logging.getLogger("iva.desk")

MAX_WS_MESSAGE = 16 * 1024


def _anonymous() -> str:
    return "agent"


def desk_router(desk: AgentDesk, *, principal: Callable[..., Any] = _anonymous,
                page_principal: Callable[..., Any] | None = None,
                websocket_principal: Callable[[WebSocket], Awaitable[str | None]] | None = None,
                ) -> APIRouter:
    router = APIRouter(tags=["agent desk"])
    # Defaults, not Annotated aliases: this module's annotations are strings, and FastAPI
    # resolves them in the module's namespace, where a local alias does not exist.
    who_is = Depends(principal)
    page_who_is = Depends(page_principal or principal)

    def name_of(who: Any) -> str:
        return str(getattr(who, "name", who))

    def found(handoff_id: str) -> dict[str, Any]:
        handoff = desk.get(handoff_id)
        if handoff is None:
            raise HTTPException(status_code=404, detail=f"no handoff {handoff_id}")
        return handoff.to_json()

    @router.get("/api/handoffs")
    async def list_handoffs(status: Annotated[str | None, Query()] = None,
                            limit: Annotated[int, Query(ge=1, le=500)] = 100,
                            _who: Any = who_is) -> dict[str, list[dict[str, Any]]]:
        if status is not None and status not in STATUSES:
            raise HTTPException(status_code=422,
                                detail=f"status must be one of {', '.join(STATUSES)}")
        rows = await asyncio.to_thread(desk.list_handoffs, status=status, limit=limit)
        return {"handoffs": rows}

    @router.get("/api/handoffs/{handoff_id}")
    async def get_handoff(handoff_id: str, _who: Any = who_is) -> dict[str, Any]:
        return found(handoff_id)

    @router.post("/api/handoffs/{handoff_id}/accept")
    async def accept(handoff_id: str, who: Any = who_is) -> dict[str, Any]:
        found(handoff_id)
        try:
            return desk.accept(handoff_id, name_of(who)).to_json()
        except HandoffError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc

    @router.post("/api/handoffs/{handoff_id}/decline")
    async def decline(handoff_id: str, who: Any = who_is) -> dict[str, Any]:
        found(handoff_id)
        try:
            return desk.decline(handoff_id, name_of(who)).to_json()
        except HandoffError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc

    @router.post("/api/handoffs/{handoff_id}/notes")
    async def add_note(handoff_id: str,
                       text: Annotated[str, Body(embed=True, max_length=5000)],
                       who: Any = who_is) -> dict[str, Any]:
        found(handoff_id)
        try:
            return desk.add_note(handoff_id, name_of(who), text).to_json()
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    @router.get("/agent", response_class=HTMLResponse)
    async def agent_page(_who: Any = page_who_is) -> str:
        return resources.files("review").joinpath("static/agent.html").read_text("utf-8")

    @router.websocket("/agent/ws")
    async def agent_socket(websocket: WebSocket) -> None:
        agent = "agent"
        if websocket_principal is not None:
            who = await websocket_principal(websocket)
            if who is None:
                await websocket.close(code=1008, reason="authentication required")
                return
            agent = name_of(who)
        await websocket.accept()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

        def listener(message: dict[str, Any]) -> None:
            try:
                outbox.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("agent %s: desk page too slow; an update was dropped", agent)

        unsubscribe = desk.subscribe(listener)
        sender = asyncio.create_task(_send_all(websocket, outbox))
        try:
            await websocket.send_json({"type": "snapshot", "agent": agent,
                                       "handoffs": await asyncio.to_thread(desk.queue)})
            while True:
                raw = await websocket.receive_text()
                reply = _act(desk, agent, raw)
                if reply is not None:
                    await outbox.put(reply)
        except WebSocketDisconnect:
            pass
        finally:
            unsubscribe()
            sender.cancel()

    return router


async def _send_all(websocket: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        message = await outbox.get()
        try:
            await websocket.send_json(message)
        except Exception:
            return


def _act(desk: AgentDesk, agent: str, raw: str) -> dict[str, Any] | None:
    """One command from a desk page; returns an error message for that page, if any."""
    if len(raw) > MAX_WS_MESSAGE:
        return {"type": "error", "detail": "message too large"}
    try:
        command = json.loads(raw)
        action, handoff_id = command["action"], str(command["id"])
    except (ValueError, KeyError, TypeError):
        return {"type": "error", "detail": "expected {\"action\": ..., \"id\": ...}"}
    try:
        if action == "accept":
            desk.accept(handoff_id, agent)
        elif action == "decline":
            desk.decline(handoff_id, agent)
        elif action == "note":
            desk.add_note(handoff_id, agent, str(command.get("text", "")))
        else:
            return {"type": "error", "detail": f"unknown action {action!r}"}
    except (HandoffError, LookupError, ValueError) as exc:
        return {"type": "error", "id": handoff_id, "detail": str(exc)}
    return None
