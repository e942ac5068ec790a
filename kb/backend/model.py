"""The backend's records, its interface and its errors, shared by every implementation.

Records are frozen dataclasses with ``to_json()`` / ``from_json()`` in the shapes of the REST
contract (``docs/backend-api.md``): dates are ISO-8601 strings (``"2026-05-08"``) or ``null``,
audit times are ISO-8601 UTC date-times.

Exceptions::

    BackendError                  the backend failed; the base of every error below
     +-- NotFoundError            no customer, order or membership with this id (a LookupError)
     +-- ActionRejectedError      the backend refused a change: already cancelled, a pause of
     |                            more than 3 months, ... (a ValueError)
     +-- BackendUnavailableError  the backend did not answer in time, or answered 5xx
     +-- MalformedResponseError   the backend answered something that is not the contract
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal, Protocol, get_args

__all__ = [
    "ITEM_TYPES", "MAX_PAUSE_MONTHS", "ORDER_STATUSES", "ActionRejectedError", "AuditEntry",
    "Backend", "BackendError", "BackendUnavailableError", "Customer", "ItemType",
    "MalformedResponseError", "Membership", "MembershipStatus", "NotFoundError", "Order",
    "OrderStatus", "add_months", "canonical_order_id", "phone_digits",
]

ItemType = Literal["electronics", "limited_edition", "digital"]
OrderStatus = Literal["processing", "shipped", "delayed", "delivered"]
MembershipStatus = Literal["active", "paused", "cancelled"]
ITEM_TYPES: Final = frozenset(get_args(ItemType))
ORDER_STATUSES: Final = frozenset(get_args(OrderStatus))
MEMBERSHIP_STATUSES: Final = frozenset(get_args(MembershipStatus))
MAX_PAUSE_MONTHS: Final = 3  # Brightline Plus can be paused for up to 3 months


class BackendError(Exception):
    """The customer/order backend failed; the base of every error this package raises."""


class NotFoundError(BackendError, LookupError):
    """No customer, order or membership has this id."""


class ActionRejectedError(BackendError, ValueError):
    """The backend refused a change that does not fit the record's state or the policy."""


class BackendUnavailableError(BackendError):
    """The backend timed out, could not be reached, or failed on its side (HTTP 5xx)."""


class MalformedResponseError(BackendError):
    """The backend's answer does not follow the contract (bad JSON, a missing field, ...)."""


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    phone: str
    postcode: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "phone": self.phone, "postcode": self.postcode}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Customer:
        return cls(_text(data, "id"), _text(data, "name"), _text(data, "phone"),
                   _text(data, "postcode"))


@dataclass(frozen=True, slots=True)
class Order:
    """One order. ``expected_on`` (+ ``expected_by``, a time of day such as "3 PM") is the
    promised delivery of an order not yet delivered; ``activated`` is for digital items."""

    id: str
    customer_id: str
    item: str
    item_type: ItemType
    status: OrderStatus
    ordered_on: date
    status_detail: str = ""
    delivered_on: date | None = None
    expected_on: date | None = None
    expected_by: str | None = None
    activated: bool = False

    @property
    def pending(self) -> bool:
        """Not delivered yet: the caller is still waiting for it."""
        return self.status != "delivered"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "customer_id": self.customer_id, "item": self.item,
            "item_type": self.item_type, "status": self.status,
            "status_detail": self.status_detail, "ordered_on": self.ordered_on.isoformat(),
            "delivered_on": _iso(self.delivered_on), "expected_on": _iso(self.expected_on),
            "expected_by": self.expected_by, "activated": self.activated,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Order:
        item_type = _text(data, "item_type")
        status = _text(data, "status")
        if item_type not in ITEM_TYPES or status not in ORDER_STATUSES:
            raise MalformedResponseError(
                f"order: unknown item_type {item_type!r} or status {status!r}")
        expected_by = data.get("expected_by")
        activated = data.get("activated", False)
        if expected_by is not None and not isinstance(expected_by, str):
            raise MalformedResponseError("order: expected_by must be a string or null")
        if not isinstance(activated, bool):
            raise MalformedResponseError("order: activated must be a boolean")
        ordered_on = _date(data, "ordered_on")
        if ordered_on is None:
            raise MalformedResponseError("order: 'ordered_on' is missing")
        return cls(
            id=_text(data, "id"), customer_id=_text(data, "customer_id"), item=_text(data, "item"),
            item_type=item_type, status=status, ordered_on=ordered_on,  # type: ignore[arg-type]
            status_detail=str(data.get("status_detail") or ""),
            delivered_on=_date(data, "delivered_on"), expected_on=_date(data, "expected_on"),
            expected_by=expected_by, activated=activated,
        )


@dataclass(frozen=True, slots=True)
class Membership:
    """A Brightline Plus membership. ``renews_on`` is the end of the current billing period
    of an active one; ``ends_on`` is set once cancelled; ``paused_until`` while paused."""

    customer_id: str
    plan: str
    status: MembershipStatus
    renews_on: date | None = None
    ends_on: date | None = None
    paused_until: date | None = None

    def benefits_on(self, day: date) -> bool:
        """Whether the member enjoys Plus benefits on ``day`` (a paused membership does not)."""
        if self.status == "active":
            return True
        return self.status == "cancelled" and self.ends_on is not None and day <= self.ends_on

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id, "plan": self.plan, "status": self.status,
            "renews_on": _iso(self.renews_on), "ends_on": _iso(self.ends_on),
            "paused_until": _iso(self.paused_until),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Membership:
        status = _text(data, "status")
        if status not in MEMBERSHIP_STATUSES:
            raise MalformedResponseError(f"membership: unknown status {status!r}")
        return cls(
            customer_id=_text(data, "customer_id"), plan=_text(data, "plan"),
            status=status,  # type: ignore[arg-type]
            renews_on=_date(data, "renews_on"), ends_on=_date(data, "ends_on"),
            paused_until=_date(data, "paused_until"),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail: what was done during which call, and when (UTC)."""

    call_id: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "action": self.action, "details": self.details,
                "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        details = data.get("details", {})
        if not isinstance(details, dict):
            raise MalformedResponseError("audit entry: 'details' must be an object")
        try:
            at = datetime.fromisoformat(_text(data, "at"))
        except ValueError as exc:
            raise MalformedResponseError(f"audit entry: bad 'at': {exc}") from None
        return cls(_text(data, "call_id"), _text(data, "action"), details,
                   at if at.tzinfo else at.replace(tzinfo=UTC))


class Backend(Protocol):
    """Customers, orders and memberships: what the flows read and change.

    Lookups answer ``None`` when the one thing asked for does not exist; asking about the
    orders or membership of a customer who does not exist raises :class:`NotFoundError`.
    ``membership()`` is ``None`` for a customer without Plus. Every change writes an audit
    entry tied to ``call_id``.
    """

    def customer_by_phone(self, phone: str) -> Customer | None: ...
    def customer(self, customer_id: str) -> Customer | None: ...
    def order(self, order_id: str) -> Order | None: ...
    def orders_of(self, customer_id: str) -> list[Order]: ...
    def membership(self, customer_id: str) -> Membership | None: ...
    def pause_membership(self, customer_id: str, months: int, *, call_id: str) -> Membership: ...
    def cancel_membership(self, customer_id: str, *, call_id: str) -> Membership: ...
    def audit(self, call_id: str, action: str, details: dict[str, Any]) -> None: ...
    def audit_log(self, call_id: str | None = None) -> list[AuditEntry]: ...


# --- helpers shared by the implementations ------------------------------------------------------

_ORDER_ID = re.compile(r"(?:ord(?:er)?)?[\s#:-]*(\d{1,12})", re.IGNORECASE)


def canonical_order_id(text: str) -> str:
    """"ORD-1001", "ord1001", "1001" and "order #1001" all become "ORD-1001"; anything else is
    returned stripped and upper-cased (it will simply not be found)."""
    match = _ORDER_ID.fullmatch(text.strip())
    return f"ORD-{match.group(1)}" if match else text.strip().upper()


def phone_digits(phone: str) -> str:
    """The digits of a phone number, as caller IDs are matched ("+1 555-0100" → "15550100")."""
    return re.sub(r"\D", "", phone)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the last day of that month when it is shorter."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"{key!r} must be a non-empty string, got {value!r}")
    return value


def _date(data: Mapping[str, Any], key: str) -> date | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise MalformedResponseError(
            f"{key!r} must be an ISO date or null, got {value!r}") from None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
