"""The review pages: ``/review`` (the calls, filtered and searched) and ``/review/calls/{id}``
(one call: transcript, audio, latency and sentiment charts, labels). Plain HTML and JavaScript
served from ``review/static``; they read the same ``/api/*`` a program would."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse, Response

__all__ = ["review_pages_router"]

_ASSETS = {"review.css": "text/css; charset=utf-8",
           "review.js": "text/javascript; charset=utf-8"}


def _page(name: str) -> str:
    return resources.files("review").joinpath(f"static/{name}").read_text("utf-8")


def review_pages_router(*, supervisor: Callable[..., Any], signed_in: Callable[..., Any]) -> APIRouter:
    """``supervisor`` and ``signed_in`` are the authentication dependencies: the list is for
    supervisors; a call page for anyone signed in (the API decides which calls they may see)."""
    router = APIRouter(tags=["review pages"])
    supervisor_only = Depends(supervisor)
    anyone_signed_in = Depends(signed_in)

    @router.get("/review", response_class=HTMLResponse)
    def calls_page(_who: Any = supervisor_only) -> str:
        return _page("review.html")

    @router.get("/review/calls/{call_id}", response_class=HTMLResponse)
    def call_page(call_id: str, _who: Any = anyone_signed_in) -> str:
        return _page("call.html")

    @router.get("/review/static/{name}")
    def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise HTTPException(status_code=404, detail="no such file")
        return Response(_page(name), media_type=_ASSETS[name],
                        headers={"Cache-Control": "max-age=300"})

    return router
