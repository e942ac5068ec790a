"""The KPIs over HTTP: ``GET /api/kpis`` and the page ``GET /review/kpis``.

- ``GET /api/kpis?since=YYYY-MM-DD&until=YYYY-MM-DD``: ``review.kpis.KpiReport.to_json()``
  for the calls started on those UTC dates (both included). Without ``until``: today (UTC);
  without ``since``: 30 days up to ``until``. At most ``MAX_RANGE_DAYS`` days; a date that is
  not ``YYYY-MM-DD``, or a range that is backwards or too long, is a 422.
- ``GET /review/kpis``: the page (plain HTML and JavaScript, charts drawn as inline SVG, no
  build step), which fetches the API.

The store is read in a worker thread (``asyncio.to_thread``), so a long range never stalls
the event loop that carries live call audio. It is read ``REPEAT_WINDOW`` past ``until``
as well: a call near the end of the range counts as repeated if its caller called again
within the window, even after the range.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from review.kpis import REPEAT_WINDOW, KpiReport, compute_kpis
from review.records import StoreError
from review.repository import CallRepository

__all__ = ["DEFAULT_RANGE_DAYS", "MAX_RANGE_DAYS", "kpi_router"]

logger = logging.getLogger(__name__)

DEFAULT_RANGE_DAYS: Final = 30
MAX_RANGE_DAYS: Final = 366
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def _utc_today() -> date:
    return datetime.now(UTC).date()


def kpi_router(store: CallRepository, *, principal_page: Callable[..., Any],
               principal_api: Callable[..., Any],
               today: Callable[[], date] = _utc_today) -> APIRouter:
    """The KPI routes over ``store``; ``principal_page`` / ``principal_api`` are the
    authentication dependencies of the page and of the API (the service: supervisors only).
    ``today`` is the clock of the default range (tests pass a fixed one)."""
    router = APIRouter(tags=["kpis"])
    # Defaults, not Annotated aliases: this module's annotations are strings, and FastAPI
    # resolves them in the module's namespace, where a local alias does not exist.
    api_who_is = Depends(principal_api)
    page_who_is = Depends(principal_page)

    @router.get("/api/kpis")
    async def kpis(
        since: Annotated[str | None, Query(description="first day (UTC), YYYY-MM-DD")] = None,
        until: Annotated[str | None, Query(description="last day (UTC), YYYY-MM-DD")] = None,
        _who: Any = api_who_is,
    ) -> dict[str, Any]:
        """Containment, transfers, abandonment, handle time, repeat calls, latency, barge-in
        and sentiment, over the range and by day; ``definitions`` says what each means."""
        first, last = date_range(since, until, today=today())
        try:
            report = await asyncio.to_thread(read_kpis, store, first, last)
        except StoreError as exc:
            logger.error("call store failed: %s", exc)
            raise HTTPException(status_code=503, detail="call store unavailable") from exc
        return report.to_json()

    @router.get("/review/kpis", response_class=HTMLResponse)
    async def kpi_page(_who: Any = page_who_is) -> str:
        return resources.files("review").joinpath("static/kpis.html").read_text("utf-8")

    return router


def date_range(since: str | None, until: str | None, *, today: date) -> tuple[date, date]:
    """The days asked for, defaults filled in; HTTPException 422 if they make no sense."""
    last = _day("until", until) if until else today
    first = (_day("since", since) if since
             else last - timedelta(days=DEFAULT_RANGE_DAYS - 1))
    if last < first:
        raise HTTPException(status_code=422, detail=f"until ({last}) is before since ({first})")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise HTTPException(status_code=422,
                            detail=f"at most {MAX_RANGE_DAYS} days at a time"
                                   f" ({first} .. {last} is {(last - first).days + 1})")
    return first, last


def read_kpis(store: CallRepository, since: date, until: date) -> KpiReport:
    """Read the calls of the range (and of the repeat window after it) and compute."""
    start = datetime.combine(since, time(), tzinfo=UTC)
    try:
        end = datetime.combine(until, time(), tzinfo=UTC) + timedelta(days=1) + REPEAT_WINDOW
    except OverflowError:  # until near 9999-12-31
        end = datetime.max.replace(tzinfo=UTC)
    return compute_kpis(store.iter_calls(start, end), since=since, until=until)


def _day(name: str, value: str) -> date:
    # Only the one form: date.fromisoformat alone would also take "20250304" or "2025-W10-2".
    if _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:  # 2025-02-30
            pass
    raise HTTPException(status_code=422, detail=f"{name} must be a date YYYY-MM-DD,"
                                                f" got {value[:40]!r}")
