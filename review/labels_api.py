"""Review labels over HTTP: reviewers correct turns, and the labels feed retraining.

- ``POST /api/turns/{turn_id}/labels`` ``{"kind": "intent"|"answer"|"note", "value": ...}``:
  ``intent`` (a caller turn's right intent, one the classifier knows), ``answer`` (``right`` or
  ``wrong``, on an assistant turn) or ``note`` (free text on any turn, at most 2000
  characters). 201 with the stored label; 404 for an unknown turn; 422 for a bad value or a
  label that does not fit the turn's speaker.
- ``GET /api/labels[?call_id=&since=&kind=]``: ``{"labels": [...]}``, oldest first, each
  ``{"id", "call_id", "turn_id", "kind", "value", "by", "at", "speaker", "text",
  "turn_intent", "turn_confidence"}`` (``turn_*``: what the assistant decided at the time).
- ``GET /api/labels.jsonl`` (same filters): the export ``iva nlu retrain --labels`` reads, one
  JSON object a line (``application/x-ndjson``).

Who labels comes from ``reviewer`` (a FastAPI dependency returning an object with ``.name``);
labels are kept with that name and the time. Caller texts are stored redacted, so neither the
listing nor the export holds PII the call record does not. Routes are plain ``def``: FastAPI
runs them in its thread pool, away from the event loop that carries call audio.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from review.records import InvalidRecordError, LabelKind, StoreError, UnknownTurnError
from review.repository import CallRepository

__all__ = ["ANSWER_VALUES", "EXPORT_FIELDS", "MAX_NOTE_LENGTH", "LabelRequest", "labels_router"]

log = logging.getLogger("iva.labels")

MAX_NOTE_LENGTH: Final = 2000
ANSWER_VALUES: Final = ("right", "wrong")
# One line of the JSONL export, in this order.
EXPORT_FIELDS: Final = ("id", "call_id", "turn_id", "speaker", "text", "kind", "value", "by", "at")
# Which speaker's turns each kind may label (None: any turn).
_SPEAKER_OF: Final[dict[str, str | None]] = {"intent": "caller", "answer": "assistant",
                                             "note": None}


class LabelRequest(BaseModel):
    """The body of ``POST /api/turns/{turn_id}/labels``."""

    model_config = ConfigDict(extra="forbid")

    kind: LabelKind
    value: str = Field(max_length=MAX_NOTE_LENGTH)


def labels_router(store: CallRepository, *, reviewer: Callable[..., Any],
                  intents: Collection[str]) -> APIRouter:
    """The label routes over ``store``; ``intents`` is what an intent label may say (the
    classifier's labels), ``reviewer`` the authentication dependency naming who labels."""
    router = APIRouter(tags=["labels"])
    allowed_intents = frozenset(intents)
    # A default, not an Annotated alias: this module's annotations are strings, which FastAPI
    # resolves in the module's namespace, where a local alias does not exist.
    who_is = Depends(reviewer)

    @router.post("/api/turns/{turn_id}/labels", status_code=201)
    def add_label(turn_id: int, label: LabelRequest, who: Any = who_is) -> dict[str, Any]:
        """Label one turn; returns the stored label."""
        by = str(getattr(who, "name", who))
        try:
            turn = store.get_turn(turn_id)
            if turn is None:
                raise HTTPException(status_code=404, detail=f"unknown turn id: {turn_id}")
            value = _checked_value(label, turn, allowed_intents)
            label_id = store.add_label(turn_id, kind=label.kind, value=value, by=by)
            stored = next(row for row in store.labels(turn["call_id"], kind=label.kind)
                          if row["id"] == label_id)
        except UnknownTurnError as exc:  # deleted by retention in between
            raise HTTPException(status_code=404, detail=f"unknown turn id: {turn_id}") from exc
        except InvalidRecordError as exc:  # e.g. a NUL character
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        except StoreError as exc:
            raise _unavailable(exc) from exc
        log.info("turn %d of call %s labelled (%s) by %s", turn_id, turn["call_id"],
                 label.kind, by)
        return stored

    @router.get("/api/labels")
    def list_labels(
        call_id: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[datetime | None, Query(description="labelled at or after (ISO)")] = None,
        kind: LabelKind | None = None,
        _who: Any = who_is,
    ) -> dict[str, list[dict[str, Any]]]:
        """Labels, oldest first, with the turn each is about."""
        try:
            return {"labels": store.labels(call_id or None, _aware(since), kind=kind)}
        except StoreError as exc:
            raise _unavailable(exc) from exc

    @router.get("/api/labels.jsonl", response_class=StreamingResponse)
    def export_labels(
        call_id: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[datetime | None, Query(description="labelled at or after (ISO)")] = None,
        kind: LabelKind | None = None,
        _who: Any = who_is,
    ) -> StreamingResponse:
        """The labels as JSON lines, for ``iva nlu retrain --labels`` and other tools."""
        try:
            rows = store.labels(call_id or None, _aware(since), kind=kind)
        except StoreError as exc:
            raise _unavailable(exc) from exc
        return StreamingResponse(_json_lines(rows), media_type="application/x-ndjson",
                                 headers={"Content-Disposition":
                                          'attachment; filename="labels.jsonl"'})

    return router


def _checked_value(label: LabelRequest, turn: dict[str, Any], intents: frozenset[str]) -> str:
    """The value to store, or 422 if it does not suit the kind or the turn's speaker."""
    speaker = _SPEAKER_OF[label.kind]
    if speaker is not None and turn["speaker"] != speaker:
        raise HTTPException(status_code=422,
                            detail=f"{label.kind} labels go on {speaker} turns; turn"
                                   f" {turn['id']} is the {turn['speaker']}'s")
    value = label.value.strip()
    if label.kind == "intent" and value not in intents:
        raise HTTPException(status_code=422,
                            detail=f"intent must be one of {', '.join(sorted(intents))}")
    if label.kind == "answer" and value not in ANSWER_VALUES:
        raise HTTPException(status_code=422, detail="answer must be 'right' or 'wrong'")
    if not value:
        raise HTTPException(status_code=422, detail="a note needs some text")
    return value


def _json_lines(rows: list[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({name: row[name] for name in EXPORT_FIELDS}, ensure_ascii=False) + "\n"


def _aware(moment: datetime | None) -> datetime | None:
    """Dates without a zone are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _unavailable(exc: StoreError) -> HTTPException:
    log.error("call store failed: %s", exc)
    return HTTPException(status_code=503, detail="call store unavailable")
