"""SqliteBackend: customers, orders, memberships and the audit trail in one SQLite file.

The embedded default and the demo: a new file is created with the schema and seeded with the
demo company's data (:mod:`kb.backend.demo`); an existing file is used as it is. A change and
its audit entry are committed in one transaction, so neither exists without the other.

The backend keeps a ``today`` (by default the demo's :data:`~kb.backend.demo.DEMO_TODAY`):
the day a pause starts from and a paused membership's cancellation ends on. One connection
serves every thread; a lock makes each method atomic.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from kb.backend.demo import DEMO_CUSTOMERS, DEMO_MEMBERSHIPS, DEMO_ORDERS, DEMO_TODAY
from kb.backend.model import (
    MAX_PAUSE_MONTHS,
    ActionRejectedError,
    AuditEntry,
    BackendError,
    Customer,
    Membership,
    NotFoundError,
    Order,
    add_months,
    canonical_order_id,
    phone_digits,
)

__all__ = ["SqliteBackend", "cancelled", "paused"]

logger = logging.getLogger(__name__)

_SCHEMA: Final = (
    "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL,"
    " phone_digits TEXT NOT NULL, postcode TEXT NOT NULL)",
    "CREATE INDEX customers_by_phone ON customers (phone_digits)",
    "CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers (id),"
    " item TEXT NOT NULL, item_type TEXT NOT NULL, status TEXT NOT NULL,"
    " status_detail TEXT NOT NULL, ordered_on TEXT NOT NULL, delivered_on TEXT,"
    " expected_on TEXT, expected_by TEXT, activated INTEGER NOT NULL)",
    "CREATE INDEX orders_by_customer ON orders (customer_id, ordered_on)",
    "CREATE TABLE memberships (customer_id TEXT PRIMARY KEY REFERENCES customers (id),"
    " plan TEXT NOT NULL, status TEXT NOT NULL, renews_on TEXT, ends_on TEXT, paused_until TEXT)",
    "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL,"
    " action TEXT NOT NULL, details TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX audit_by_call ON audit (call_id, id)",
)
_SCHEMA_VERSION: Final = 1
_ORDER_COLUMNS: Final = ("id, customer_id, item, item_type, status, status_detail, ordered_on,"
                         " delivered_on, expected_on, expected_by, activated")


def paused(membership: Membership, months: int, *, today: date) -> Membership:
    """``membership`` paused from ``today`` for ``months``; billing resumes when it ends."""
    if not 1 <= months <= MAX_PAUSE_MONTHS:
        raise ActionRejectedError(f"a pause lasts 1 to {MAX_PAUSE_MONTHS} months, not {months}")
    if membership.status != "active":
        raise ActionRejectedError(f"cannot pause a {membership.status} membership")
    until = add_months(today, months)
    return replace(membership, status="paused", paused_until=until, renews_on=until)


def cancelled(membership: Membership, *, today: date) -> Membership:
    """``membership`` cancelled: it ends with the current billing period (today when paused)."""
    if membership.status == "cancelled":
        raise ActionRejectedError("the membership is already cancelled")
    ends_on = membership.renews_on if membership.status == "active" else today
    return replace(membership, status="cancelled", ends_on=ends_on or today, renews_on=None,
                   paused_until=None)


class SqliteBackend:
    """The :class:`~kb.backend.model.Backend` on a SQLite file (see the module docstring)."""

    def __init__(self, path: str | Path, *, today: date = DEMO_TODAY, seed: bool = True) -> None:
        self.path = Path(path)
        self.today = today
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            self._create(seed=seed)
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open the backend database {self.path}: {exc}") from exc

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _create(self, *, seed: bool) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise BackendError(f"{self.path} has schema version {version}, newer than this code")
        if version == _SCHEMA_VERSION:
            return
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            if seed:
                for customer in DEMO_CUSTOMERS:
                    self._insert_customer(db, customer)
                for order in DEMO_ORDERS:
                    self._insert_order(db, order)
                for membership in DEMO_MEMBERSHIPS:
                    self._write_membership(db, membership)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        logger.info("created the backend database %s (seeded: %s)", self.path, seed)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # --- writing records (also for tests and tools that load other data) ----------------------

    def add_customer(self, customer: Customer) -> None:
        with self._lock, self._transaction() as db:
            self._insert_customer(db, customer)

    def add_order(self, order: Order) -> None:
        with self._lock, self._transaction() as db:
            self._insert_order(db, order)

    def put_membership(self, membership: Membership) -> None:
        with self._lock, self._transaction() as db:
            self._write_membership(db, membership)

    @staticmethod
    def _insert_customer(db: sqlite3.Connection, c: Customer) -> None:
        db.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                   (c.id, c.name, c.phone, phone_digits(c.phone), c.postcode))

    @staticmethod
    def _insert_order(db: sqlite3.Connection, o: Order) -> None:
        db.execute(
            f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (o.id, o.customer_id, o.item, o.item_type, o.status, o.status_detail,
             o.ordered_on.isoformat(), _iso(o.delivered_on), _iso(o.expected_on), o.expected_by,
             int(o.activated)),
        )

    @staticmethod
    def _write_membership(db: sqlite3.Connection, m: Membership) -> None:
        db.execute(
            "INSERT OR REPLACE INTO memberships VALUES (?, ?, ?, ?, ?, ?)",
            (m.customer_id, m.plan, m.status, _iso(m.renews_on), _iso(m.ends_on),
             _iso(m.paused_until)),
        )

    # --- the Backend interface --------------------------------------------------------------------

    def customer_by_phone(self, phone: str) -> Customer | None:
        digits = phone_digits(phone)
        if not digits:
            return None
        rows = self._query("SELECT id, name, phone, postcode FROM customers WHERE phone_digits = ?",
                           (digits,))
        if len(rows) > 1:  # a shared number identifies nobody
            logger.warning("caller ID matches %d customers; not identifying the caller", len(rows))
            return None
        return Customer(*rows[0]) if rows else None

    def customer(self, customer_id: str) -> Customer | None:
        rows = self._query("SELECT id, name, phone, postcode FROM customers WHERE id = ?",
                           (customer_id,))
        return Customer(*rows[0]) if rows else None

    def order(self, order_id: str) -> Order | None:
        rows = self._query(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?",
                           (canonical_order_id(order_id),))
        return _order(rows[0]) if rows else None

    def orders_of(self, customer_id: str) -> list[Order]:
        self._require_customer(customer_id)
        rows = self._query(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE customer_id = ? ORDER BY ordered_on, id",
            (customer_id,),
        )
        return [_order(row) for row in rows]

    def membership(self, customer_id: str) -> Membership | None:
        self._require_customer(customer_id)
        rows = self._query("SELECT * FROM memberships WHERE customer_id = ?", (customer_id,))
        return _membership(rows[0]) if rows else None

    def pause_membership(self, customer_id: str, months: int, *, call_id: str) -> Membership:
        return self._change(customer_id, call_id, "membership.paused",
                            lambda m: paused(m, months, today=self.today), {"months": months})

    def cancel_membership(self, customer_id: str, *, call_id: str) -> Membership:
        return self._change(customer_id, call_id, "membership.cancelled",
                            lambda m: cancelled(m, today=self.today), {})

    def audit(self, call_id: str, action: str, details: dict[str, Any]) -> None:
        with self._lock, self._transaction() as db:
            self._write_audit(db, call_id, action, details)

    def audit_log(self, call_id: str | None = None) -> list[AuditEntry]:
        if call_id is None:
            rows = self._query("SELECT call_id, action, details, at FROM audit ORDER BY id", ())
        else:
            rows = self._query(
                "SELECT call_id, action, details, at FROM audit WHERE call_id = ? ORDER BY id",
                (call_id,),
            )
        return [AuditEntry(r["call_id"], r["action"], json.loads(r["details"]),
                           datetime.fromisoformat(r["at"])) for r in rows]

    # --- internals --------------------------------------------------------------------------------

    def _change(self, customer_id: str, call_id: str, action: str,
                change: Callable[[Membership], Membership], details: dict[str, Any]) -> Membership:
        with self._lock, self._transaction() as db:
            row = db.execute("SELECT * FROM memberships WHERE customer_id = ?",
                             (customer_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"customer {customer_id!r} has no membership")
            before = _membership(row)
            after = change(before)
            self._write_membership(db, after)
            self._write_audit(db, call_id, action, {
                "customer_id": customer_id, **details, "status_before": before.status,
                **{k: v for k, v in after.to_json().items() if k in _AUDITED and v is not None},
            })
        logger.info("call %s: %s for customer %s", call_id, action, customer_id)
        return after

    @staticmethod
    def _write_audit(db: sqlite3.Connection, call_id: str, action: str,
                     details: dict[str, Any]) -> None:
        try:
            encoded = json.dumps(details, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise BackendError(f"audit details must be JSON: {exc}") from None
        db.execute("INSERT INTO audit (call_id, action, details, at) VALUES (?, ?, ?, ?)",
                   (call_id, action, encoded, datetime.now(UTC).isoformat()))

    def _require_customer(self, customer_id: str) -> None:
        if not self._query("SELECT 1 FROM customers WHERE id = ?", (customer_id,)):
            raise NotFoundError(f"no customer {customer_id!r}")

    def _query(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise BackendError(f"backend database query failed: {exc}") from exc


_AUDITED: Final = frozenset({"status", "renews_on", "ends_on", "paused_until"})


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error (sqlite3 errors become
    :class:`BackendError`; the backend's own errors pass through unchanged)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise BackendError(f"backend database unavailable: {exc}") from exc
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as failure:
                self._rollback()
                raise BackendError(f"backend database write failed: {failure}") from failure
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise BackendError(f"backend database write failed: {exc}") from exc

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:  # no transaction left to roll back
            pass


def _order(row: sqlite3.Row) -> Order:
    return Order(
        id=row["id"], customer_id=row["customer_id"], item=row["item"],
        item_type=row["item_type"], status=row["status"],
        ordered_on=date.fromisoformat(row["ordered_on"]), status_detail=row["status_detail"],
        delivered_on=_day(row["delivered_on"]), expected_on=_day(row["expected_on"]),
        expected_by=row["expected_by"], activated=bool(row["activated"]),
    )


def _membership(row: sqlite3.Row) -> Membership:
    return Membership(row["customer_id"], row["plan"], row["status"], _day(row["renews_on"]),
                      _day(row["ends_on"]), _day(row["paused_until"]))


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
