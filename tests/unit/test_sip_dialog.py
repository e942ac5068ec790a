"""telephony.sip.dialog: dialog state, in-dialog requests both ways, and calling out."""

from __future__ import annotations

import pytest

from telephony.sip.dialog import Dialog, DialogState, build_cancel, build_invite
from telephony.sip.errors import DialogError, SipParseError, SipStateError
from telephony.sip.headers import Address, SipUri
from telephony.sip.message import Request, Response, parse_message, response_for
from telephony.sip.transaction import client_key, server_key
from tests.fixtures.sip import load

pytestmark = pytest.mark.unit

CONTACT = "<sip:assistant@192.0.2.10:5060>"


def request(name: str) -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


def answered() -> tuple[Dialog, Request]:
    invite = request("invite_baresip.sip")
    dialog = Dialog.from_invite(invite, contact=CONTACT, local_tag="as5f3a1b2c", local_seq=10)
    return dialog, invite


# ------------------------------------------------------------------------------ answering side
def test_a_dialog_made_from_an_invite_knows_both_ends() -> None:
    dialog, _ = answered()
    assert dialog.id == ("4c2a9e1f0d8b7a65", "as5f3a1b2c", "7c1fd2e2a9b5c3d4")
    assert dialog.remote_target == SipUri.parse("sip:alice-0x55d1@198.51.100.7:5060;transport=udp")
    assert dialog.remote_seq == 31505 and dialog.state is DialogState.EARLY
    assert dialog.local.tag is None and dialog.remote.display_name == "Alice Example"
    assert dialog.transport == "UDP"


def test_our_answers_carry_our_tag_and_contact_and_move_the_state() -> None:
    dialog, invite = answered()
    ringing = dialog.response(invite, 180)
    assert ringing.to.tag == "as5f3a1b2c" and ringing.contact[0] == Address.parse(CONTACT)
    assert dialog.state is DialogState.EARLY
    ok = dialog.response(invite, 200, body=b"v=0\r\n", content_type="application/sdp")
    assert ok.to.tag == "as5f3a1b2c" and ok.content_type == "application/sdp"
    assert dialog.state is DialogState.CONFIRMED
    assert Response.parse(bytes(ok)) == ok


def test_refusing_the_invite_ends_the_dialog() -> None:
    dialog, invite = answered()
    dialog.response(invite, 486)
    assert dialog.state is DialogState.TERMINATED


def test_record_route_is_copied_into_the_2xx_and_becomes_the_route_set() -> None:
    invite = request("invite_baresip.sip")
    invite.headers.add("Record-Route", "<sip:p1.example.org;lr>, <sip:p2.example.org;lr>")
    dialog = Dialog.from_invite(invite, contact=CONTACT)
    ok = dialog.response(invite, 200)
    assert ok.headers.values("Record-Route") == ["<sip:p1.example.org;lr>",
                                                 "<sip:p2.example.org;lr>"]
    bye = dialog.bye()
    assert bye.uri == dialog.remote_target  # loose routing: the target stays the Request-URI
    assert bye.headers.values("Route") == ["<sip:p1.example.org;lr>", "<sip:p2.example.org;lr>"]


def test_strict_routing_puts_the_first_route_in_the_request_uri() -> None:
    invite = request("invite_baresip.sip")
    invite.headers.add("Record-Route", "<sip:strict.example.org>")
    dialog = Dialog.from_invite(invite, contact=CONTACT)
    bye = dialog.bye()
    assert bye.uri == SipUri.parse("sip:strict.example.org")
    assert bye.headers.values("Route") == [f"<{dialog.remote_target}>"]


def test_our_bye_has_the_dialog_fields_and_ends_the_dialog() -> None:
    dialog, invite = answered()
    dialog.response(invite, 200)
    bye = dialog.bye()
    assert bye.method == "BYE" and bye.uri == dialog.remote_target
    assert bye.from_.tag == "as5f3a1b2c" and bye.to.tag == "7c1fd2e2a9b5c3d4"
    assert bye.call_id == "4c2a9e1f0d8b7a65" and bye.cseq.number == 11
    assert (bye.top_via.branch or "").startswith("z9hG4bK")
    assert bye.top_via.sent_by == "192.0.2.10:5060"
    assert "Contact" not in bye.headers
    assert dialog.state is DialogState.TERMINATED
    assert parse_message(bytes(bye)) == bye
    with pytest.raises(SipStateError):
        dialog.request("INFO")


def test_each_request_gets_the_next_cseq_and_a_new_branch() -> None:
    dialog, _ = answered()
    first, second = dialog.request("INFO"), dialog.request("OPTIONS")
    assert (first.cseq.number, second.cseq.number) == (11, 12)
    assert server_key(first) != server_key(second)
    refer = dialog.request("REFER", headers=[("Refer-To", "<sip:agent@192.0.2.30>")])
    assert refer.contact[0] == Address.parse(CONTACT) and refer.headers.get("Refer-To")


def test_the_peers_bye_is_accepted_and_ends_the_dialog() -> None:
    dialog, invite = answered()
    dialog.response(invite, 200)
    bye = request("bye.sip")
    assert dialog.matches(bye)
    dialog.receive_request(bye)
    assert dialog.state is DialogState.TERMINATED and dialog.remote_seq == 31507
    assert dialog.response(bye, 200).to.tag == "as5f3a1b2c"


def test_requests_for_other_dialogs_get_481() -> None:
    dialog, _ = answered()
    bye = request("bye.sip")
    bye.headers.set("To", "<sip:assistant@192.0.2.10>;tag=someone-else")
    assert not dialog.matches(bye)
    with pytest.raises(DialogError) as caught:
        dialog.receive_request(bye)
    assert caught.value.status == 481


def test_a_request_with_an_old_cseq_gets_500() -> None:
    dialog, _ = answered()
    bye = request("bye.sip")
    bye.headers.set("CSeq", "31505 BYE")
    with pytest.raises(DialogError) as caught:
        dialog.receive_request(bye)
    assert caught.value.status == 500


def test_a_reinvite_refreshes_the_remote_target_and_its_ack_is_accepted() -> None:
    dialog, invite = answered()
    dialog.response(invite, 200)
    reinvite = request("reinvite_hold.sip")
    reinvite.headers.set("Contact", "<sip:alice@198.51.100.99:5062>")
    dialog.receive_request(reinvite)
    assert dialog.remote_target == SipUri("sip", "alice", "198.51.100.99", 5062)
    assert dialog.invite_seq == 31506
    dialog.response(reinvite, 200)
    assert dialog.state is DialogState.CONFIRMED
    ack = Request("ACK", reinvite.uri, reinvite.headers.copy())
    ack.headers.set("CSeq", "31506 ACK")
    dialog.receive_request(ack)  # not out of order: an ACK repeats its INVITE's CSeq


def test_an_invite_without_contact_or_from_tag_makes_no_dialog() -> None:
    invite = request("invite_baresip.sip")
    invite.headers.remove("Contact")
    with pytest.raises(SipParseError):
        Dialog.from_invite(invite, contact=CONTACT)


# ------------------------------------------------------------------------------ calling side
def agent_invite() -> Request:
    return build_invite("sip:agent@192.0.2.30", from_='"Assistant" <sip:assistant@192.0.2.10>',
                        contact=CONTACT, call_id="b2b-call-0001@192.0.2.10", from_tag="b2b-01",
                        body=b"v=0\r\n", content_type="application/sdp")


def test_build_invite_makes_a_complete_initial_request() -> None:
    invite = agent_invite()
    again = parse_message(bytes(invite))
    assert again == invite and invite.uri == SipUri("sip", "agent", "192.0.2.30")
    assert invite.from_.tag == "b2b-01" and invite.to.tag is None
    assert invite.to.uri == invite.uri and invite.cseq.number == 1
    assert invite.headers.get("Max-Forwards") == "70" and invite.body == b"v=0\r\n"
    assert (invite.top_via.branch or "").startswith("z9hG4bK")
    assert invite.top_via.param("rport") == ""


def test_the_agents_answer_makes_a_confirmed_dialog_and_its_ack() -> None:
    invite = agent_invite()
    ok = parse_message(load("ok_agent.sip"))
    assert isinstance(ok, Response)
    dialog = Dialog.from_response(invite, ok)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.id == ("b2b-call-0001@192.0.2.10", "b2b-01", "agent-phone-9")
    assert dialog.remote_target == SipUri("sip", "agent", "192.0.2.30", 5062)
    assert dialog.matches(ok)
    ack = dialog.ack()
    assert ack.method == "ACK" and ack.cseq.number == 1 and ack.cseq.method == "ACK"
    assert ack.uri == SipUri("sip", "agent", "192.0.2.30", 5062)
    assert ack.headers.values("Route") == ["<sip:192.0.2.1;lr>"]
    assert ack.top_via.branch != invite.top_via.branch  # a 2xx's ACK is a transaction of its own
    assert dialog.bye().cseq.number == 2


def test_an_early_dialog_from_a_ringing_response_is_confirmed_by_the_2xx() -> None:
    invite = agent_invite()
    ringing = response_for(invite, 180, to_tag="agent-phone-9",
                           headers=[("Contact", "<sip:agent@192.0.2.30:5062>")])
    dialog = Dialog.from_response(invite, ringing)
    assert dialog.state is DialogState.EARLY
    dialog.receive_response(response_for(invite, 200, to_tag="agent-phone-9",
                                         headers=[("Contact", "<sip:agent@192.0.2.31>")]))
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.remote_target == SipUri("sip", "agent", "192.0.2.31")


def test_a_481_to_an_in_dialog_request_ends_the_dialog() -> None:
    dialog, invite = answered()
    dialog.response(invite, 200)
    refer = dialog.request("REFER", headers=[("Refer-To", "<sip:agent@192.0.2.30>")])
    dialog.receive_response(response_for(refer, 481))
    assert dialog.state is DialogState.TERMINATED


def test_cancel_repeats_the_invites_branch_and_cseq_number() -> None:
    invite = agent_invite()
    cancel = build_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.cseq.number == invite.cseq.number and cancel.cseq.method == "CANCEL"
    assert cancel.top_via == invite.top_via and cancel.to == invite.to
    assert client_key(cancel).branch == client_key(invite).branch
    assert parse_message(bytes(cancel)) == cancel
