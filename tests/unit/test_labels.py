"""Review labels: the API that records them, and folding them into the intent training data.

The API runs on a tiny app that mounts only its router, over a real SQLite store; folding and
retraining run on temporary copies of nlu/data, so the shipped files are never touched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from nlu.classifier import (
    DATA_DIR,
    EVAL_FILE,
    MODEL_FILE,
    TRAIN_FILE,
    IntentClassifier,
    load_examples,
    normalize_utterance,
)
from nlu.retrain import (
    OUTCOMES,
    FoldReport,
    RetrainError,
    add_nlu_commands,
    fold_labels,
    read_labels,
    retrain,
)
from review.labels_api import EXPORT_FIELDS, MAX_NOTE_LENGTH, labels_router
from review.redaction import PLACEHOLDERS
from review.repository import CallRepository, open_store

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
INTENTS = sorted({example.intent for example in load_examples(TRAIN_FILE)})
NEW_WORDS = "my parcel says delivered but there is nothing on the porch"  # in neither file


@dataclass(frozen=True)
class Reviewer:
    name: str


def maria() -> Reviewer:
    return Reviewer("maria")


@dataclass(frozen=True)
class Turns:
    caller: int
    assistant: int
    agent: int


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CallRepository]:
    with open_store(None, tmp_path / "var" / "calls.sqlite3") as store:
        yield store


@pytest.fixture
def turns(store: CallRepository) -> Turns:
    """Call CA1: a caller turn the assistant took for shipping, its answer, an agent's turn."""
    store.start_call(call_id="CA1", channel="twilio", caller="+15550100", started_at=T0)
    return Turns(
        caller=store.add_turn("CA1", speaker="caller", text=NEW_WORDS, start_ms=0,
                              end_ms=2500, intent="shipping", confidence=0.41),
        assistant=store.add_turn("CA1", speaker="assistant", text="Standard shipping takes"
                                 " three to five business days.", start_ms=3000),
        agent=store.add_turn("CA1", speaker="agent", text="Let me look into it.", start_ms=9000),
    )


def app_client(store: CallRepository, reviewer: Callable[..., Any] = maria) -> TestClient:
    app = FastAPI()
    app.include_router(labels_router(store, reviewer=reviewer, intents=INTENTS))
    return TestClient(app)


@pytest.fixture
def client(store: CallRepository) -> Iterator[TestClient]:
    with app_client(store) as client:
        yield client


def post(client: TestClient, turn_id: int, kind: Any, value: Any) -> Any:
    return client.post(f"/api/turns/{turn_id}/labels", json={"kind": kind, "value": value})


# ---------------------------------------------------------------------- the API
def test_a_reviewer_corrects_the_intent_of_a_caller_turn(client: TestClient, turns: Turns) -> None:
    before = datetime.now(UTC)
    response = post(client, turns.caller, "intent", "order_status")

    assert response.status_code == 201
    label = response.json()
    assert {k: label[k] for k in ("call_id", "turn_id", "kind", "value", "by", "speaker", "text",
                                  "turn_intent", "turn_confidence")} == {
        "call_id": "CA1", "turn_id": turns.caller, "kind": "intent", "value": "order_status",
        "by": "maria", "speaker": "caller", "text": NEW_WORDS, "turn_intent": "shipping",
        "turn_confidence": 0.41}
    assert datetime.fromisoformat(label["at"]) >= before - timedelta(seconds=1)
    assert isinstance(label["id"], int)


@pytest.mark.parametrize("verdict", ["right", "wrong"])
def test_an_assistant_answer_is_marked_right_or_wrong(client: TestClient, turns: Turns,
                                                      verdict: str) -> None:
    response = post(client, turns.assistant, "answer", verdict)
    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["value"]) == ("answer", verdict)


@pytest.mark.parametrize("turn", ["caller", "assistant", "agent"])
def test_a_note_goes_on_any_turn_trimmed(client: TestClient, turns: Turns, turn: str) -> None:
    response = post(client, getattr(turns, turn), "note", "  caller sounded upset \n")
    assert response.status_code == 201
    assert response.json()["value"] == "caller sounded upset"


def test_a_note_of_the_longest_length_is_kept(client: TestClient, turns: Turns) -> None:
    assert post(client, turns.agent, "note", "x" * MAX_NOTE_LENGTH).status_code == 201


@pytest.mark.parametrize(("turn", "body"), [
    ("caller", {"kind": "intent", "value": "pizza_order"}),
    ("caller", {"kind": "intent", "value": ""}),
    ("assistant", {"kind": "intent", "value": "order_status"}),
    ("caller", {"kind": "answer", "value": "right"}),
    ("assistant", {"kind": "answer", "value": "maybe"}),
    ("agent", {"kind": "answer", "value": "wrong"}),
    ("agent", {"kind": "note", "value": "   "}),
    ("agent", {"kind": "note", "value": "x" * (MAX_NOTE_LENGTH + 1)}),
    ("agent", {"kind": "note", "value": "nul \x00 inside"}),
    ("agent", {"kind": "note", "value": 42}),
    ("agent", {"kind": "note"}),
    ("agent", {"kind": "praise", "value": "nice"}),
    ("agent", {"kind": "note", "value": "ok", "by": "someone else"}),
], ids=["unknown-intent", "empty-intent", "intent-on-assistant-turn", "answer-on-caller-turn",
        "answer-not-right-or-wrong", "answer-on-agent-turn", "blank-note", "note-too-long",
        "nul-in-note", "value-not-text", "no-value", "unknown-kind", "who-is-not-the-clients"])
def test_a_label_that_does_not_fit_is_refused_with_422(client: TestClient, store: CallRepository,
                                                       turns: Turns, turn: str,
                                                       body: dict[str, Any]) -> None:
    response = client.post(f"/api/turns/{getattr(turns, turn)}/labels", json=body)
    assert response.status_code == 422, response.text
    assert store.labels() == []


def test_a_label_for_an_unknown_turn_is_404(client: TestClient, turns: Turns) -> None:
    response = post(client, turns.agent + 1000, "note", "hello")
    assert response.status_code == 404
    assert post(client, 0, "note", "hello").status_code == 404
    assert client.post("/api/turns/first/labels",
                       json={"kind": "note", "value": "x"}).status_code == 422


def test_labels_are_listed_oldest_first_and_filtered(client: TestClient, store: CallRepository,
                                                     turns: Turns) -> None:
    store.start_call(call_id="CA2", channel="webrtc", caller=None, started_at=T0)
    other = store.add_turn("CA2", speaker="caller", text="hello", start_ms=0)
    store.add_label(turns.caller, kind="intent", value="order_status", by="maria",
                    at=T0 + timedelta(hours=2))
    store.add_label(turns.assistant, kind="answer", value="wrong", by="li", at=T0 + timedelta(hours=1))
    store.add_label(other, kind="note", value="test call", by="li", at=T0 + timedelta(hours=3))

    def values(**params: str) -> list[str]:
        response = client.get("/api/labels", params=params)
        assert response.status_code == 200, response.text
        return [label["value"] for label in response.json()["labels"]]

    assert values() == ["wrong", "order_status", "test call"]
    assert values(call_id="CA1") == ["wrong", "order_status"]
    assert values(kind="intent") == ["order_status"]
    assert values(since="2025-03-04T11:30:00+00:00") == ["order_status", "test call"]
    assert values(since="2025-03-04T11:30:00") == ["order_status", "test call"]  # naive: UTC
    assert values(call_id="nobody") == []
    assert client.get("/api/labels", params={"kind": "praise"}).status_code == 422
    assert client.get("/api/labels", params={"since": "yesterday"}).status_code == 422


def test_labels_export_as_json_lines(client: TestClient, store: CallRepository,
                                     turns: Turns) -> None:
    post(client, turns.caller, "intent", "order_status")
    post(client, turns.assistant, "answer", "wrong")

    response = client.get("/api/labels.jsonl")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [list(line) for line in lines] == [list(EXPORT_FIELDS)] * 2
    assert {k: lines[0][k] for k in ("call_id", "turn_id", "speaker", "text", "kind", "value",
                                     "by")} == {
        "call_id": "CA1", "turn_id": turns.caller, "speaker": "caller", "text": NEW_WORDS,
        "kind": "intent", "value": "order_status", "by": "maria"}
    only_answers = client.get("/api/labels.jsonl", params={"kind": "answer"}).text.splitlines()
    assert [json.loads(line)["value"] for line in only_answers] == ["wrong"]


def test_an_empty_export_is_an_empty_body(client: TestClient, turns: Turns) -> None:
    response = client.get("/api/labels.jsonl")
    assert response.status_code == 200 and response.text == ""


def test_every_label_route_asks_the_reviewer_dependency(store: CallRepository,
                                                         turns: Turns) -> None:
    def nobody() -> Reviewer:
        raise HTTPException(status_code=401, detail="sign in")

    with app_client(store, nobody) as client:
        assert post(client, turns.caller, "intent", "order_status").status_code == 401
        assert client.get("/api/labels").status_code == 401
        assert client.get("/api/labels.jsonl").status_code == 401
    assert store.labels() == []


def test_a_turn_reads_back_by_id_with_its_call(open_repository: Callable[[], CallRepository]
                                               ) -> None:
    with open_repository() as store:
        store.start_call(call_id="CA1", channel="twilio", caller=None, started_at=T0)
        turn_id = store.add_turn("CA1", speaker="caller", text="hi", start_ms=5,
                                 intent="greeting", confidence=0.9, meta={"asr_ms": 80})
        assert store.get_turn(turn_id) == {
            "id": turn_id, "call_id": "CA1", "speaker": "caller", "text": "hi", "start_ms": 5,
            "end_ms": None, "intent": "greeting", "confidence": 0.9, "sentiment": None,
            "latency_ms": None, "interrupted": False, "asr_ms": 80}
        for unknown in (turn_id + 1, 0, -1, 2**70, "1", True):
            assert store.get_turn(unknown) is None  # type: ignore[arg-type]


# ---------------------------------------------------------------------- folding
@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of the shipped intent data (training and held-out files)."""
    folder = tmp_path / "nlu-data"
    folder.mkdir()
    for source in (TRAIN_FILE, EVAL_FILE):
        shutil.copy(source, folder / source.name)
    return folder


def label(text: str, value: str, *, turn_id: int | None = 1, minutes: int = 0,
          speaker: str = "caller", kind: str = "intent", by: str = "maria") -> dict[str, Any]:
    """A label as the store lists it (and the export writes it)."""
    return {"call_id": "CA1", "turn_id": turn_id, "speaker": speaker, "text": text,
            "kind": kind, "value": value, "by": by,
            "at": (T0 + timedelta(minutes=minutes)).isoformat()}


def fold(data_dir: Path, labels: list[dict[str, Any]], **options: Any) -> FoldReport:
    return fold_labels(labels, train_path=data_dir / TRAIN_FILE.name,
                       eval_path=data_dir / EVAL_FILE.name, **options)


def train_lines(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (data_dir / TRAIN_FILE.name).read_text().splitlines()
            if line.strip()]


def counts(report: FoldReport) -> dict[str, int]:
    return {name: n for name, n in report.counts.items() if n}


def test_a_corrected_turn_is_appended_with_where_it_came_from(data_dir: Path) -> None:
    shipped = TRAIN_FILE.read_bytes()

    report = fold(data_dir, [label(NEW_WORDS, "order_status", turn_id=7)])

    assert counts(report) == {"added": 1} and report.written
    written = (data_dir / TRAIN_FILE.name).read_bytes()
    assert written.startswith(shipped)  # every shipped line kept byte for byte
    assert train_lines(data_dir)[-1] == {"text": NEW_WORDS, "intent": "order_status",
                                         "source": "review", "turn_id": 7, "by": "maria"}
    examples = load_examples(data_dir / TRAIN_FILE.name)  # extra keys are fine
    assert examples[-1].text == NEW_WORDS and len(examples) == len(load_examples(TRAIN_FILE)) + 1
    assert (data_dir / EVAL_FILE.name).read_bytes() == EVAL_FILE.read_bytes()


def test_folding_the_same_labels_again_changes_nothing(data_dir: Path) -> None:
    labels = [label(NEW_WORDS, "order_status")]
    fold(data_dir, labels)
    after_first = (data_dir / TRAIN_FILE.name).read_bytes()

    report = fold(data_dir, labels)

    assert counts(report) == {"known": 1} and not report.written and not report.changes
    assert (data_dir / TRAIN_FILE.name).read_bytes() == after_first


def test_a_training_line_with_the_same_words_and_intent_is_not_added_again(
    data_dir: Path,
) -> None:
    shipped = load_examples(TRAIN_FILE)[0]  # "where is my order", order_status
    said = shipped.text.upper() + "?"  # the same once normalised

    report = fold(data_dir, [label(said, shipped.intent)])

    assert counts(report) == {"known": 1}
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()


def test_two_turns_with_the_same_words_add_one_line(data_dir: Path) -> None:
    report = fold(data_dir, [label(NEW_WORDS, "order_status", turn_id=1, minutes=1),
                             label(NEW_WORDS.capitalize() + ".", "order_status", turn_id=2)])
    assert [r.outcome for r in report.labels] == ["added", "superseded"]
    assert sum(normalize_utterance(line["text"]) == NEW_WORDS
               for line in train_lines(data_dir)) == 1


def test_a_line_of_the_held_out_set_is_never_trained_on(data_dir: Path) -> None:
    held_out = load_examples(EVAL_FILE)[3]
    wrong_intent = next(i for i in INTENTS if i != held_out.intent)

    report = fold(data_dir, [label(held_out.text, held_out.intent, turn_id=1),
                             label(f"  {held_out.text.upper()}!", wrong_intent, turn_id=2)])

    assert counts(report) == {"held_out": 1, "superseded": 1}
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()


@pytest.mark.parametrize("placeholder", sorted(PLACEHOLDERS.values()))
def test_a_text_with_a_redaction_placeholder_is_skipped(data_dir: Path, placeholder: str) -> None:
    report = fold(data_dir, [label(f"i want to pay with {placeholder} please", "billing_dispute")])
    assert counts(report) == {"redacted": 1} and not report.written
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()


def test_the_latest_label_of_a_turn_wins_whatever_the_order_given(data_dir: Path) -> None:
    report = fold(data_dir, [label(NEW_WORDS, "order_status", turn_id=5, minutes=30),
                             label(NEW_WORDS, "shipping", turn_id=5, minutes=10),
                             label(NEW_WORDS, "warranty", turn_id=5, minutes=20)])

    assert [r.outcome for r in report.labels] == ["added", "superseded", "superseded"]
    assert train_lines(data_dir)[-1]["intent"] == "order_status"


def test_a_later_label_relabels_what_an_earlier_fold_added(data_dir: Path) -> None:
    fold(data_dir, [label(NEW_WORDS, "shipping", turn_id=5, minutes=1)])
    report = fold(data_dir, [label(NEW_WORDS, "shipping", turn_id=5, minutes=1),
                             label(NEW_WORDS, "order_status", turn_id=5, minutes=2)])
    assert [(r.outcome, r.previous) for r in report.labels] == [
        ("superseded", None), ("relabelled", "shipping")]
    assert [line["intent"] for line in train_lines(data_dir)
            if line["text"] == NEW_WORDS] == ["order_status"]


def test_an_identical_training_line_with_another_intent_is_relabelled(data_dir: Path) -> None:
    lines = TRAIN_FILE.read_text().splitlines()
    index, shipped = next((i, json.loads(line)) for i, line in enumerate(lines)
                          if json.loads(line)["intent"] == "hours")
    report = fold(data_dir, [label(shipped["text"], "agent", turn_id=9, by="li")])

    assert [(r.outcome, r.previous) for r in report.labels] == [("relabelled", "hours")]
    rewritten = (data_dir / TRAIN_FILE.name).read_text().splitlines()
    assert len(rewritten) == len(lines)
    assert json.loads(rewritten[index]) == {"text": shipped["text"], "intent": "agent",
                                            "source": "review", "turn_id": 9, "by": "li"}
    assert rewritten[:index] + rewritten[index + 1:] == lines[:index] + lines[index + 1:]


def test_labels_that_cannot_teach_the_classifier_are_left_out(data_dir: Path) -> None:
    report = fold(data_dir, [
        label("  ?! ", "order_status", turn_id=1),
        label(NEW_WORDS, "pizza_order", turn_id=2),
        label("Standard shipping takes five days.", "right", turn_id=3, speaker="assistant",
              kind="answer"),
        label("Let me look.", "shipping", turn_id=4, speaker="agent"),
        label(NEW_WORDS, "caller sounded upset", turn_id=1, kind="note"),
    ])
    assert counts(report) == {"empty": 1, "unknown_intent": 1, "ignored": 3}
    assert not report.written
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()


def test_a_dry_run_reports_and_writes_nothing(data_dir: Path) -> None:
    report = fold(data_dir, [label(NEW_WORDS, "order_status")], dry_run=True)
    assert counts(report) == {"added": 1} and report.changes and not report.written
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()


def test_every_outcome_is_counted(data_dir: Path) -> None:
    assert set(fold(data_dir, []).counts) == {*OUTCOMES, "ignored"}


def test_an_unwritable_training_file_is_a_clear_error(data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nlu.retrain.os.access", lambda path, mode: False)  # root writes anyway
    with pytest.raises(RetrainError, match="not writable.*--data-dir"):
        fold(data_dir, [label(NEW_WORDS, "order_status")])
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()


def test_retraining_saves_the_model_and_measures_it_before_and_after(data_dir: Path) -> None:
    previous = IntentClassifier.default(data_dir=data_dir)
    fold(data_dir, [label(NEW_WORDS, "order_status")])

    result = retrain(data_dir, previous=previous)

    assert 0.8 < result.after <= 1.0 and result.before is not None and 0.8 < result.before <= 1.0
    assert result.held_out == len(load_examples(EVAL_FILE))
    assert result.examples == len(load_examples(TRAIN_FILE)) + 1
    assert result.model_path == data_dir / MODEL_FILE.name
    saved = IntentClassifier.load(result.model_path)
    digest = hashlib.sha256((data_dir / TRAIN_FILE.name).read_bytes()).hexdigest()
    assert saved.training_digest == digest  # so IntentClassifier.default uses it as it is
    assert saved.predict(NEW_WORDS).intent == "order_status"
    assert {p.name for p in data_dir.iterdir()} == {EVAL_FILE.name, MODEL_FILE.name,
                                                    TRAIN_FILE.name}  # no temporary files left


# ---------------------------------------------------------------------- the command
def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="iva")
    add_nlu_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def export(tmp_path: Path, store: CallRepository, client: TestClient, turns: Turns) -> Path:
    """A labels export from the API: one intent correction, one answer verdict."""
    post(client, turns.caller, "intent", "order_status")
    post(client, turns.assistant, "answer", "wrong")
    path = tmp_path / "labels.jsonl"
    path.write_text(client.get("/api/labels.jsonl").text)
    return path


def test_the_command_dry_run_reports_without_writing(
    data_dir: Path, export: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("nlu", "retrain", "--labels", str(export), "--dry-run",
               "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    assert "1 intent label(s) on caller turns (1 other label(s) ignored)" in out
    assert f"+ order_status: {NEW_WORDS!r}" in out and "dry run" in out
    assert (data_dir / TRAIN_FILE.name).read_bytes() == TRAIN_FILE.read_bytes()
    assert not (data_dir / MODEL_FILE.name).exists()


def test_the_command_folds_an_export_and_retrains(
    data_dir: Path, export: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("nlu", "retrain", "--labels", str(export), "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    assert "held-out intent accuracy: " in out and "% -> " in out
    assert train_lines(data_dir)[-1]["text"] == NEW_WORDS
    assert (data_dir / MODEL_FILE.name).is_file()

    assert run("nlu", "retrain", "--labels", str(export), "--data-dir", str(data_dir)) == 0
    assert "unchanged: nothing to retrain" in capsys.readouterr().out


def test_the_command_reads_the_configured_call_store(
    tmp_path: Path, data_dir: Path, store: CallRepository, turns: Turns,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    store.add_label(turns.caller, kind="intent", value="order_status", by="maria")
    for name in ("IVA_CONFIG", "IVA_DATABASE_URL", "IVA_DATABASE_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IVA_DATA_DIR", str(tmp_path / "var"))  # the store fixture's folder

    assert run("nlu", "retrain", "--dry-run", "--data-dir", str(data_dir)) == 0
    assert f"+ order_status: {NEW_WORDS!r} (turn {turns.caller}, by maria)" in \
        capsys.readouterr().out


def test_the_command_explains_what_stops_it(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "intent"}\n[1, 2]\n')
    assert run("nlu", "retrain", "--labels", str(bad), "--data-dir", str(data_dir)) == 1
    assert "bad.jsonl:2: expected a JSON object" in capsys.readouterr().err

    assert run("nlu", "retrain", "--labels", str(tmp_path / "missing.jsonl"),
               "--data-dir", str(data_dir)) == 1
    assert "cannot read labels file" in capsys.readouterr().err

    assert run("nlu", "retrain", "--labels", str(bad), "--data-dir", str(tmp_path)) == 2
    assert "no training file" in capsys.readouterr().err

    monkeypatch.delenv("IVA_DATABASE_URL", raising=False)
    monkeypatch.delenv("IVA_CONFIG", raising=False)
    monkeypatch.setenv("IVA_DATA_DIR", str(tmp_path / "nowhere"))
    assert run("nlu", "retrain", "--dry-run", "--data-dir", str(data_dir)) == 1
    assert "no call store at" in capsys.readouterr().err

    monkeypatch.setattr("nlu.retrain.os.access", lambda path, mode: False)
    assert run("nlu", "retrain", "--labels", str(bad), "--data-dir", str(data_dir)) == 1
    assert "is not writable" in capsys.readouterr().err


def test_an_export_reads_back_as_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(label(NEW_WORDS, "order_status")) + "\n\n")
    assert read_labels(path) == [label(NEW_WORDS, "order_status")]
    path.write_text("{not json\n")
    with pytest.raises(RetrainError, match=r"labels.jsonl:1: not JSON"):
        read_labels(path)


def test_the_shipped_data_folder_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("nlu", "retrain", "--help")
    assert str(DATA_DIR) in " ".join(capsys.readouterr().out.split())
