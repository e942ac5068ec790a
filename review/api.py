"""HTTP API over the call records: ``GET /api/calls`` and ``GET /api/calls/{call_id}``.

The shapes are the ones ARCHITECTURE.md promises (``CallStore.get_call`` builds them). The
routes are plain ``def`` functions on purpose: FastAPI runs them in its thread pool, so a slow
disk never stalls the event loop that carries live call audio, and the store's lock makes
sharing it between threads safe. No authentication yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from review.records import StoreError
from review.repository import CallRepository

__all__ = ["MAX_PAGE_SIZE", "calls_router"]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500


def _everyone() -> None:
    return None


def calls_router(store: CallRepository, *,
                 principal: Callable[..., Any] = _everyone) -> APIRouter:
    """The ``/api/calls`` routes, reading from ``store``.

    ``principal`` is the authentication dependency: a supervisor (or a program with the API
    token) sees every call; an agent sees only the calls whose handoff they accepted.
    """
    router = APIRouter(tags=["calls"])
    who_is = Depends(principal)

    def visible_to(who: Any) -> set[str] | None:
        """The call ids an agent may see; None for everything."""
        if who is None or getattr(who, "is_supervisor", True):
            return None
        name = getattr(who, "name", None)
        return {h["call_id"] for h in store.list_handoffs(limit=500)
                if h.get("accepted_by") == name}

    @router.get("/api/calls")
    def list_calls(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        since: Annotated[datetime | None, Query(description="started at or after (ISO)")] = None,
        until: Annotated[datetime | None, Query(description="started before (ISO)")] = None,
        outcome: Annotated[str | None, Query(max_length=40)] = None,
        channel: Annotated[str | None, Query(max_length=40)] = None,
        intent: Annotated[str | None, Query(max_length=60)] = None,
        transferred: bool | None = None,
        sentiment_below: Annotated[float | None, Query(ge=-1.0, le=1.0)] = None,
        latency_above_ms: Annotated[int | None, Query(ge=0)] = None,
        q: Annotated[str | None, Query(max_length=200, description="words said in the call")] = None,
        who: Any = who_is,
    ) -> dict[str, Any]:
        """Call summaries, newest first, filtered; ``total`` counts every match."""
        filters = {"since": _aware(since), "until": _aware(until), "outcome": outcome or None,
                   "channel": channel or None, "intent": intent or None,
                   "transferred": transferred, "sentiment_below": sentiment_below,
                   "latency_above_ms": latency_above_ms, "text": q or None}
        try:
            allowed = visible_to(who)
            if allowed is None:
                return {"calls": store.search_calls(**filters, limit=limit, offset=offset),
                        "total": store.count_calls(**filters)}
            calls = [c for c in store.search_calls(**filters, limit=MAX_PAGE_SIZE)
                     if c["id"] in allowed]
            return {"calls": calls[offset:offset + limit], "total": len(calls)}
        except StoreError as exc:
            raise _unavailable(exc) from exc

    @router.get("/api/calls/{call_id}")
    def get_call(call_id: str, who: Any = who_is) -> dict[str, Any]:
        """One call with its turns, events and handoffs."""
        try:
            allowed = visible_to(who)
            call = store.get_call(call_id) if allowed is None or call_id in allowed else None
            handoffs = store.list_handoffs(call_id=call_id) if call is not None else []
        except StoreError as exc:
            raise _unavailable(exc) from exc
        if call is None:
            raise HTTPException(status_code=404, detail=f"unknown call id: {call_id}")
        return {**call, "handoffs": handoffs}

    return router


def _aware(moment: datetime | None) -> datetime | None:
    """Dates without a zone are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _unavailable(exc: StoreError) -> HTTPException:
    logger.error("call store failed: %s", exc)
    return HTTPException(status_code=503, detail="call store unavailable")
