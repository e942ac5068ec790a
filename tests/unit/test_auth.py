"""Authentication: the user store, the first supervisor, session cookies, bearer tokens, the
login pages, the API guard, WebSockets, the login brake and ``iva users``."""

from __future__ import annotations

import argparse
import io
import logging
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, WebSocket
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from review.auth import (
    SESSION_COOKIE,
    Authenticator,
    Principal,
    auth_router,
    protect_api,
    safe_next,
)
from review.sessions import LoginLimiter, SessionSigner, load_session_secret
from review.users import (
    DuplicateUserError,
    InvalidUserError,
    UnknownUserError,
    UserStore,
    ensure_admin,
)
from review.users_cli import add_users_commands

pytestmark = pytest.mark.unit

SECRET = b"s" * 32
TOKEN = "program-token-0123456789"


def fast_hasher() -> PasswordHasher:
    """Argon2id with the cheapest parameters: same code path, milliseconds per hash."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[UserStore]:
    with UserStore(tmp_path / "users.sqlite3", hasher=fast_hasher(), clock=clock) as store:
        store.add("ana", "agent-password", "agent")
        store.add("sam", "supervisor-password", "supervisor")
        yield store


def build_app(auth: Authenticator) -> FastAPI:
    """A small app shaped like the service: an API router that knows nothing of auth, pages
    that require a role, open routes, and WebSockets."""
    app = FastAPI()
    app.include_router(auth_router(auth))
    things = APIRouter()

    @things.get("/api/things")
    async def list_things() -> dict[str, list[str]]:
        return {"things": ["a", "b"]}

    @things.post("/api/things")
    async def add_thing() -> dict[str, str]:
        return {"status": "added"}

    @things.websocket("/api/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"hello": True})
        await websocket.close()

    app.include_router(things)
    protect_api(app, auth)

    @app.get("/agent", response_class=HTMLResponse)
    async def agent_page(who: Principal = Depends(auth.require("agent"))) -> str:  # noqa: B008
        return f"<h1>desk of {who.name}</h1>"

    @app.get("/review", response_class=HTMLResponse)
    async def review_page(who: Principal = Depends(auth.require("supervisor"))) -> str:  # noqa: B008
        return f"<h1>review for {who.name}</h1>"

    @app.get("/api/admin")
    async def admin_api(who: Principal = Depends(auth.require("supervisor"))) -> dict[str, str]:  # noqa: B008
        return {"admin": who.name}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/agent/ws")
    async def agent_socket(websocket: WebSocket) -> None:
        who = await auth.authenticate_websocket(websocket, role="agent")
        if who is None:
            await websocket.close(code=1008, reason="authentication required")
            return
        await websocket.accept()
        await websocket.send_json(who.to_json())
        await websocket.close()

    return app


@pytest.fixture
def auth(store: UserStore, clock: Clock) -> Authenticator:
    return Authenticator(store, secret=SECRET, api_token=TOKEN, session_hours=12, clock=clock,
                         limiter=LoginLimiter(max_failures=10, window_s=60, clock=clock))


@pytest.fixture
def client(auth: Authenticator) -> Iterator[TestClient]:
    with TestClient(build_app(auth), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, username: str, password: str, next_url: str = "") -> str:
    response = client.post("/login", data={"username": username, "password": password,
                                           "next": next_url})
    assert response.status_code == 303, response.text
    return response.headers["location"]


# ---------------------------------------------------------------------- the user store
def test_a_password_hash_round_trips_and_is_not_the_password(store: UserStore) -> None:
    user = store.verify("ana", "agent-password")
    assert user is not None and (user.username, user.role) == ("ana", "agent")
    (stored,) = sqlite3.connect(store.path).execute(
        "SELECT password_hash FROM users WHERE username = 'ana'").fetchone()
    assert stored.startswith("$argon2id$") and "agent-password" not in stored


def test_unknown_users_and_wrong_passwords_fail_at_the_cost_of_one_hash(tmp_path: Path) -> None:
    class CountingHasher(PasswordHasher):
        verified = 0

        def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
            CountingHasher.verified += 1
            return super().verify(hash, password)

    with UserStore(tmp_path / "u.sqlite3", hasher=CountingHasher(1, 8, 1)) as store:
        store.add("ana", "agent-password")
        assert store.verify("ana", "wrong-password") is None
        assert store.verify("nobody", "agent-password") is None
        assert store.verify("not a valid name!", "agent-password") is None
        assert store.verify("ana", "x" * 5000) is None
        assert CountingHasher.verified == 4


def test_usernames_are_unique_whatever_their_case(store: UserStore) -> None:
    store.add("Maria", "maria-password")
    user = store.verify("MARIA", "maria-password")
    assert user is not None and user.username == "Maria"
    with pytest.raises(DuplicateUserError):
        store.add("maria", "another-password")
    assert store.get("mArIa") == user


def test_short_passwords_bad_names_and_roles_are_refused(store: UserStore) -> None:
    with pytest.raises(InvalidUserError, match="8 characters"):
        store.add("bob", "short")
    with pytest.raises(InvalidUserError, match="8 characters"):
        store.set_password("ana", "1234567")
    with pytest.raises(InvalidUserError, match="username"):
        store.add("bob smith", "long-enough")
    with pytest.raises(InvalidUserError, match="role"):
        store.add("bob", "long-enough", "admin")
    with pytest.raises(UnknownUserError):
        store.set_password("nobody", "long-enough")
    assert store.count() == 2


def test_passwords_change_and_disabled_users_cannot_sign_in(store: UserStore) -> None:
    store.set_password("ANA", "a-new-password")
    assert store.verify("ana", "agent-password") is None
    assert store.verify("ana", "a-new-password") is not None
    store.disable("ana")
    assert store.verify("ana", "a-new-password") is None
    assert [(u.username, u.disabled) for u in store.list()] == [("ana", True), ("sam", False)]
    store.enable("ana")
    assert store.verify("ana", "a-new-password") is not None


# ---------------------------------------------------------------------- the first supervisor
def test_the_first_supervisor_comes_from_the_settings(tmp_path: Path) -> None:
    shown: list[str] = []
    with UserStore(tmp_path / "u.sqlite3", hasher=fast_hasher()) as store:
        assert ensure_admin(store, "Boss", "boss-password", shown.append) == "Boss"
        user = store.verify("boss", "boss-password")
        assert user is not None and user.role == "supervisor"
        assert ensure_admin(store, "Boss", "boss-password", shown.append) is None
        assert store.count() == 1 and shown == []


def test_a_generated_password_is_shown_once_and_never_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shown: list[str] = []
    caplog.set_level(logging.DEBUG)
    with UserStore(tmp_path / "u.sqlite3", hasher=fast_hasher()) as store:
        assert ensure_admin(store, None, None, shown.append) == "admin"
    (message,) = shown
    password = message.split("password: ")[1].split()[0]
    assert len(password) >= 16 and "iva users passwd admin" in message
    assert password not in caplog.text
    with UserStore(tmp_path / "u.sqlite3", hasher=fast_hasher()) as store:  # the next start
        assert ensure_admin(store, None, None, shown.append) is None
        assert len(shown) == 1
        user = store.verify("admin", password)
        assert user is not None and user.role == "supervisor"


@pytest.mark.parametrize(("user", "password", "named"), [
    ("boss", None, "IVA_ADMIN_PASSWORD"), (None, "boss-password", "IVA_ADMIN_USER")])
def test_one_admin_setting_without_the_other_is_a_configuration_error(
        tmp_path: Path, user: str | None, password: str | None, named: str) -> None:
    with UserStore(tmp_path / "u.sqlite3", hasher=fast_hasher()) as store, \
            pytest.raises(ValueError, match=named):
        ensure_admin(store, user, password, lambda _text: None)


# ---------------------------------------------------------------------- session cookies
def test_a_session_cookie_is_signed_and_read_back() -> None:
    clock = Clock()
    signer = SessionSigner(SECRET, max_age_s=3600, clock=clock)
    claims = signer.read(signer.issue("ana", "agent"))
    assert claims is not None and (claims.username, claims.role) == ("ana", "agent")
    assert claims.expires_at == clock.now + 3600


def test_a_tampered_or_foreign_session_cookie_is_refused() -> None:
    import base64
    import json

    signer = SessionSigner(SECRET)
    payload, signature = signer.issue("ana", "agent").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "r": "supervisor"}).encode())
    assert signer.read(f"{forged.decode().rstrip('=')}.{signature}") is None
    assert signer.read(f"{payload}.{signature[:-2]}AA") is None
    assert signer.read(f"{payload}.{signature}.x") is None
    assert signer.read("") is None and signer.read(None) is None
    assert SessionSigner(b"another-secret-of-32-bytes-....").read(f"{payload}.{signature}") is None


def test_a_session_cookie_expires() -> None:
    clock = Clock()
    signer = SessionSigner(SECRET, max_age_s=12 * 3600, clock=clock)
    value = signer.issue("ana", "agent")
    clock.now += 12 * 3600 - 1
    assert signer.read(value) is not None
    clock.now += 1
    assert signer.read(value) is None


def test_the_session_secret_is_kept_in_a_private_file_across_restarts(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "session.key"
    first = load_session_secret(None, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_session_secret(None, key_file) == first and len(first) >= 32
    assert load_session_secret("configured-secret-123", key_file) == b"configured-secret-123"
    with pytest.raises(ValueError, match="IVA_SESSION_SECRET"):
        load_session_secret("short", key_file)
    assert list(key_file.parent.iterdir()) == [key_file]


# ---------------------------------------------------------------------- bearer tokens
def test_the_api_token_is_accepted_as_a_supervisor_and_others_are_refused(
        auth: Authenticator, store: UserStore) -> None:
    assert auth.token_principal(TOKEN) == Principal("api-token", "supervisor", "token")
    assert auth.token_principal(TOKEN + "x") is None
    assert auth.token_principal("") is None
    unset = Authenticator(store, secret=SECRET, api_token=None)
    assert unset.token_principal("") is None and unset.token_principal(TOKEN) is None


def test_bearer_tokens_open_the_api(client: TestClient) -> None:
    ok = client.get("/api/things", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json() == {"things": ["a", "b"]}
    assert client.get("/api/admin", headers={"Authorization": f"bearer {TOKEN}"}).json() == {
        "admin": "api-token"}
    wrong = client.get("/api/things", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_bearer_tokens_are_refused_when_none_is_configured(store: UserStore) -> None:
    app = build_app(Authenticator(store, secret=SECRET, api_token=None))
    with TestClient(app) as client:
        assert client.get("/api/things", headers={"Authorization": "Bearer "}).status_code == 401
        assert client.get("/api/things",
                          headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


# ---------------------------------------------------------------------- pages and the API guard
def test_the_api_without_credentials_is_401_json_and_open_routes_stay_open(
        client: TestClient) -> None:
    for method, path in [("GET", "/api/things"), ("POST", "/api/things"), ("GET", "/api/me"),
                         ("GET", "/api/nowhere")]:
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert response.json() == {"detail": "authentication required"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/login").status_code == 200


def test_a_page_without_a_session_redirects_to_the_login_form(client: TestClient) -> None:
    response = client.get("/agent?tab=queue")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fagent%3Ftab%3Dqueue"


def test_the_login_form_is_accessible_and_carries_next(client: TestClient) -> None:
    page = client.get("/login", params={"next": "/agent"}).text
    for test_id in ("username", "password", "login"):
        assert f'data-testid="{test_id}"' in page
    assert '<label for="username">' in page and '<label for="password">' in page
    assert 'name="next" value="/agent"' in page
    assert 'value="https://evil.example"' not in client.get(
        "/login", params={"next": "https://evil.example"}).text


def test_signing_in_sets_a_session_cookie_that_opens_pages_and_the_api(
        client: TestClient) -> None:
    response = client.post("/login", data={"username": "ANA", "password": "agent-password"})
    assert response.status_code == 303 and response.headers["location"] == "/agent"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert client.get("/agent").text == "<h1>desk of ana</h1>"
    assert client.get("/api/things").status_code == 200
    assert client.post("/api/things").json() == {"status": "added"}
    assert client.get("/api/me").json() == {"name": "ana", "role": "agent", "kind": "user"}


def test_signing_out_clears_the_session(client: TestClient) -> None:
    sign_in(client, "ana", "agent-password")
    response = client.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/things").status_code == 401
    assert client.get("/agent").status_code == 303


def test_wrong_credentials_show_the_form_again_with_an_error(client: TestClient) -> None:
    response = client.post("/login", data={"username": "ana", "password": "wrong-password",
                                           "next": "/agent"})
    assert response.status_code == 401
    assert 'role="alert"' in response.text and "Wrong username or password." in response.text
    assert 'value="ana"' in response.text and "wrong-password" not in response.text
    assert "set-cookie" not in response.headers
    assert client.post("/login", data={}).status_code == 401


def test_next_leads_back_but_never_to_another_site(client: TestClient) -> None:
    assert sign_in(client, "ana", "agent-password", "/agent?tab=queue") == "/agent?tab=queue"
    for evil in ["https://evil.example/", "//evil.example", "/\\evil.example",
                 "\\\\evil.example", "javascript:alert(1)", "/agent\r\nX: y", "agent"]:
        assert sign_in(client, "ana", "agent-password", evil) == "/agent", evil
    assert safe_next("/review/calls/CA1?x=1#t") == "/review/calls/CA1?x=1#t"
    assert safe_next("/login?next=/agent") is None


def test_roles_supervisors_enter_everywhere_agents_not_into_supervisor_pages(
        client: TestClient) -> None:
    assert sign_in(client, "sam", "supervisor-password") == "/review"
    assert client.get("/agent").status_code == 200
    assert client.get("/review").status_code == 200
    assert client.get("/api/admin").json() == {"admin": "sam"}
    client.post("/logout")
    sign_in(client, "ana", "agent-password")
    assert client.get("/review").status_code == 403
    response = client.get("/api/admin")
    assert response.status_code == 403 and "supervisor" in response.json()["detail"]


def test_a_session_ends_when_it_expires_the_password_changes_or_the_user_is_disabled(
        client: TestClient, store: UserStore, clock: Clock) -> None:
    sign_in(client, "ana", "agent-password")
    signed_in_at = clock.now
    clock.now += 12 * 3600
    assert client.get("/api/things").status_code == 401
    clock.now = signed_in_at
    assert client.get("/api/things").status_code == 200
    store.disable("ana")
    assert client.get("/api/things").status_code == 401
    store.enable("ana")
    assert client.get("/api/things").status_code == 200
    clock.now += 1
    store.set_password("ana", "a-new-password")  # sessions issued before now are void
    assert client.get("/api/things").status_code == 401


def test_a_session_cookie_sent_from_another_origin_does_not_change_anything(
        client: TestClient) -> None:
    sign_in(client, "ana", "agent-password")
    assert client.post("/api/things", headers={"Origin": "http://testserver"}).status_code == 200
    assert client.post("/api/things", headers={"Origin": "https://evil.example"}).status_code == 401
    assert client.get("/api/things", headers={"Origin": "https://evil.example"}).status_code == 200


# ---------------------------------------------------------------------- WebSockets
def test_a_websocket_is_opened_with_the_session_cookie_or_the_token(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/agent/ws"):
            pass
    assert refused.value.code == 1008
    with client.websocket_connect(f"/agent/ws?token={TOKEN}") as ws:
        assert ws.receive_json() == {"name": "api-token", "role": "supervisor", "kind": "token"}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/agent/ws?token=nope"):
        pass
    sign_in(client, "ana", "agent-password")
    with client.websocket_connect("/agent/ws") as ws:
        assert ws.receive_json()["name"] == "ana"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(
            "/agent/ws", headers={"Origin": "https://evil.example"}):
        pass


def test_websockets_under_api_are_guarded_too(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/api/stream"):
            pass
    assert refused.value.code == 1008
    with client.websocket_connect("/api/stream",
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        assert ws.receive_json() == {"hello": True}


# ---------------------------------------------------------------------- the login brake
def test_failed_logins_are_limited_per_username_and_address(
        client: TestClient, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iva.auth")
    for _ in range(10):
        response = client.post("/login", data={"username": "ana", "password": "guess-1234"})
        assert response.status_code == 401
    blocked = client.post("/login", data={"username": "ANA", "password": "agent-password"})
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    assert sign_in(client, "sam", "supervisor-password") == "/review"  # another user: open
    clock.now += 61
    assert sign_in(client, "ana", "agent-password") == "/agent"
    assert "sign-in failed for 'ana'" in caplog.text and "guess-1234" not in caplog.text


def test_the_limiter_forgets_failures_after_the_window_and_on_success() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        limiter.failed("ana", "10.0.0.1")
    assert limiter.retry_after("ANA", "10.0.0.1") == 60
    assert limiter.retry_after("ana", "10.0.0.2") == 0
    clock.now += 30
    assert limiter.retry_after("ana", "10.0.0.1") == 30
    limiter.succeeded("ana", "10.0.0.1")
    assert limiter.retry_after("ana", "10.0.0.1") == 0


# ---------------------------------------------------------------------- iva users
def users_cli(argv: list[str], stdin: str = "") -> int:
    parser = argparse.ArgumentParser(prog="iva")
    add_users_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["users", *argv])
    import sys

    old, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        return int(args.func(args))
    finally:
        sys.stdin = old


def test_iva_users_adds_lists_changes_and_disables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("IVA_CONFIG", raising=False)
    monkeypatch.setenv("IVA_DATA_DIR", str(tmp_path / "data"))
    assert users_cli(["add", "Ana", "--password-stdin"], "agent-password\n") == 0
    assert users_cli(["add", "sam", "--role", "supervisor", "--password-stdin"],
                     "supervisor-password\n") == 0
    assert users_cli(["add", "ana", "--password-stdin"], "another-password\n") == 1
    assert "already exists" in capsys.readouterr().err
    assert users_cli(["add", "bob", "--password-stdin"], "short\n") == 1
    assert users_cli(["list"]) == 0
    listing = capsys.readouterr().out
    assert "Ana" in listing and "supervisor" in listing and "bob" not in listing
    assert users_cli(["passwd", "ana", "--password-stdin"], "a-new-password\n") == 0
    assert users_cli(["passwd", "nobody", "--password-stdin"], "a-new-password\n") == 1
    assert users_cli(["disable", "ANA"]) == 0
    assert users_cli(["list"]) == 0
    assert "disabled" in capsys.readouterr().out
    with UserStore(tmp_path / "data" / "users.sqlite3") as store:
        assert store.get("ana") is not None and store.get("ana").disabled  # type: ignore[union-attr]
        store.enable("ana")
        assert store.verify("ana", "a-new-password") is not None
        assert store.verify("ana", "agent-password") is None


def test_iva_users_reports_bad_configuration_with_exit_code_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IVA_PORT", "not-a-port")
    assert users_cli(["list"]) == 2
    assert "bad configuration" in capsys.readouterr().err
