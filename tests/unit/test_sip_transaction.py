"""telephony.sip.transaction: the four RFC 3261 §17 state machines, their timers and keys."""

from __future__ import annotations

import pytest

from telephony.sip.errors import SipStateError
from telephony.sip.headers import Headers, SipUri
from telephony.sip.message import Request, Response, parse_message, response_for
from telephony.sip.transaction import (
    Action,
    CancelTimer,
    Failed,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    PassToTU,
    Send,
    StartTimer,
    State,
    Terminated,
    Timers,
    build_ack,
    client_key,
    invite_key,
    server_key,
)
from tests.fixtures.sip import load

pytestmark = pytest.mark.unit


def request(name: str = "invite_baresip.sip") -> Request:
    message = parse_message(load(name))
    assert isinstance(message, Request)
    return message


def reply(to: Request, status: int) -> Response:
    return response_for(to, status, to_tag="srv1")


def starts(actions: list[Action]) -> list[tuple[str, float]]:
    return [(a.name, a.delay) for a in actions if isinstance(a, StartTimer)]


def sent(actions: list[Action]) -> list[Request | Response]:
    return [a.message for a in actions if isinstance(a, Send)]


def statuses(actions: list[Action]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m in sent(actions)]


# ------------------------------------------------------------------------------ INVITE server
def test_invite_server_passes_the_invite_up_and_sends_trying() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    actions = tx.start()
    assert actions[0] == PassToTU(invite) and statuses(actions) == [100]
    assert sent(actions)[0].to.tag is None
    assert statuses(tx.receive(invite)) == [100]  # a retransmitted INVITE gets it again
    assert statuses(tx.send_response(reply(invite, 180))) == [180]
    assert statuses(tx.receive(invite)) == [180]
    assert tx.state is State.PROCEEDING


def test_invite_server_retransmits_a_failure_until_the_ack_with_backoff_to_t2() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    tx.start()
    actions = tx.send_response(reply(invite, 486))
    assert statuses(actions) == [486] and starts(actions) == [("G", 0.5), ("H", 32.0)]
    intervals = []
    for _ in range(5):
        fired = tx.timer_fired("G")
        assert statuses(fired) == [486]
        intervals += [delay for _, delay in starts(fired)]
    assert intervals == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert statuses(tx.receive(invite)) == [486]
    ack = build_ack(invite, reply(invite, 486))
    actions = tx.receive(ack)
    assert actions == [CancelTimer("G"), CancelTimer("H"), StartTimer("I", 5.0)]
    assert tx.state is State.CONFIRMED
    assert tx.receive(invite) == [] and tx.receive(ack) == []  # absorbed
    assert tx.timer_fired("G") == []  # cancelled: a late firing is ignored
    assert tx.timer_fired("I") == [Terminated()] and tx.terminated


def test_invite_server_gives_up_when_no_ack_comes() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    tx.start()
    tx.send_response(reply(invite, 603))
    assert tx.timer_fired("H") == [Failed("no ACK for the final response"), CancelTimer("G"),
                                   Terminated()]


def test_invite_server_over_tcp_does_not_retransmit_and_ends_at_the_ack() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, reliable=True)
    tx.start(send_trying=False)
    assert starts(tx.send_response(reply(invite, 486))) == [("H", 32.0)]
    assert tx.receive(build_ack(invite, reply(invite, 486))) == [CancelTimer("H"), Terminated()]


def test_invite_server_retransmits_the_2xx_until_the_dialog_reports_the_ack() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    tx.start()
    actions = tx.send_response(reply(invite, 200))
    assert tx.state is State.ACCEPTED
    assert statuses(actions) == [200] and starts(actions) == [("G", 0.5), ("L", 32.0)]
    assert statuses(tx.timer_fired("G")) == [200]
    assert tx.receive(invite) == []  # RFC 6026: retransmitted INVITEs are absorbed
    assert tx.ack_received() == [CancelTimer("G")] and tx.state is State.CONFIRMED
    assert tx.timer_fired("L") == [Terminated()]


def test_invite_server_reports_a_2xx_never_acknowledged() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    tx.start()
    tx.send_response(reply(invite, 200))
    assert tx.timer_fired("L") == [Failed("no ACK for the 2xx"), CancelTimer("G"), Terminated()]


def test_an_ack_matched_to_the_accepted_invite_is_passed_up() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    tx.start()
    tx.send_response(reply(invite, 200))
    ack = build_ack(invite, reply(invite, 200))
    assert tx.receive(ack) == [CancelTimer("G"), PassToTU(ack)]


def test_invite_server_refuses_a_response_after_the_final_one() -> None:
    invite = request()
    tx = InviteServerTransaction(invite)
    tx.start()
    tx.send_response(reply(invite, 486))
    with pytest.raises(SipStateError):
        tx.send_response(reply(invite, 180))
    with pytest.raises(SipStateError):
        tx.receive(request("bye.sip"))


def test_timers_scale_with_t1() -> None:
    invite = request()
    tx = InviteServerTransaction(invite, timers=Timers(t1=0.01, t2=0.04, t4=0.05))
    tx.start()
    assert starts(tx.send_response(reply(invite, 486))) == [("G", 0.01), ("H", 0.64)]


# ------------------------------------------------------------------------------ non-INVITE server
def test_non_invite_server_answers_once_and_repeats_the_answer_to_retransmissions() -> None:
    bye = request("bye.sip")
    tx = NonInviteServerTransaction(bye)
    assert tx.start() == [PassToTU(bye)]
    assert tx.receive(bye) == []  # Trying: nothing to repeat yet
    actions = tx.send_response(reply(bye, 200))
    assert statuses(actions) == [200] and starts(actions) == [("J", 32.0)]
    assert statuses(tx.receive(bye)) == [200]
    assert tx.timer_fired("J") == [Terminated()]


def test_non_invite_server_provisional_then_final() -> None:
    bye = request("bye.sip")
    tx = NonInviteServerTransaction(bye)
    tx.start()
    tx.send_response(reply(bye, 100))
    assert tx.state is State.PROCEEDING and statuses(tx.receive(bye)) == [100]
    tx.send_response(reply(bye, 200))
    with pytest.raises(SipStateError):
        tx.send_response(reply(bye, 200))


def test_non_invite_server_over_tcp_ends_with_its_response() -> None:
    bye = request("bye.sip")
    tx = NonInviteServerTransaction(bye, reliable=True)
    tx.start()
    actions = tx.send_response(reply(bye, 200))
    assert statuses(actions) == [200] and actions[-1] == Terminated()


# ------------------------------------------------------------------------------ INVITE client
def test_invite_client_retransmits_with_doubling_until_timer_b() -> None:
    invite = request()
    tx = InviteClientTransaction(invite)
    actions = tx.start()
    assert statuses(actions) == ["INVITE"] and starts(actions) == [("A", 0.5), ("B", 32.0)]
    intervals = [starts(tx.timer_fired("A"))[0][1] for _ in range(4)]
    assert intervals == [1.0, 2.0, 4.0, 8.0]  # Timer A is not capped at T2
    assert tx.timer_fired("B") == [Failed("timeout"), CancelTimer("A"), Terminated()]
    with pytest.raises(SipStateError):
        tx.start()  # once only


def test_invite_client_acks_a_failure_itself_and_repeats_the_ack() -> None:
    invite = request()
    tx = InviteClientTransaction(invite)
    tx.start()
    ringing = reply(invite, 180)
    assert tx.receive(ringing) == [CancelTimer("A"), CancelTimer("B"), PassToTU(ringing)]
    busy = reply(invite, 486)
    actions = tx.receive(busy)
    assert actions[0] == PassToTU(busy) and starts(actions) == [("D", 32.0)]
    (ack,) = sent(actions)
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.cseq.number == invite.cseq.number and ack.cseq.method == "ACK"
    assert ack.to.tag == "srv1" and ack.top_via.branch == invite.top_via.branch
    assert ack.uri == invite.uri and ack.from_ == invite.from_
    assert tx.receive(busy) == [Send(ack)]
    assert tx.timer_fired("D") == [Terminated()]


def test_invite_client_passes_every_2xx_up_for_the_tu_to_ack() -> None:
    invite = request()
    tx = InviteClientTransaction(invite)
    tx.start()
    ok = reply(invite, 200)
    assert tx.receive(ok) == [CancelTimer("A"), CancelTimer("B"), PassToTU(ok),
                              StartTimer("M", 32.0)]
    assert tx.receive(ok) == [PassToTU(ok)]
    assert tx.receive(reply(invite, 180)) == []  # stray, absorbed
    assert tx.timer_fired("M") == [Terminated()]


def test_invite_client_over_tcp_sends_once_and_ends_at_a_failure() -> None:
    invite = request()
    tx = InviteClientTransaction(invite, reliable=True)
    assert starts(tx.start()) == [("B", 32.0)]
    actions = tx.receive(reply(invite, 404))
    assert statuses(actions) == ["ACK"] and actions[-1] == Terminated()


# ------------------------------------------------------------------------------ non-INVITE client
def test_non_invite_client_backs_off_to_t2_and_holds_t2_when_proceeding() -> None:
    bye = request("bye.sip")
    tx = NonInviteClientTransaction(bye)
    assert starts(tx.start()) == [("E", 0.5), ("F", 32.0)]
    intervals = [starts(tx.timer_fired("E"))[0][1] for _ in range(4)]
    assert intervals == [1.0, 2.0, 4.0, 4.0]
    tx.receive(reply(bye, 100))
    assert tx.state is State.PROCEEDING
    fired = tx.timer_fired("E")
    assert statuses(fired) == ["BYE"] and starts(fired) == [("E", 4.0)]
    ok = reply(bye, 200)
    assert tx.receive(ok) == [CancelTimer("E"), CancelTimer("F"), PassToTU(ok),
                              StartTimer("K", 5.0)]
    assert tx.receive(ok) == []
    assert tx.timer_fired("K") == [Terminated()]


def test_non_invite_client_times_out_with_timer_f() -> None:
    tx = NonInviteClientTransaction(request("bye.sip"))
    tx.start()
    assert tx.timer_fired("F") == [Failed("timeout"), CancelTimer("E"), Terminated()]


def test_a_transport_error_fails_the_transaction_and_cancels_its_timers() -> None:
    tx = NonInviteClientTransaction(request("bye.sip"))
    tx.start()
    assert tx.transport_error() == [Failed("transport error"), CancelTimer("E"),
                                    CancelTimer("F"), Terminated()]
    assert tx.transport_error() == [] and tx.timer_fired("E") == []


# ------------------------------------------------------------------------------ keys
def test_the_ack_of_a_failure_and_a_retransmission_match_the_invite() -> None:
    invite = request()
    key = server_key(invite)
    assert InviteServerTransaction(invite).key == key
    assert InviteClientTransaction(invite).key == client_key(reply(invite, 180))
    assert key.method == "INVITE" and key.branch == "z9hG4bK5d3b9a2c1e0f7a61"
    assert server_key(Request.parse(bytes(invite))) == key
    assert server_key(build_ack(invite, reply(invite, 486))) == key


def test_a_cancel_has_its_own_transaction_but_names_the_invites() -> None:
    invite = request()
    cancel = Request("CANCEL", invite.uri, invite.headers.copy())
    cancel.headers.set("CSeq", f"{invite.cseq.number} CANCEL")
    assert server_key(cancel) != server_key(invite)
    assert invite_key(cancel) == server_key(invite)


def test_different_branches_or_sent_by_are_different_transactions() -> None:
    invite = request()
    other = Request("INVITE", invite.uri, invite.headers.copy(), invite.body)
    other.headers.set("Via", "SIP/2.0/UDP 198.51.100.8:5060;branch=z9hG4bK5d3b9a2c1e0f7a61")
    assert server_key(other) != server_key(invite)


def test_responses_match_our_client_transaction() -> None:
    invite = request()
    assert client_key(reply(invite, 180)) == client_key(invite)
    assert client_key(build_ack(invite, reply(invite, 486))) == client_key(invite)


def test_rfc_2543_requests_without_the_magic_cookie_still_match_their_ack() -> None:
    headers = Headers([("Via", "SIP/2.0/UDP 192.0.2.99:5060"), ("From", "<sip:a@h>;tag=1"),
                       ("To", "<sip:b@h>"), ("Call-ID", "old"), ("CSeq", "1 INVITE")])
    invite = Request("INVITE", SipUri("sip", "b", "h"), headers)
    ack = build_ack(invite, reply(invite, 486))
    assert server_key(ack) == server_key(invite)
    assert server_key(invite).branch.startswith("rfc2543:")
