"""telephony.sip.refer: REFER with Refer-To (and Replaces), and the NOTIFYs' progress."""

from __future__ import annotations

import pytest

from telephony.sip.dialog import Dialog
from telephony.sip.errors import SipParseError
from telephony.sip.headers import SipUri
from telephony.sip.message import Request, parse_message
from telephony.sip.refer import (
    Replaces,
    TransferProgress,
    build_refer,
    parse_sipfrag,
    refer_event_id,
    transfer_progress,
)
from tests.fixtures.sip import load

pytestmark = pytest.mark.unit


def request(name: str) -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


def call() -> Dialog:
    invite = request("invite_baresip.sip")
    dialog = Dialog.from_invite(invite, contact="<sip:assistant@192.0.2.10>",
                                local_tag="as5f3a1b2c", local_seq=1)
    dialog.response(invite, 200)
    return dialog


def test_a_blind_transfer_refers_the_caller_to_the_agent() -> None:
    refer = build_refer(call(), "sip:agent@192.0.2.30",
                        referred_by="<sip:assistant@192.0.2.10>")
    assert refer.method == "REFER" and refer.cseq.number == 2
    assert refer.headers.get("Refer-To") == "<sip:agent@192.0.2.30>"
    assert refer.headers.get("Referred-By") == "<sip:assistant@192.0.2.10>"
    assert refer.to.tag == "7c1fd2e2a9b5c3d4" and refer.contact
    assert parse_message(bytes(refer)) == refer


def test_an_attended_transfer_carries_the_agents_dialog_in_replaces() -> None:
    refer = build_refer(call(), "<sip:agent@192.0.2.30>",
                        replaces=Replaces("b2b-call-0001@192.0.2.10", "agent-phone-9", "b2b-01"))
    value = refer.headers.get("Refer-To") or ""
    assert value == ("<sip:agent@192.0.2.30?Replaces=b2b-call-0001%40192.0.2.10"
                     "%3Bto-tag%3Dagent-phone-9%3Bfrom-tag%3Db2b-01>")
    assert (SipUri.parse(value.strip("<>")).headers or "").startswith("Replaces=")


def test_the_final_notify_reports_success_and_ends_the_subscription() -> None:
    notify = request("notify_sipfrag.sip")
    assert transfer_progress(notify) == TransferProgress(200, "OK", subscription_ended=True)
    assert transfer_progress(notify).final and transfer_progress(notify).succeeded
    assert refer_event_id(notify) == "2"


def test_a_trying_notify_is_not_final() -> None:
    notify = request("notify_sipfrag.sip")
    notify.body = b"SIP/2.0 100 Trying\r\n"
    notify.headers.set("Subscription-State", "active;expires=60")
    progress = transfer_progress(notify)
    assert (progress.status, progress.final, progress.succeeded) == (100, False, False)


def test_a_failed_transfer_is_final_and_not_a_success() -> None:
    notify = request("notify_sipfrag.sip")
    notify.body = b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n\r\n"
    progress = transfer_progress(notify)
    assert (progress.status, progress.reason, progress.final, progress.succeeded) == (
        486, "Busy Here", True, False)


@pytest.mark.parametrize("body", [b"", b"200 OK", b"SIP/2.0 2000 OK", b"HTTP/1.1 200 OK",
                                  b"\xff\xfe"])
def test_bad_sipfrag_bodies_raise_parse_errors(body: bytes) -> None:
    with pytest.raises(SipParseError):
        parse_sipfrag(body)


def test_a_notify_of_another_event_is_refused_with_489() -> None:
    notify = request("notify_sipfrag.sip")
    notify.headers.set("Event", "dialog")
    with pytest.raises(SipParseError) as caught:
        transfer_progress(notify)
    assert caught.value.status == 489
