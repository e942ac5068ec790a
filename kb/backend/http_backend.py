"""HttpBackend: the backend interface over a CRM/OMS REST API (contract: ``docs/backend-api.md``).

Synchronous, standard library only (``urllib.request``), one request per call with a short
timeout: a caller is waiting on the line, so a slow backend is an unavailable one. Nothing is
retried here; the flows hand the call to a human when the backend fails.

HTTP outcomes map onto the package's errors: 404 → :class:`NotFoundError` (or ``None`` for a
single lookup), 400/409/422 → :class:`ActionRejectedError`, 5xx, timeouts and network errors →
:class:`BackendUnavailableError`, any other status → :class:`BackendError`, a body that breaks
the contract → :class:`MalformedResponseError`.

A change (pause, cancel) is followed by ``POST /audit``. If that audit write fails the change
has still happened, so the error is logged (with the call id) rather than raised: telling the
caller "that failed" about a cancellation that went through would be worse.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Final

from kb.backend.model import (
    ActionRejectedError,
    AuditEntry,
    BackendError,
    BackendUnavailableError,
    Customer,
    MalformedResponseError,
    Membership,
    NotFoundError,
    Order,
    canonical_order_id,
)

__all__ = ["HttpBackend"]

logger = logging.getLogger(__name__)

_REJECTED: Final = frozenset({400, 409, 422})
_USER_AGENT: Final = "iva-backend/0.1"


class HttpBackend:
    """The :class:`~kb.backend.model.Backend` of a CRM/OMS reached at ``base_url``.

    ``token``, when given, is sent as ``Authorization: Bearer <token>``; ``timeout`` (seconds)
    bounds connecting and each read.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 3.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"the backend URL must be http(s)://host[:port][/path], not {base_url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token

    def __repr__(self) -> str:  # never show the token
        return f"HttpBackend({self.base_url!r}, timeout={self.timeout})"

    # --- lookups -------------------------------------------------------------------------------

    def customer_by_phone(self, phone: str) -> Customer | None:
        found = _list(self._request("GET", "/customers", query={"phone": phone}), "customers")
        if len(found) > 1:  # a shared number identifies nobody
            logger.warning("caller ID matches %d customers; not identifying the caller", len(found))
            return None
        return Customer.from_json(_object(found[0])) if found else None

    def customer(self, customer_id: str) -> Customer | None:
        try:
            body = self._request("GET", f"/customers/{_seg(customer_id)}")
        except NotFoundError:
            return None
        return Customer.from_json(_object(body))

    def order(self, order_id: str) -> Order | None:
        try:
            body = self._request("GET", f"/orders/{_seg(canonical_order_id(order_id))}")
        except NotFoundError:
            return None
        return Order.from_json(_object(body))

    def orders_of(self, customer_id: str) -> list[Order]:
        body = self._request("GET", f"/customers/{_seg(customer_id)}/orders")
        return [Order.from_json(_object(item)) for item in _list(body, "orders")]

    def membership(self, customer_id: str) -> Membership | None:
        body = _object(self._request("GET", f"/customers/{_seg(customer_id)}/membership"))
        if "membership" not in body:
            raise MalformedResponseError("membership reply: 'membership' is missing")
        found = body["membership"]
        return None if found is None else Membership.from_json(_object(found))

    # --- changes ---------------------------------------------------------------------------------

    def pause_membership(self, customer_id: str, months: int, *, call_id: str) -> Membership:
        body = self._request("POST", f"/customers/{_seg(customer_id)}/membership/pause",
                             body={"months": months, "call_id": call_id})
        membership = Membership.from_json(_object(body))
        self._audit_change(call_id, "membership.paused", customer_id, membership,
                           {"months": months})
        return membership

    def cancel_membership(self, customer_id: str, *, call_id: str) -> Membership:
        body = self._request("POST", f"/customers/{_seg(customer_id)}/membership/cancel",
                             body={"call_id": call_id})
        membership = Membership.from_json(_object(body))
        self._audit_change(call_id, "membership.cancelled", customer_id, membership, {})
        return membership

    def audit(self, call_id: str, action: str, details: dict[str, Any]) -> None:
        entry = AuditEntry(call_id, action, dict(details))
        self._request("POST", "/audit", body=entry.to_json())

    def audit_log(self, call_id: str | None = None) -> list[AuditEntry]:
        query = None if call_id is None else {"call_id": call_id}
        return [AuditEntry.from_json(_object(item))
                for item in _list(self._request("GET", "/audit", query=query), "entries")]

    def _audit_change(self, call_id: str, action: str, customer_id: str,
                      membership: Membership, details: dict[str, Any]) -> None:
        state = {k: v for k, v in membership.to_json().items()
                 if k in ("status", "renews_on", "ends_on", "paused_until") and v is not None}
        try:
            self.audit(call_id, action, {"customer_id": customer_id, **details, **state})
        except BackendError as exc:
            logger.error("call %s: %s done but its audit entry was not written: %s",
                         call_id, action, exc)

    # --- the wire --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        where = f"{method} {path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _error_for(exc, where) from None
        except urllib.error.URLError as exc:
            raise BackendUnavailableError(f"{where}: backend unreachable: {exc.reason}") from exc
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise BackendUnavailableError(f"{where}: {type(exc).__name__}: {exc}") from exc
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedResponseError(f"{where}: the reply is not JSON: {exc}") from None


def _error_for(exc: urllib.error.HTTPError, where: str) -> BackendError:
    """The package's error for an HTTP error status, with the backend's own message if any."""
    try:
        detail = json.loads(exc.read() or b"{}").get("error", "")
    except (ValueError, AttributeError, OSError):
        detail = ""
    finally:
        exc.close()
    message = f"{where}: HTTP {exc.code}" + (f": {detail}" if detail else "")
    if exc.code == 404:
        return NotFoundError(message)
    if exc.code in _REJECTED:
        return ActionRejectedError(message)
    if exc.code >= 500:
        return BackendUnavailableError(message)
    return BackendError(message)


def _seg(value: str) -> str:
    """One path segment, percent-encoded (an id may not smuggle in a "/")."""
    return urllib.parse.quote(value, safe="")


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponseError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _list(body: Any, key: str) -> list[Any]:
    value = _object(body).get(key)
    if not isinstance(value, list):
        raise MalformedResponseError(f"expected {key!r} to be a JSON list")
    return value
