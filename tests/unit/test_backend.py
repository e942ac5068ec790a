"""kb.backend: the SQLite backend on a fresh file per test, and the HTTP backend against a small
CRM/OMS served on 127.0.0.1 by ``http.server`` in a thread, checking what it is sent."""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from kb.backend import (
    DEMO_TODAY,
    ActionRejectedError,
    BackendError,
    BackendUnavailableError,
    HttpBackend,
    MalformedResponseError,
    Membership,
    NotFoundError,
    Order,
    SqliteBackend,
    add_months,
    canonical_order_id,
)
from tests.fake_crm import FakeCrm, serve_crm

pytestmark = pytest.mark.unit

JAMIE, SAM = "CUST-1", "CUST-2"


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqliteBackend]:
    with SqliteBackend(tmp_path / "var" / "backend.sqlite3") as backend:
        yield backend


# --- SqliteBackend: the demo data ----------------------------------------------------------------


def test_new_database_is_seeded_with_the_demo_customers(backend: SqliteBackend) -> None:
    jamie = backend.customer_by_phone("+15550100")
    sam = backend.customer_by_phone("+15550101")
    assert jamie is not None and (jamie.name, jamie.postcode) == ("Jamie Rivera", "43004")
    assert sam is not None and (sam.name, sam.postcode) == ("Sam Okafor", "94110")
    assert backend.customer(JAMIE) == jamie
    assert backend.customer("CUST-404") is None


def test_caller_id_matches_whatever_the_number_formatting(backend: SqliteBackend) -> None:
    for phone in ("+1 555 0100", "1-555-0100", "(1) 5550100"):
        found = backend.customer_by_phone(phone)
        assert found is not None and found.id == JAMIE
    assert backend.customer_by_phone("+15559999") is None
    assert backend.customer_by_phone("anonymous") is None


def test_a_number_shared_by_two_customers_identifies_nobody(backend: SqliteBackend) -> None:
    from kb.backend import Customer

    backend.add_customer(Customer("CUST-3", "Alex Rivera", "+1 555 0100", "43004"))
    assert backend.customer_by_phone("+15550100") is None


def test_demo_orders_have_the_statuses_of_the_demo_company(backend: SqliteBackend) -> None:
    delayed, delivered, processing, digital = (backend.order(f"ORD-100{n}") for n in range(1, 5))
    assert delayed is not None and delayed.status == "delayed"
    assert "regional logistics issue in Ohio" in delayed.status_detail
    assert (delayed.expected_on, delayed.expected_by) == (date(2026, 5, 8), "3 PM")
    assert delivered is not None and delivered.delivered_on == date(2026, 4, 28)
    assert processing is not None and processing.item_type == "limited_edition"
    assert processing.status == "processing" and processing.pending
    assert digital is not None and digital.item_type == "digital" and digital.activated
    assert DEMO_TODAY == date(2026, 5, 6)


@pytest.mark.parametrize("said", ["ORD-1001", "ord-1001", "ORD1001", "1001", " order #1001 "])
def test_order_accepts_the_order_number_in_any_written_form(
    backend: SqliteBackend, said: str
) -> None:
    order = backend.order(said)
    assert order is not None and order.id == "ORD-1001"


def test_unknown_order_is_none(backend: SqliteBackend) -> None:
    assert backend.order("ORD-9999") is None
    assert backend.order("not an order") is None


def test_orders_of_a_customer_oldest_first(backend: SqliteBackend) -> None:
    assert [o.id for o in backend.orders_of(JAMIE)] == ["ORD-1001", "ORD-1003"]
    assert [o.id for o in backend.orders_of(SAM)] == ["ORD-1004", "ORD-1002"]


def test_orders_and_membership_of_an_unknown_customer_raise_not_found(
    backend: SqliteBackend,
) -> None:
    with pytest.raises(NotFoundError):
        backend.orders_of("CUST-404")
    with pytest.raises(NotFoundError):
        backend.membership("CUST-404")


def test_jamie_is_a_plus_member_and_sam_is_not(backend: SqliteBackend) -> None:
    assert backend.membership(JAMIE) == Membership(JAMIE, "plus", "active",
                                                   renews_on=date(2026, 5, 31))
    assert backend.membership(SAM) is None


# --- SqliteBackend: changes and the audit trail ------------------------------------------------


def test_pause_starts_today_and_is_audited_with_the_call_id(backend: SqliteBackend) -> None:
    paused = backend.pause_membership(JAMIE, 2, call_id="CA-1")
    assert (paused.status, paused.paused_until) == ("paused", date(2026, 7, 6))
    assert backend.membership(JAMIE) == paused
    [entry] = backend.audit_log("CA-1")
    assert entry.action == "membership.paused"
    assert entry.details["customer_id"] == JAMIE and entry.details["months"] == 2
    assert entry.details["paused_until"] == "2026-07-06"


@pytest.mark.parametrize("months", [0, 4, -1])
def test_pause_outside_one_to_three_months_is_rejected_and_nothing_is_audited(
    backend: SqliteBackend, months: int
) -> None:
    with pytest.raises(ActionRejectedError):
        backend.pause_membership(JAMIE, months, call_id="CA-1")
    assert backend.membership(JAMIE).status == "active"  # type: ignore[union-attr]
    assert backend.audit_log() == []


def test_pausing_a_paused_membership_is_rejected(backend: SqliteBackend) -> None:
    backend.pause_membership(JAMIE, 1, call_id="CA-1")
    with pytest.raises(ActionRejectedError):
        backend.pause_membership(JAMIE, 1, call_id="CA-2")


def test_cancel_keeps_the_membership_until_the_end_of_the_billing_period(
    backend: SqliteBackend,
) -> None:
    cancelled = backend.cancel_membership(JAMIE, call_id="CA-7")
    assert cancelled.status == "cancelled"
    assert (cancelled.ends_on, cancelled.renews_on) == (date(2026, 5, 31), None)
    [entry] = backend.audit_log("CA-7")
    assert entry.action == "membership.cancelled" and entry.call_id == "CA-7"
    assert entry.details == {"customer_id": JAMIE, "status": "cancelled", "ends_on": "2026-05-31",
                             "status_before": "active"}
    assert entry.at.tzinfo is not None


def test_cancelling_twice_is_rejected(backend: SqliteBackend) -> None:
    backend.cancel_membership(JAMIE, call_id="CA-1")
    with pytest.raises(ActionRejectedError):
        backend.cancel_membership(JAMIE, call_id="CA-1")
    assert len(backend.audit_log()) == 1


def test_cancelling_a_paused_membership_ends_it_today(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "b.sqlite3", today=date(2026, 6, 2)) as backend:
        backend.pause_membership(JAMIE, 3, call_id="CA-1")
        assert backend.cancel_membership(JAMIE, call_id="CA-1").ends_on == date(2026, 6, 2)


def test_changing_a_membership_that_does_not_exist_raises_not_found(backend: SqliteBackend) -> None:
    with pytest.raises(NotFoundError):
        backend.cancel_membership(SAM, call_id="CA-1")
    with pytest.raises(NotFoundError):
        backend.pause_membership("CUST-404", 1, call_id="CA-1")


def test_audit_log_keeps_entries_in_order_per_call(backend: SqliteBackend) -> None:
    backend.audit("CA-1", "identity.verified", {"customer_id": JAMIE})
    backend.audit("CA-2", "note", {"n": 1})
    backend.audit("CA-1", "note", {"n": 2})
    assert [e.action for e in backend.audit_log("CA-1")] == ["identity.verified", "note"]
    assert [e.call_id for e in backend.audit_log()] == ["CA-1", "CA-2", "CA-1"]


def test_audit_details_must_be_json(backend: SqliteBackend) -> None:
    with pytest.raises(BackendError):
        backend.audit("CA-1", "note", {"when": object()})
    assert backend.audit_log() == []


def test_reopening_keeps_changes_and_does_not_seed_again(tmp_path: Path) -> None:
    path = tmp_path / "backend.sqlite3"
    with SqliteBackend(path) as backend:
        backend.cancel_membership(JAMIE, call_id="CA-1")
    with SqliteBackend(path) as backend:
        assert backend.membership(JAMIE).status == "cancelled"  # type: ignore[union-attr]
        assert len(backend.orders_of(JAMIE)) == 2
        assert len(backend.audit_log()) == 1


def test_an_unseeded_database_is_empty(tmp_path: Path) -> None:
    with SqliteBackend(tmp_path / "empty.sqlite3", seed=False) as backend:
        assert backend.customer_by_phone("+15550100") is None


def test_a_database_from_newer_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(BackendError, match="newer"):
        SqliteBackend(path)


def test_an_unopenable_path_raises_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError):
        SqliteBackend(tmp_path)  # a directory


def test_add_months_clamps_to_the_end_of_shorter_months() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert canonical_order_id("order 1002") == "ORD-1002"


# --- HttpBackend against a local CRM/OMS ---------------------------------------------------------


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[FakeCrm]:
    with serve_crm(tmp_path / "crm.sqlite3") as fake:
        yield fake


@pytest.fixture
def client(crm: FakeCrm) -> HttpBackend:
    return HttpBackend(crm.base_url, token="s3cret", timeout=2.0)


def test_http_finds_a_customer_by_caller_id_with_the_token(
    crm: FakeCrm, client: HttpBackend
) -> None:
    jamie = client.customer_by_phone("+15550100")
    assert jamie is not None and jamie.name == "Jamie Rivera"
    [request] = crm.received
    assert (request.method, request.path) == ("GET", "/api/v1/customers")
    assert request.query == {"phone": ["+15550100"]}
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["Accept"] == "application/json"
    assert client.customer_by_phone("+15559999") is None


def test_http_several_customers_on_one_number_identify_nobody(
    crm: FakeCrm, client: HttpBackend
) -> None:
    one = {"id": "C", "name": "N", "phone": "+1", "postcode": "1"}
    crm.replies[("GET", "/api/v1/customers")] = (200, {"customers": [one, {**one, "id": "D"}]})
    assert client.customer_by_phone("+1") is None


def test_http_lookups_of_missing_records_are_none(crm: FakeCrm, client: HttpBackend) -> None:
    assert client.customer("CUST-404") is None
    assert client.order("ORD-9999") is None
    assert crm.paths() == ["GET /api/v1/customers/CUST-404", "GET /api/v1/orders/ORD-9999"]


def test_http_order_is_asked_by_its_canonical_id_and_parsed(
    crm: FakeCrm, client: HttpBackend
) -> None:
    order = client.order("1001")
    assert crm.paths() == ["GET /api/v1/orders/ORD-1001"]
    assert order == crm.backing.order("ORD-1001")
    assert isinstance(order, Order) and order.expected_on == date(2026, 5, 8)


def test_http_answers_like_the_sqlite_backend(crm: FakeCrm, client: HttpBackend) -> None:
    assert client.orders_of(JAMIE) == crm.backing.orders_of(JAMIE)
    assert client.membership(JAMIE) == crm.backing.membership(JAMIE)
    assert client.membership(SAM) is None
    assert client.customer(SAM) == crm.backing.customer(SAM)
    with pytest.raises(NotFoundError):
        client.orders_of("CUST-404")
    with pytest.raises(NotFoundError):
        client.membership("CUST-404")


def test_http_cancel_posts_the_call_id_then_the_audit_entry(
    crm: FakeCrm, client: HttpBackend
) -> None:
    cancelled = client.cancel_membership(JAMIE, call_id="CA-9")
    assert (cancelled.status, cancelled.ends_on) == ("cancelled", date(2026, 5, 31))
    cancel, audit = crm.received
    assert (cancel.method, cancel.path, cancel.body) == (
        "POST", f"/api/v1/customers/{JAMIE}/membership/cancel", {"call_id": "CA-9"})
    assert cancel.headers["Content-Type"] == "application/json"
    assert (audit.method, audit.path) == ("POST", "/api/v1/audit")
    assert audit.body["call_id"] == "CA-9" and audit.body["action"] == "membership.cancelled"
    assert audit.body["details"] == {"customer_id": JAMIE, "status": "cancelled",
                                     "ends_on": "2026-05-31"}
    assert "at" in audit.body


def test_http_pause_posts_the_months(crm: FakeCrm, client: HttpBackend) -> None:
    paused = client.pause_membership(JAMIE, 3, call_id="CA-3")
    assert paused.paused_until == date(2026, 8, 6)
    assert crm.received[0].body == {"months": 3, "call_id": "CA-3"}
    assert crm.received[1].body["details"]["months"] == 3
    # This CRM keeps its own entry of the change besides the one the assistant posts.
    actions = [e.action for e in client.audit_log("CA-3")]
    assert actions == ["membership.paused", "membership.paused"]
    assert crm.received[-1].query == {"call_id": ["CA-3"]}


def test_http_a_failed_audit_after_a_change_is_logged_not_raised(
    crm: FakeCrm, client: HttpBackend, caplog: pytest.LogCaptureFixture
) -> None:
    crm.replies[("POST", "/api/v1/audit")] = (503, {"error": "audit store down"})
    with caplog.at_level(logging.ERROR, logger="kb.backend.http_backend"):
        assert client.cancel_membership(JAMIE, call_id="CA-5").status == "cancelled"
    assert "CA-5" in caplog.text and "audit" in caplog.text


def test_http_audit_posts_the_entry(crm: FakeCrm, client: HttpBackend) -> None:
    client.audit("CA-1", "identity.verified", {"customer_id": JAMIE})
    [request] = crm.received
    assert request.body["action"] == "identity.verified"
    assert request.body["details"] == {"customer_id": JAMIE}


@pytest.mark.parametrize(("status", "error"), [
    (404, NotFoundError), (409, ActionRejectedError), (422, ActionRejectedError),
    (400, ActionRejectedError), (500, BackendUnavailableError), (503, BackendUnavailableError),
    (401, BackendError), (418, BackendError),
])
def test_http_status_codes_map_onto_precise_errors(
    crm: FakeCrm, client: HttpBackend, status: int, error: type[BackendError]
) -> None:
    cancel = f"/api/v1/customers/{JAMIE}/membership/cancel"
    crm.replies[("POST", cancel)] = (status, {"error": "nope"})
    with pytest.raises(error, match="nope") as raised:
        client.cancel_membership(JAMIE, call_id="CA-1")
    if error is BackendError:
        assert type(raised.value) is BackendError
    assert len(crm.received) == 1  # no audit entry for a change that did not happen


def test_http_a_slow_backend_is_unavailable(crm: FakeCrm) -> None:
    crm.delay = 0.5
    with pytest.raises(BackendUnavailableError):
        HttpBackend(crm.base_url, timeout=0.1).order("ORD-1001")


def test_http_a_closed_port_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendUnavailableError):
        HttpBackend(f"http://127.0.0.1:{port}").customer(JAMIE)


@pytest.mark.parametrize("reply", [
    b"<html>oops</html>",
    {"id": "ORD-1001"},
    {"id": "ORD-1", "customer_id": "C", "item": "x", "item_type": "electronics", "status": "lost",
     "ordered_on": "2026-01-01"},
    {"id": "ORD-1", "customer_id": "C", "item": "x", "item_type": "digital", "status": "delivered",
     "ordered_on": "yesterday"},
    ["not", "an", "object"],
])
def test_http_a_reply_outside_the_contract_is_malformed(
    crm: FakeCrm, client: HttpBackend, reply: Any
) -> None:
    crm.replies[("GET", "/api/v1/orders/ORD-1001")] = (200, reply)
    with pytest.raises(MalformedResponseError):
        client.order("ORD-1001")


def test_http_membership_reply_must_say_membership(crm: FakeCrm, client: HttpBackend) -> None:
    crm.replies[("GET", f"/api/v1/customers/{JAMIE}/membership")] = (200, {"status": "active"})
    with pytest.raises(MalformedResponseError):
        client.membership(JAMIE)


def test_http_ids_are_percent_encoded_into_one_path_segment(
    crm: FakeCrm, client: HttpBackend
) -> None:
    assert client.customer("../orders/ORD-1001") is None
    assert crm.received[0].path == "/api/v1/customers/..%2Forders%2FORD-1001"


def test_http_backend_rejects_a_bad_url_and_hides_its_token() -> None:
    with pytest.raises(ValueError):
        HttpBackend("crm.example.com")
    with pytest.raises(ValueError):
        HttpBackend("http://crm.example.com", timeout=0)
    assert "s3cret" not in repr(HttpBackend("http://crm.example.com/", token="s3cret"))
