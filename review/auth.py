"""Who is asking: people signed in with a session cookie, programs with a bearer token.

- People sign in at ``GET/POST /login`` (users of ``review.users.UserStore``) and get the
  ``iva_session`` cookie (HttpOnly, SameSite=Lax, signed, ``review.sessions``); ``POST /logout``
  ends it; ``GET /api/me`` says who is signed in.
- Programs send ``Authorization: Bearer <IVA_API_TOKEN>``; such a caller has the supervisor role.
  With no token configured, bearer tokens are refused.
- ``protect_api(app, auth)`` guards every ``/api/*`` route and WebSocket, so routers need not
  know about authentication; ``auth.require(role)`` is the dependency for pages and for routes
  that need a role: 401 JSON (``WWW-Authenticate: Bearer``) on API paths, a 303 to
  ``/login?next=...`` on pages, 403 for the wrong role. ``auth.authenticate_websocket`` is for
  WebSocket routes (cookie, bearer header, or the API token as a ``token`` query parameter).

Roles: a supervisor may do everything an agent may. Cookies sent with a state-changing request
or a WebSocket handshake from another origin (the ``Origin`` header names another host) are
ignored: SameSite=Lax already stops other sites, this also stops other ports of the same host.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Form,
    HTTPException,
    Query,
    Request,
    WebSocket,
)
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from review.sessions import LoginLimiter, SessionSigner
from review.users import MAX_PASSWORD_LENGTH, ROLES, UserStore

__all__ = ["SESSION_COOKIE", "Authenticator", "Principal", "auth_router", "protect_api",
           "safe_next"]

log = logging.getLogger("iva.auth")

SESSION_COOKIE: Final = "iva_session"
TOKEN_PRINCIPAL: Final = "api-token"
_RANK: Final = {"agent": 1, "supervisor": 2}
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
                               " form-action 'self'; frame-ancestors 'none'",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: a signed-in person (``user``) or a program (``token``)."""

    name: str
    role: str
    kind: Literal["user", "token"] = "user"

    def has_role(self, role: str | None) -> bool:
        """Whether this principal may act as ``role`` (None: anyone signed in)."""
        return role is None or _RANK.get(self.role, 0) >= _RANK[role]

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role, "kind": self.kind}


class Authenticator:
    """Checks cookies and tokens against the user store; one per app."""

    def __init__(self, users: UserStore, *, secret: bytes, api_token: str | None = None,
                 session_hours: float = 12.0, limiter: LoginLimiter | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.users = users
        self.sessions = SessionSigner(secret, max_age_s=session_hours * 3600, clock=clock)
        self.limiter = limiter or LoginLimiter()
        self._api_token = api_token.encode("utf-8") if api_token else None

    # ------------------------------------------------------------------ checks
    def authenticate(self, connection: HTTPConnection) -> Principal | None:
        """The principal of a request or WebSocket handshake, or None.

        A request with ``Authorization: Bearer`` is judged by its token alone.
        """
        scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return self.token_principal(credentials.strip())
        cookie = connection.cookies.get(SESSION_COOKIE)
        if cookie is None:
            return None
        principal = self.session_principal(cookie)
        if principal is not None and _needs_same_origin(connection) \
                and not _same_origin(connection):
            log.warning("session of %s sent from another origin (%s) to %s; ignored",
                        principal.name, connection.headers.get("origin"), connection.url.path)
            return None
        return principal

    def token_principal(self, token: str) -> Principal | None:
        """The program principal if ``token`` is the API token; always None without one."""
        if self._api_token is None or not token:
            return None
        if not hmac.compare_digest(token.encode("utf-8"), self._api_token):
            return None
        return Principal(TOKEN_PRINCIPAL, "supervisor", "token")

    def session_principal(self, cookie: str) -> Principal | None:
        """The user of a valid session cookie who still exists, is enabled and whose
        password has not changed since the cookie was issued."""
        claims = self.sessions.read(cookie)
        if claims is None:
            return None
        user = self.users.get(claims.username)
        if user is None or user.disabled or claims.issued_at < user.sessions_since:
            return None
        return Principal(user.username, user.role, "user")

    async def authenticate_websocket(self, websocket: WebSocket,
                                     role: str | None = None) -> Principal | None:
        """The principal of a WebSocket handshake (cookie, bearer header, or the API token as
        ``?token=``), or None when there is none or it lacks ``role``; call before accept().

        A token in the URL may end up in access logs: prefer the header where the client
        can send one (browsers cannot, and use the cookie).
        """
        principal: Principal | None = websocket.scope.get("state", {}).get("principal")
        if principal is None:
            token = websocket.query_params.get("token")
            principal = (self.token_principal(token) if token is not None
                         else self.authenticate(websocket))
        return principal if principal is not None and principal.has_role(role) else None

    def require(self, role: str | None = None) -> Callable[[Request], Awaitable[Principal]]:
        """A FastAPI dependency returning the Principal, for API routes and pages alike."""
        if role is not None and role not in _RANK:
            raise ValueError(f"role must be one of {', '.join(ROLES)} or None, got {role!r}")

        async def signed_in(request: Request) -> Principal:
            principal = getattr(request.state, "principal", None) or self.authenticate(request)
            if principal is None:
                if is_api_path(request.url.path):
                    raise HTTPException(status_code=401, detail="authentication required",
                                        headers={"WWW-Authenticate": "Bearer"})
                raise HTTPException(status_code=303, detail="sign in first",
                                    headers={"Location": login_url(request)})
            if not principal.has_role(role):
                raise HTTPException(status_code=403, detail=f"the {role} role is required")
            return principal

        return signed_in


class ApiGuard:
    """ASGI middleware: every ``/api`` request and WebSocket needs a principal (any role)."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            principal = await self.auth.authenticate_websocket(WebSocket(scope, receive, send))
        else:
            principal = self.auth.authenticate(HTTPConnection(scope))
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect; closing now refuses the handshake (HTTP 403)
            await WebSocketClose(code=1008, reason="authentication required")(scope, receive, send)
        else:
            await JSONResponse({"detail": "authentication required"}, status_code=401,
                               headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)


def protect_api(app: FastAPI, auth: Authenticator) -> None:
    """Require a signed-in person or the API token on every ``/api/*`` route of ``app``."""
    app.add_middleware(ApiGuard, auth=auth)


def auth_router(auth: Authenticator, *, agent_home: str = "/agent",
                supervisor_home: str = "/review") -> APIRouter:
    """``GET/POST /login``, ``POST /logout`` and ``GET /api/me``."""
    router = APIRouter(tags=["authentication"])
    template = string.Template(
        resources.files("review").joinpath("static/login.html").read_text("utf-8"))
    me = Depends(auth.require())

    def page(status: int, *, error: str = "", next_url: str = "", username: str = "",
             headers: dict[str, str] | None = None) -> HTMLResponse:
        body = template.substitute(
            error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
            next=html.escape(next_url), username=html.escape(username))
        return HTMLResponse(body, status_code=status, headers={**_PAGE_HEADERS, **(headers or {})})

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(next_url: Annotated[str, Query(alias="next")] = "") -> HTMLResponse:
        return page(200, next_url=safe_next(next_url) or "")

    @router.post("/login")
    async def login(request: Request, username: Annotated[str, Form()] = "",
                    password: Annotated[str, Form()] = "",
                    next_url: Annotated[str, Form(alias="next")] = "") -> Response:
        username, next_url = username.strip()[:256], safe_next(next_url) or ""
        if not _same_origin(request):
            return page(403, error="This sign-in form came from another site.",
                        next_url=next_url)
        address = request.client.host if request.client else "unknown"
        wait = auth.limiter.retry_after(username, address)
        if wait > 0:
            log.warning("sign-in for %r from %s refused: too many failures", username, address)
            return page(429, error=f"Too many failed sign-ins. Try again in {int(wait) + 1}"
                        " seconds.", next_url=next_url, username=username,
                        headers={"Retry-After": str(int(wait) + 1)})
        user = None
        if username and password and len(password) <= MAX_PASSWORD_LENGTH:
            user = await asyncio.to_thread(auth.users.verify, username, password)
        if user is None:
            auth.limiter.failed(username, address)
            log.warning("sign-in failed for %r from %s", username, address)
            return page(401, error="Wrong username or password.", next_url=next_url,
                        username=username)
        auth.limiter.succeeded(username, address)
        log.info("%s (%s) signed in from %s", user.username, user.role, address)
        home = supervisor_home if user.role == "supervisor" else agent_home
        response = RedirectResponse(next_url or home, status_code=303)
        response.set_cookie(SESSION_COOKIE, auth.sessions.issue(user.username, user.role),
                            max_age=int(auth.sessions.max_age_s), path="/", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        if _same_origin(request):
            response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                                   secure=request.url.scheme == "https")
        return response

    @router.get("/api/me")
    async def whoami(principal: Principal = me) -> dict[str, str]:
        return principal.to_json()

    return router


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (``/agent?x=1``), else None: never another host."""
    if not value or len(value) > 2048 or not value.startswith("/") \
            or value.startswith(("//", "/\\")) or "\\" in value \
            or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return None
    return value


def login_url(connection: HTTPConnection) -> str:
    """``/login?next=<this path and query>``."""
    here = connection.url.path + (f"?{connection.url.query}" if connection.url.query else "")
    return "/login?" + urlencode({"next": here}) if safe_next(here) else "/login"


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _needs_same_origin(connection: HTTPConnection) -> bool:
    scope: dict[str, Any] = connection.scope  # type: ignore[assignment]
    return scope["type"] == "websocket" or scope.get("method", "GET") not in _SAFE_METHODS


def _same_origin(connection: HTTPConnection) -> bool:
    """False only when the browser says the request comes from another host (``Origin``)."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True  # not a browser, or a same-origin GET
    hosts = {connection.headers.get("host", "").lower()}
    hosts.update(h.strip().lower() for h in connection.headers.get("x-forwarded-host", "")
                 .split(",") if h.strip())
    return origin != "null" and urlsplit(origin).netloc.lower() in hosts
