"""HTTP API over the call records: ``GET /api/calls`` and ``GET /api/calls/{call_id}``.

The shapes are the ones ARCHITECTURE.md promises (``CallStore.get_call`` builds them). The
routes are plain ``def`` functions on purpose: FastAPI runs them in its thread pool, so a slow
disk never stalls the event loop that carries live call audio, and the store's lock makes
sharing it between threads safe. No authentication yet.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from review.records import StoreError
from review.repository import CallRepository

__all__ = ["MAX_PAGE_SIZE", "calls_router"]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500


def calls_router(store: CallRepository) -> APIRouter:
    """The ``/api/calls`` routes, reading from ``store``."""
    router = APIRouter(tags=["calls"])

    @router.get("/api/calls")
    def list_calls(
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, list[dict[str, Any]]]:
        """Call summaries, newest first."""
        try:
            return {"calls": store.list_calls(limit=limit, offset=offset)}
        except StoreError as exc:
            raise _unavailable(exc) from exc

    @router.get("/api/calls/{call_id}")
    def get_call(call_id: str) -> dict[str, Any]:
        """One call with its turns and events."""
        try:
            call = store.get_call(call_id)
        except StoreError as exc:
            raise _unavailable(exc) from exc
        if call is None:
            raise HTTPException(status_code=404, detail=f"unknown call id: {call_id}")
        return call

    return router


def _unavailable(exc: StoreError) -> HTTPException:
    logger.error("call store failed: %s", exc)
    return HTTPException(status_code=503, detail="call store unavailable")
