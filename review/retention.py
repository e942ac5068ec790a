"""Retention: call records and recordings are kept for ``retention_days`` days, then deleted.

``apply_retention`` deletes once (``iva db retention`` runs it on demand); the service runs
``retain_daily`` as a background task, which applies it at start-up and then once a day.
Zero days keeps everything forever.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from review.records import StoreError
from review.repository import CallRepository

__all__ = ["apply_retention", "retain_daily"]

logger = logging.getLogger("review.retention")


def apply_retention(repository: CallRepository, days: int, recordings_dir: Path | None, *,
                    now: datetime | None = None) -> int:
    """Delete the calls started more than ``days`` days ago (and ended) with everything
    recorded about them, and every file ``<call_id>.*`` of theirs directly in
    ``recordings_dir``; return how many calls were deleted. ``days`` = 0 deletes nothing."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"retention days must be a whole number >= 0, got {days!r}")
    if days == 0:
        return 0
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    call_ids = repository.delete_older_than(cutoff)
    removed = _delete_recordings(recordings_dir, set(call_ids)) if call_ids else 0
    if call_ids:
        logger.info("retention (%d days): deleted %d calls and %d recording files",
                    days, len(call_ids), removed)
    return len(call_ids)


async def retain_daily(repository: CallRepository, days: int, recordings_dir: Path | None, *,
                       every_s: float = 24 * 3600.0) -> None:
    """Apply retention now and then every ``every_s`` seconds, until cancelled.

    Runs in a worker thread, off the event loop. A failure is logged and tried again at the
    next round: retention must not take the service down.
    """
    if days == 0:
        return
    while True:
        try:
            await asyncio.to_thread(apply_retention, repository, days, recordings_dir)
        except StoreError as exc:
            logger.error("retention failed; trying again in %.0f s: %s", every_s, exc)
        await asyncio.sleep(every_s)


def _delete_recordings(recordings_dir: Path | None, call_ids: set[str]) -> int:
    """Delete ``<call_id>.<anything>`` for the given calls; return how many files went.

    The names in the folder are matched against the ids, never the other way round, so a
    call id with ``/``, ``..`` or glob characters in it cannot reach another file.
    """
    if recordings_dir is None or not recordings_dir.is_dir():
        return 0
    removed = 0
    for path in recordings_dir.iterdir():
        name = path.name
        # Every prefix before a dot could be the call id: "CA1.part.wav" is CA1's (or CA1.part's).
        owners = {name[:i] for i, char in enumerate(name) if char == "." and i > 0}
        if not owners & call_ids or not path.is_file():
            continue
        try:
            path.unlink()
            removed += 1
        except OSError as exc:
            logger.warning("retention: cannot delete recording %s: %s", path, exc)
    return removed
