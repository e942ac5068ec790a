"""The customer, order and membership backend the flows read and change.

One interface, :class:`Backend`, two implementations:

- :class:`SqliteBackend` keeps everything in one SQLite file, created and seeded with the demo
  company's data (:mod:`kb.backend.demo`) on first use; the embedded default.
- :class:`HttpBackend` calls a CRM/OMS over REST; the contract it expects is in
  ``docs/backend-api.md``.

Every change (pausing or cancelling a membership) writes an entry to the audit trail tied to
the call id; :meth:`Backend.audit` records anything else a flow wants kept.

Exceptions::

    BackendError                  the backend failed; the base of every error below
     +-- NotFoundError            no such customer, order or membership (a LookupError)
     +-- ActionRejectedError      a change the record's state or the policy does not allow
     +-- BackendUnavailableError  timeout, unreachable, or HTTP 5xx
     +-- MalformedResponseError   a reply that does not follow the contract

    backend = SqliteBackend("var/backend.sqlite3")
    jamie = backend.customer_by_phone("+15550100")
    backend.cancel_membership(jamie.id, call_id="CA123").ends_on   # date(2026, 5, 31)
"""

from kb.backend.demo import DEMO_TODAY
from kb.backend.http_backend import HttpBackend
from kb.backend.model import (
    ITEM_TYPES,
    MAX_PAUSE_MONTHS,
    ORDER_STATUSES,
    ActionRejectedError,
    AuditEntry,
    Backend,
    BackendError,
    BackendUnavailableError,
    Customer,
    ItemType,
    MalformedResponseError,
    Membership,
    MembershipStatus,
    NotFoundError,
    Order,
    OrderStatus,
    add_months,
    canonical_order_id,
    phone_digits,
)
from kb.backend.sqlite_backend import SqliteBackend

__all__ = [
    "DEMO_TODAY", "ITEM_TYPES", "MAX_PAUSE_MONTHS", "ORDER_STATUSES", "ActionRejectedError",
    "AuditEntry", "Backend", "BackendError", "BackendUnavailableError", "Customer", "HttpBackend",
    "ItemType", "MalformedResponseError", "Membership", "MembershipStatus", "NotFoundError",
    "Order", "OrderStatus", "SqliteBackend", "add_months", "canonical_order_id", "phone_digits",
]
