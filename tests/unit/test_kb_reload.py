"""Reloading the knowledge base without a restart: the engine, POST /api/kb/reload, and
``iva kb reload`` against a stand-in server; plus GET /api/calls/{id}/audit."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kb import DEMO_KB_DIR
from voice.app import create_app
from voice.cli import main
from voice.engine import ConversationEngine
from voice.settings import Settings

pytestmark = pytest.mark.unit

TOKEN = "reload-test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def api(engine: ConversationEngine) -> TestClient:
    """The service's app around a model-less engine (no lifespan), as a program with the token."""
    return TestClient(create_app(engine.settings, engine=engine), headers=BEARER)


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(DEMO_KB_DIR, folder)
    return folder


@pytest.fixture
def engine(tmp_path: Path, kb_dir: Path) -> Iterator[ConversationEngine]:
    settings = Settings(kb_dir=kb_dir, data_dir=tmp_path / "var", kb_embeddings=False,
                        tts_warm_cache=False, api_token=TOKEN, admin_user="boss",
                        admin_password="a long password")
    engine = ConversationEngine(settings, models=None, store=None)  # type: ignore[arg-type]
    yield engine
    engine.backend.close()  # type: ignore[attr-defined]


def ask(engine: ConversationEngine, question: str) -> str:
    return engine.new_assistant("CA-reload", None).respond(question).text


def test_a_changed_document_is_answered_after_a_reload(engine, kb_dir):
    assert "$12.99" in ask(engine, "how much is express shipping")
    shipping = kb_dir / "shipping.md"
    shipping.write_text(shipping.read_text().replace("$12.99", "$14.99"))
    assert "$12.99" in ask(engine, "how much is express shipping")  # not yet reloaded
    engine.reload_knowledge()
    assert "$14.99" in ask(engine, "how much is express shipping")


def test_the_reload_route_reports_the_passages_and_refuses_a_broken_kb(engine, kb_dir):
    client = api(engine)
    assert TestClient(client.app).post("/api/kb/reload").status_code == 401  # no token
    response = client.post("/api/kb/reload")
    assert response.status_code == 200
    assert response.json() == {"status": "reloaded", "passages": len(engine.knowledge)}

    before = engine.knowledge
    for document in kb_dir.glob("*.md"):
        document.unlink()
    response = client.post("/api/kb/reload")
    assert response.status_code == 422 and "not reloaded" in response.json()["detail"]
    assert engine.knowledge is before  # the old KB stays in service


def test_a_document_with_bad_front_matter_is_refused_and_the_old_kb_stays(engine, kb_dir):
    client = api(engine)
    before = engine.knowledge
    warranty = kb_dir / "warranty.md"
    warranty.write_text(warranty.read_text().replace("intents: warranty", "intent: warranty"))
    response = client.post("/api/kb/reload")
    assert response.status_code == 422
    assert "warranty.md" in response.json()["detail"] and "unknown key 'intent'" in \
        response.json()["detail"]
    assert engine.knowledge is before


def test_an_intent_the_classifier_does_not_know_is_named_in_a_warning(engine, kb_dir, caplog):
    warranty = kb_dir / "warranty.md"
    warranty.write_text(warranty.read_text().replace("intents: warranty", "intents: warrenty"))
    with caplog.at_level("WARNING", logger="iva.engine"):
        engine.reload_knowledge()
    assert "KB documents warranty name the intent 'warrenty'" in caplog.text
    assert engine.knowledge.documents_about("warrenty") == {"warranty"}


def test_the_audit_route_lists_what_a_call_changed(engine):
    assistant = engine.new_assistant("CA-audit", "+15550100")
    for said in ("I want to pause my membership", "four three zero zero four", "one month",
                 "yes"):
        assistant.respond(said)
    client = api(engine)
    entries = client.get("/api/calls/CA-audit/audit").json()["entries"]
    actions = [e["action"] for e in entries]
    assert "identity.verified" in actions and "membership.paused" in actions
    assert client.get("/api/calls/nobody/audit").json()["entries"] == []


class _Stub(BaseHTTPRequestHandler):
    status = 200
    body = b'{"status": "reloaded", "passages": 42}'
    seen: list[tuple[str, str, str | None]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        type(self).seen.append(("POST", self.path, self.headers.get("Authorization")))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Stub", (_Stub,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def test_iva_kb_reload_posts_to_the_server_with_the_api_token(stub, capsys, monkeypatch):
    url, handler = stub
    monkeypatch.setenv("IVA_API_TOKEN", "s3cret")
    assert main(["kb", "reload", "--url", url + "/"]) == 0
    assert handler.seen == [("POST", "/api/kb/reload", "Bearer s3cret")]
    assert "42 passages" in capsys.readouterr().out


def test_iva_kb_reload_reports_a_refusal_and_an_unreachable_server(stub, capsys):
    url, handler = stub
    handler.status, handler.body = 422, json.dumps({"detail": "no passages"}).encode()
    assert main(["kb", "reload", "--url", url]) == 1
    assert "refused (422)" in capsys.readouterr().err
    assert main(["kb", "reload", "--url", "http://127.0.0.1:9", "--timeout", "2"]) == 1
    assert "cannot reach" in capsys.readouterr().err
