"""A small CRM/OMS on 127.0.0.1 that speaks the REST contract of docs/backend-api.md, backed by a
SqliteBackend, recording what it is sent: for HttpBackend's unit tests and the e2e call."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kb.backend import ActionRejectedError, NotFoundError, SqliteBackend


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeCrm:
    """Canned replies by (method, path); anything else is answered by a SqliteBackend, the way
    docs/backend-api.md says a real CRM/OMS should."""

    backing: SqliteBackend
    replies: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    base_url: str = ""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        query = urllib.parse.parse_qs(parts.query)
        self.received.append(Received(handler.command, parts.path, query,
                                      dict(handler.headers), body))
        time.sleep(self.delay)
        status, reply = self.replies.get((handler.command, parts.path)) or self._serve(
            handler.command, parts.path.removeprefix("/api/v1"), query, body)
        payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            pass

    def _serve(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        b = self.backing
        seg = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
        try:
            match method, seg:
                case "GET", ["customers"]:
                    found = b.customer_by_phone(query["phone"][0])
                    return 200, {"customers": [found.to_json()] if found else []}
                case "GET", ["customers", cid]:
                    customer = b.customer(cid)
                    if customer is None:
                        return 404, {"error": "no customer"}
                    return 200, customer.to_json()
                case "GET", ["orders", oid]:
                    order = b.order(oid)
                    return (200, order.to_json()) if order else (404, {"error": "no order"})
                case "GET", ["customers", cid, "orders"]:
                    return 200, {"orders": [o.to_json() for o in b.orders_of(cid)]}
                case "GET", ["customers", cid, "membership"]:
                    m = b.membership(cid)
                    return 200, {"membership": m.to_json() if m else None}
                case "POST", ["customers", cid, "membership", "pause"]:
                    paused = b.pause_membership(cid, body["months"], call_id=body["call_id"])
                    return 200, paused.to_json()
                case "POST", ["customers", cid, "membership", "cancel"]:
                    return 200, b.cancel_membership(cid, call_id=body["call_id"]).to_json()
                case "POST", ["audit"]:
                    b.audit(body["call_id"], body["action"], body["details"])
                    return 201, {}
                case "GET", ["audit"]:
                    entries = b.audit_log(query.get("call_id", [None])[0])
                    return 200, {"entries": [e.to_json() for e in entries]}
        except NotFoundError as exc:
            return 404, {"error": str(exc)}
        except ActionRejectedError as exc:
            return 409, {"error": str(exc)}
        return 404, {"error": "no such route"}

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.received]


@contextmanager
def serve_crm(database: Path) -> Iterator[FakeCrm]:
    """A :class:`FakeCrm` over the demo data in ``database``, served until the block ends."""
    with SqliteBackend(database) as backing:
        fake = FakeCrm(backing)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = False  # server_close() waits for requests in flight
        fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
        thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        try:
            yield fake
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
