"""The SIP user agent's call flows over loopback UDP, with a fake conversation runner."""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import EndFrame

from telephony.sip.digest import authorize
from telephony.sip.message import Request, Response, parse_message
from telephony.sip.sdp import Direction, SessionDescription, make_offer
from telephony.sip.transaction import Timers
from telephony.sip.useragent import SipAuth, SipTransactionError, SipUserAgent
from tests.sip_peer import FakeRunner, SipPeer, Udp, fuzz_bases, mutants, offer_sdp

pytestmark = pytest.mark.unit

FAST = Timers(t1=0.02, t2=0.16, t4=0.2)


@pytest.fixture
async def runner():
    return FakeRunner()


@pytest.fixture
async def ua(runner):
    agent = SipUserAgent(runner, port=0, timers=FAST)
    await agent.start()
    yield agent
    await agent.stop(timeout_s=1)


@pytest.fixture
async def peer(ua):
    phone = await SipPeer.open(ua.port)
    yield phone
    phone.close()


def sdp_of(response: Response) -> SessionDescription:
    return SessionDescription.parse(response.body)


async def settle(condition, timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_an_invite_is_answered_with_trying_ringing_and_an_sdp_answer(ua, peer, runner):
    peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port)))
    assert (await peer.next()).status == 100
    ringing = await peer.next()
    assert ringing.status == 180 and ringing.to.tag
    ok = await peer.response(200, method="INVITE")
    assert ok.to.tag == ringing.to.tag and ok.contact
    answer = sdp_of(ok).media[0]
    assert answer.port and [c.name for c in answer.codecs()] == ["PCMU", "telephone-event"]
    peer.ack()
    await settle(lambda: runner.sessions and runner.sessions[0].started)
    session = runner.sessions[0]
    assert session.channel == "sip" and session.caller == "alice"


async def test_the_2xx_is_retransmitted_until_the_ack(ua, peer):
    peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port)))
    await peer.response(200, method="INVITE")
    await peer.response(200, method="INVITE", timeout_s=1)  # again: no ACK yet
    peer.ack()
    await asyncio.sleep(0.2)
    peer.sip.drain()
    await asyncio.sleep(0.3)
    assert not [m for m in peer.sip.drain() if b"200 OK" in m]


async def test_a_bye_ends_the_call_as_completed(ua, peer, runner):
    await peer.call()
    await settle(lambda: runner.sessions and runner.sessions[0].started)
    peer.send(peer.request("BYE"))
    await peer.response(200, method="BYE")
    await settle(lambda: runner.sessions[0].outcome == "completed")
    assert not ua.calls


async def test_pcma_is_chosen_when_it_is_all_the_caller_offers(ua, peer):
    ok = await peer.call(codecs="8 101")
    assert [c.name for c in sdp_of(ok).media[0].codecs()][0] == "PCMA"


async def test_an_offer_with_no_g711_gets_488(ua, peer, runner):
    peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port, codecs="9")))
    refused = await peer.response(488)
    assert refused.cseq.method == "INVITE"
    peer.send(peer.request("ACK", cseq=1, branch=peer.branch))
    assert not runner.sessions


async def test_options_lists_what_the_agent_allows(ua, peer):
    peer.send(peer.request("OPTIONS"))
    ok = await peer.response(200)
    assert "INVITE" in ok.header("Allow") and ok.header("Accept") == "application/sdp"


async def test_unknown_and_unsupported_methods_get_501_and_405(ua, peer):
    peer.send(peer.request("FROBNICATE"))
    assert (await peer.response(501)).cseq.method == "FROBNICATE"
    peer.send(peer.request("SUBSCRIBE"))
    assert "INVITE" in (await peer.response(405)).header("Allow")


async def test_requests_for_a_dialog_we_do_not_have_get_481(ua, peer):
    peer.send(peer.request("BYE", to_tag="gone"))
    await peer.response(481)
    peer.send(peer.request("INVITE", to_tag="gone", body=offer_sdp(peer.rtp.port)))
    await peer.response(481)


async def test_cancel_while_ringing_gets_200_and_487(runner):
    ua = SipUserAgent(runner, port=0, timers=FAST, ring_s=5.0)
    await ua.start()
    peer = await SipPeer.open(ua.port)
    try:
        peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port)))
        invite_branch = peer.branch
        await peer.response(180)
        peer.send(peer.request("CANCEL", cseq=1, branch=invite_branch, to_tag=""))
        assert (await peer.response(200)).cseq.method == "CANCEL"
        terminated = await peer.response(487)
        assert terminated.cseq.method == "INVITE"
        await settle(lambda: not ua.calls)
        assert not runner.sessions
    finally:
        peer.close()
        await ua.stop(timeout_s=1)


async def test_a_cancel_for_no_invite_gets_481(ua, peer):
    peer.send(peer.request("CANCEL", cseq=1))
    await peer.response(481)


async def test_hold_is_answered_recvonly_and_stops_our_audio(ua, peer, runner):
    await peer.call()
    await settle(lambda: ua.calls)
    call = next(iter(ua.calls.values()))
    assert call.rtp is not None and not call.rtp.held
    peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port, direction="sendonly",
                                                    version=2)))
    held = await peer.response(200, method="INVITE")
    assert sdp_of(held).direction(sdp_of(held).media[0]) is Direction.RECVONLY
    peer.ack()
    assert call.rtp.held
    await call.rtp.send(bytes(320 * 5))
    await asyncio.sleep(0.05)
    assert call.rtp.stats.packets_out == 0 and not peer.rtp.drain()

    peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port, version=3)))
    resumed = await peer.response(200, method="INVITE")
    assert sdp_of(resumed).direction(sdp_of(resumed).media[0]) is Direction.SENDRECV
    peer.ack()
    await call.rtp.send(bytes(320 * 5))
    await asyncio.sleep(0.05)
    assert len(peer.rtp.drain()) == 5
    session = runner.sessions[0]
    assert [kind for kind, _ in session.events] == ["hold", "resumed"]


async def test_the_assistant_hanging_up_sends_bye_and_ends_the_pipeline(ua, peer, runner):
    await peer.call()
    await settle(lambda: runner.tasks and runner.sessions[0].started)
    hanging_up = asyncio.create_task(runner.tasks[0].control.hang_up(reason="done"))
    bye = await peer.request_in("BYE")
    peer.answer(bye)
    await hanging_up
    await settle(lambda: runner.sessions[0].outcome == "completed")
    assert any(isinstance(frame, EndFrame) for frame in runner.tasks[0].frames)


async def test_no_ack_for_the_2xx_ends_the_call_with_a_bye(ua, peer, runner):
    peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port)))
    await peer.response(200, method="INVITE")
    bye = await peer.request_in("BYE", timeout_s=4)  # 64*T1 later
    peer.answer(bye)
    await settle(lambda: runner.sessions and runner.sessions[0].outcome == "error")


async def test_in_dialog_notify_reaches_the_call_and_is_answered(ua, peer):
    await peer.call()
    await settle(lambda: ua.calls)
    call = next(iter(ua.calls.values()))
    notified: list[Request] = []
    call.on_notify = notified.append
    peer.send(peer.request("NOTIFY", body="SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
                           extra="Event: refer"))
    await peer.response(200, method="NOTIFY")
    assert notified and notified[0].method == "NOTIFY"


async def test_a_notify_the_call_does_not_expect_is_answered_with_the_calls_status(ua, peer):
    await peer.call()
    await settle(lambda: ua.calls)
    call = next(iter(ua.calls.values()))
    call.on_notify = lambda request: 481  # no transfer of ours is running
    peer.send(peer.request("NOTIFY", body="SIP/2.0 200 OK\r\n", content_type="message/sipfrag",
                           extra="Event: refer"))
    await peer.response(481, method="NOTIFY")


async def test_the_allow_list_refuses_other_sources_with_403(runner):
    ua = SipUserAgent(runner, port=0, timers=FAST, allow="10.0.0.0/8, 192.168.1.7")
    await ua.start()
    peer = await SipPeer.open(ua.port)
    try:
        peer.send(peer.request("INVITE", body=offer_sdp(peer.rtp.port)))
        await peer.response(403)
        assert ua.stats.forbidden == 1 and not runner.sessions
    finally:
        peer.close()
        await ua.stop(timeout_s=1)


async def test_digest_authentication_challenges_then_accepts_the_retried_invite(runner):
    ua = SipUserAgent(runner, port=0, timers=FAST, auth=SipAuth("trunk", "s3cret", "iva"))
    await ua.start()
    peer = await SipPeer.open(ua.port)
    try:
        body = offer_sdp(peer.rtp.port)
        peer.send(peer.request("INVITE", body=body))
        challenge = await peer.response(401)
        peer.send(peer.request("ACK", cseq=1, branch=peer.branch, to_tag=challenge.to.tag))
        uri = f"sip:iva@127.0.0.1:{ua.port}"
        wrong = authorize(challenge.header("WWW-Authenticate"), method="INVITE", uri=uri,
                          username="trunk", password="guess")
        peer.cseq = 2
        peer.send(peer.request("INVITE", body=body, cseq=2, extra=f"Authorization: {wrong}"))
        again = await peer.response(401)
        peer.send(peer.request("ACK", cseq=2, branch=peer.branch, to_tag=again.to.tag))
        right = authorize(again.header("WWW-Authenticate"), method="INVITE", uri=uri,
                          username="trunk", password="s3cret")
        peer.send(peer.request("INVITE", body=body, cseq=3, extra=f"Authorization: {right}"))
        ok = await peer.response(200, method="INVITE")
        assert ok.cseq.number == 3 and ua.stats.unauthorized == 2
    finally:
        peer.close()
        await ua.stop(timeout_s=1)


async def test_a_malformed_request_gets_400_and_garbage_is_dropped(ua, peer):
    broken = peer.request("OPTIONS").replace("Max-Forwards: 70", "Max-Forwards: lots")
    peer.send(broken)
    refused = await peer.response(400)
    assert refused.cseq.method == "OPTIONS"
    peer.send(b"\x00\x01garbage that is not SIP\r\n\r\n")
    peer.send(b"\r\n\r\n")  # a keep-alive: ignored quietly
    await asyncio.sleep(0.1)
    assert ua.stats.bad_messages == 2 and ua.stats.bad_answered == 1
    assert ua.transports.stats.keepalives == 1


async def test_a_fuzzed_stream_never_stops_the_listener_and_a_call_still_works(ua, peer,
                                                                               runner):
    other = await Udp.open()
    try:
        for datagram in mutants(fuzz_bases(ua.port, other.port), 1000, seed=17):
            other.send(datagram, ("127.0.0.1", ua.port))
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        assert ua.stats.bad_messages > 100
        assert ua.transports.stats.handler_errors == 0
        ok = await peer.call()
        assert ok.status == 200
        peer.send(peer.request("BYE"))
        await peer.response(200, method="BYE")
    finally:
        other.close()


async def test_tcp_calls_are_answered_on_the_same_port(ua, runner):
    reader, writer = await asyncio.open_connection("127.0.0.1", ua.port)
    peer = await SipPeer.open(ua.port)
    try:
        text = peer.request("OPTIONS").replace("SIP/2.0/UDP", "SIP/2.0/TCP")
        writer.write(text.encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(65_535), 2)
        assert parse_message(data).status == 200
        writer.write(b"INVITE nonsense\r\nContent-Length: x\r\n\r\n")  # framing lost: closed
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 2) == b""
    finally:
        writer.close()
        peer.close()


async def test_calling_out_acks_the_2xx_and_returns_the_dialog(ua):
    callee = await Udp.open()
    offer = make_offer(address="127.0.0.1", port=4000, session_id=1, session_version=1)
    try:
        calling = asyncio.create_task(ua.invite(f"sip:agent@127.0.0.1:{callee.port}",
                                                sdp_offer_bytes=bytes(offer)))
        data, source = await callee.receive()
        invite = parse_message(data)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        answer = offer_sdp(5000)
        ok = (f"SIP/2.0 200 OK\r\nVia: {invite.header('Via')}\r\nFrom: {invite.header('From')}"
              f"\r\nTo: {invite.header('To')};tag=agent1\r\nCall-ID: {invite.call_id}\r\n"
              f"CSeq: 1 INVITE\r\nContact: <sip:agent@127.0.0.1:{callee.port}>\r\n"
              f"Content-Type: application/sdp\r\nContent-Length: {len(answer)}\r\n\r\n{answer}")
        callee.send(ok.encode(), source)
        dialog, response = await asyncio.wait_for(calling, 2)
        assert response.status == 200 and dialog is not None
        ack = parse_message((await callee.receive())[0])
        assert ack.method == "ACK" and ack.cseq.number == 1
        leg = ua.leg(dialog)
        assert leg is not None
        byes = asyncio.create_task(ua.bye(leg, wait_s=1))
        bye = parse_message((await callee.receive())[0])
        assert bye.method == "BYE"
        callee.send((f"SIP/2.0 200 OK\r\nVia: {bye.header('Via')}\r\nFrom: {bye.header('From')}"
                     f"\r\nTo: {bye.header('To')}\r\nCall-ID: {bye.call_id}\r\n"
                     f"CSeq: {bye.header('CSeq')}\r\nContent-Length: 0\r\n\r\n").encode(), source)
        assert (await byes).status == 200
    finally:
        callee.close()


def response_to(request: Request, status: int, reason: str = "X") -> bytes:
    return (f"SIP/2.0 {status} {reason}\r\nVia: {request.header('Via')}\r\n"
            f"From: {request.header('From')}\r\nTo: {request.header('To')};tag=a\r\n"
            f"Call-ID: {request.call_id}\r\nCSeq: {request.header('CSeq')}\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


@pytest.fixture
async def callee():
    """The far end of a call out: a bare UDP socket the test answers by hand."""
    udp = await Udp.open()
    yield udp
    udp.close()


def call_out(ua: SipUserAgent, callee: Udp, *, timeout_s: float):
    """``ua.invite`` to ``callee`` with a PCMU offer, giving up after ``timeout_s``."""
    offer = make_offer(address="127.0.0.1", port=4000, session_id=1, session_version=1)
    return ua.invite(f"sip:agent@127.0.0.1:{callee.port}", sdp_offer_bytes=bytes(offer),
                     timeout_s=timeout_s)


async def ring_then_accept_the_cancel(callee: Udp, invite: Request, source, calling) -> None:
    """The callee rings (180), answers the CANCEL that this lets out with 200 and the INVITE
    with 487; the call out ends with no dialog."""
    callee.send(response_to(invite, 180, "Ringing"), source)
    while (cancel := parse_message((await callee.receive())[0])).method != "CANCEL":
        pass
    callee.send(response_to(cancel, 200), source)
    callee.send(response_to(invite, 487, "Request Terminated"), source)
    dialog, response = await asyncio.wait_for(calling, 2)
    assert dialog is None and response.status == 487


async def test_calling_out_with_no_answer_cancels(ua, callee):
    calling = asyncio.create_task(call_out(ua, callee, timeout_s=0.3))
    data, source = await callee.receive()
    invite = parse_message(data)
    await ring_then_accept_the_cancel(callee, invite, source, calling)


async def test_no_cancel_goes_out_before_a_provisional_response(ua, callee):
    # RFC 3261 9.1: a CANCEL must wait for a provisional response. None comes here: the INVITE
    # is retransmitted until timer B (64 T1) and the call fails, with no CANCEL ever sent.
    with pytest.raises(SipTransactionError):
        await call_out(ua, callee, timeout_s=0.1)
    methods = {parse_message(data).method for data in callee.drain()}
    assert methods == {"INVITE"}, methods


async def test_a_cancel_held_back_goes_out_when_the_callee_starts_ringing(ua, callee):
    calling = asyncio.create_task(call_out(ua, callee, timeout_s=0.1))
    data, source = await callee.receive()
    invite = parse_message(data)
    await asyncio.sleep(0.3)  # past timeout_s: the CANCEL is due but held back
    assert {parse_message(d).method for d in callee.drain()} <= {"INVITE"}
    await ring_then_accept_the_cancel(callee, invite, source, calling)
