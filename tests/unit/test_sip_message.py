"""telephony.sip.message and .headers: SIP bytes ⇄ requests and responses, with wire fixtures."""

from __future__ import annotations

import pytest

from telephony.sip.errors import SipParseError
from telephony.sip.headers import Address, CSeq, Headers, SipUri, Via
from telephony.sip.message import (
    MAGIC_COOKIE,
    Request,
    Response,
    SipStreamFramer,
    is_keepalive,
    new_branch,
    parse_message,
    response_for,
    stamp_received,
)
from tests.fixtures.sip import load

pytestmark = pytest.mark.unit


def invite() -> Request:
    message = parse_message(load("invite_baresip.sip"))
    assert isinstance(message, Request)
    return message


# ------------------------------------------------------------------------------ fixtures parse
def test_sipp_invite_is_parsed_with_its_sdp_body() -> None:
    message = parse_message(load("invite_sipp.sip"))
    assert isinstance(message, Request)
    assert message.method == "INVITE"
    assert message.uri == SipUri("sip", "service", "192.0.2.10", 5060)
    assert message.call_id == "1-4123@192.0.2.20"
    assert message.cseq == CSeq(1, "INVITE")
    assert message.from_.tag == "4123SIPpTag001" and message.from_.display_name == "sipp"
    assert message.to.tag is None
    assert message.contact[0].uri == SipUri("sip", "sipp", "192.0.2.20", 5061)
    assert message.content_type == "application/sdp"
    assert message.body.startswith(b"v=0\r\n") and len(message.body) == 131


def test_baresip_invite_has_rport_and_a_quoted_display_name() -> None:
    message = invite()
    via = message.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "198.51.100.7", 5060)
    assert via.branch == "z9hG4bK5d3b9a2c1e0f7a61" and via.param("rport") == ""
    assert message.from_.display_name == "Alice Example"
    assert message.contact[0].uri.transport == "UDP"
    assert message.headers.values("Allow")[:3] == ["INVITE", "ACK", "BYE"]


def test_compact_forms_folding_and_case_are_understood() -> None:
    message = parse_message(load("options_compact.sip"))
    assert isinstance(message, Request) and message.method == "OPTIONS"
    assert [via.sent_by for via in message.via] == ["203.0.113.5:5070", "203.0.113.1"]
    assert message.via[1].received == "203.0.113.9"
    assert message.call_id == "opt-5521@203.0.113.5"
    assert message.headers.get("Supported") == "replaces"
    assert message.headers.values("k") == ["replaces", "timer"]
    assert message.headers.get("MAX-FORWARDS") == "69"
    assert message.headers.get("Subject") == "keep alive"
    assert message.body == b""


def test_a_response_is_parsed_with_its_record_route() -> None:
    message = parse_message(load("ok_agent.sip"))
    assert isinstance(message, Response)
    assert (message.status, message.reason, message.success) == (200, "OK", True)
    assert message.record_route[0].uri.loose_route
    assert message.top_via.rport == 5060


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("name", ["invite_sipp.sip", "invite_baresip.sip", "bye.sip",
                                  "notify_sipfrag.sip", "ok_agent.sip", "options_compact.sip"])
def test_serialised_messages_parse_back_to_the_same_message(name: str) -> None:
    message = parse_message(load(name))
    again = parse_message(bytes(message))
    assert again == message
    assert bytes(again) == bytes(message)


def test_serialising_writes_a_content_length_that_matches_the_body() -> None:
    message = invite()
    message.body = b"hello"
    wire = bytes(message)
    assert b"Content-Length: 5\r\n\r\nhello" in wire
    assert wire.count(b"Content-Length") == 1


# ------------------------------------------------------------------------------ Content-Length
def test_bytes_beyond_content_length_are_ignored() -> None:
    message = parse_message(load("bye.sip") + b"garbage")
    assert message.body == b""


def test_a_body_shorter_than_content_length_is_an_error() -> None:
    with pytest.raises(SipParseError, match="shorter"):
        parse_message(load("invite_sipp.sip")[:-10])


def test_without_content_length_the_datagram_rest_is_the_body_but_a_stream_needs_it() -> None:
    wire = load("bye.sip").replace(b"Content-Length: 0\r\n", b"") + b"xyz"
    assert parse_message(wire).body == b"xyz"
    with pytest.raises(SipParseError, match="Content-Length"):
        parse_message(wire, stream=True)


def test_conflicting_content_lengths_are_an_error() -> None:
    wire = load("bye.sip").replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 3")
    with pytest.raises(SipParseError):
        parse_message(wire + b"abc")


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("wire, status", [
    (b"", 400),
    (b"INVITE sip:a@b SIP/2.0\r\n", 400),
    (b"\xff\xfe\r\n\r\n", 400),
    (b"INVITE sip:a@b SIP/3.0\r\n\r\n", 505),
    (b"INVITE http://a SIP/2.0\r\n\r\n", 416),
    (b"SIP/2.0 99 Odd\r\n\r\n", 400),
])
def test_bad_start_lines_raise_a_parse_error_with_the_status_to_answer(wire: bytes,
                                                                        status: int) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(wire)
    assert caught.value.status == status


@pytest.mark.parametrize("header", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_a_missing_mandatory_header_is_an_error(header: str) -> None:
    message = invite()
    message.headers.remove(header)
    with pytest.raises(SipParseError):
        parse_message(bytes(message))


def test_a_cseq_method_that_differs_from_the_request_method_is_an_error() -> None:
    wire = load("bye.sip").replace(b"CSeq: 31507 BYE", b"CSeq: 31507 INVITE")
    with pytest.raises(SipParseError, match="CSeq"):
        parse_message(wire)


def test_a_message_over_the_size_limit_is_refused_with_513() -> None:
    with pytest.raises(SipParseError) as caught:
        parse_message(load("invite_sipp.sip"), max_size=100)
    assert caught.value.status == 513


def test_leading_blank_lines_and_bare_line_feeds_are_tolerated() -> None:
    wire = b"\r\n" + load("bye.sip").replace(b"\r\n", b"\n")
    assert parse_message(wire).cseq == CSeq(31507, "BYE")


def test_keepalives_are_recognised() -> None:
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n")
    assert not is_keepalive(b"") and not is_keepalive(load("bye.sip"))


# ------------------------------------------------------------------------------ header values
@pytest.mark.parametrize("text", [
    "sip:alice@example.org", "sip:alice:secret@example.org:5070;transport=tcp;lr",
    "sips:bob@[2001:db8::1]:5061", "sip:192.0.2.1", "tel:+15550100;phone-context=example.org",
    "sip:agent@192.0.2.30?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2",
])
def test_uris_round_trip(text: str) -> None:
    assert str(SipUri.parse(text)) == text


def test_uri_parts_are_split() -> None:
    uri = SipUri.parse("SIP:alice:pw@example.org:5070;transport=TCP;lr?subject=hi")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip", "alice", "pw", "example.org", 5070)
    assert (uri.transport, uri.loose_route, uri.headers) == ("TCP", True, "subject=hi")


@pytest.mark.parametrize("text", ["sip:", "sip:@host", "sip:a@", "sip:a@host:99999",
                                  "sip:a@host:x", "sip:a b@host", "mailto:a@b", "sip:a@[::1"])
def test_bad_uris_raise_parse_errors(text: str) -> None:
    with pytest.raises(SipParseError):
        SipUri.parse(text)


def test_a_long_bad_host_is_refused_without_backtracking() -> None:
    # a regular expression with nested repetition would take years on this (ReDoS)
    with pytest.raises(SipParseError):
        SipUri.parse("sip:a@" + "a" * 50_000 + "!")
    with pytest.raises(SipParseError):
        Via.parse("SIP/2.0/UDP " + "a." * 30_000 + "!")


def test_huge_numbers_are_refused_as_parse_errors() -> None:
    wire = load("bye.sip").replace(b"Max-Forwards: 70", b"Max-Forwards: " + b"9" * 5000)
    with pytest.raises(SipParseError):
        parse_message(wire)


def test_name_addr_forms() -> None:
    quoted = Address.parse('"Doe, John \\"JD\\"" <sip:jd@example.org;transport=udp>;tag=88')
    assert quoted.display_name == 'Doe, John "JD"' and quoted.tag == "88"
    assert quoted.uri.param("transport") == "udp"
    bare = Address.parse("sip:jd@example.org;tag=99")
    assert bare.tag == "99" and bare.uri.params == ()  # addr-spec params belong to the header
    tokens = Address.parse("Alice Smith <sip:alice@example.org>")
    assert tokens.display_name == "Alice Smith" and tokens.tag is None
    assert Address.parse(str(quoted)) == quoted
    assert Address.parse(str(bare.with_tag("x"))).tag == "x"


def test_contacts_in_one_header_split_outside_quotes_and_brackets() -> None:
    headers = Headers([("m", '"A, B" <sip:a@h;x=1,2>, <sip:c@h>;q=0.5')])
    assert headers.values("Contact") == ['"A, B" <sip:a@h;x=1,2>', "<sip:c@h>;q=0.5"]


def test_via_with_spaces_around_slashes_and_ipv6() -> None:
    via = Via.parse("SIP / 2.0 / tcp [2001:db8::9]:5070 ;branch=z9hG4bKx ; rport=5071")
    assert (via.transport, via.host, via.port, via.branch, via.rport) == (
        "TCP", "[2001:db8::9]", 5070, "z9hG4bKx", 5071)
    assert Via.parse(str(via)) == via


def test_via_is_stamped_with_received_and_rport_for_nat() -> None:
    via = invite().top_via.stamped("203.0.113.44", 40123)
    assert (via.received, via.rport) == ("203.0.113.44", 40123)
    assert via.response_address() == ("203.0.113.44", 40123)
    plain = Via.parse("SIP/2.0/UDP 192.0.2.5:5080;branch=z9hG4bK1").stamped("192.0.2.5", 5080)
    assert plain.received is None and plain.response_address() == ("192.0.2.5", 5080)


@pytest.mark.parametrize("text", ["", "1", "x INVITE", "1 INV ITE", "99999999999 BYE"])
def test_bad_cseq_values_raise_parse_errors(text: str) -> None:
    with pytest.raises(SipParseError):
        CSeq.parse(text)


# ------------------------------------------------------------------------------ responses
def test_response_copies_via_from_to_call_id_and_cseq_and_adds_the_to_tag() -> None:
    request = parse_message(load("options_compact.sip"))
    assert isinstance(request, Request)
    response = response_for(request, 200, to_tag="ours1", headers=[("Allow", "INVITE, BYE")])
    assert response.reason == "OK"
    assert [via.sent_by for via in response.via] == ["203.0.113.5:5070", "203.0.113.1"]
    assert response.from_ == request.from_ and response.call_id == request.call_id
    assert response.to.tag == "ours1" and response.cseq == request.cseq
    assert Response.parse(bytes(response)) == response


def test_response_keeps_an_existing_to_tag() -> None:
    request = parse_message(load("bye.sip"))
    assert isinstance(request, Request)
    assert response_for(request, 200, to_tag="other").to.tag == "as5f3a1b2c"


def test_response_carries_a_typed_body() -> None:
    response = response_for(invite(), 488, body=b"x", content_type="text/plain")
    assert (response.reason, response.content_type, response.body) == (
        "Not Acceptable Here", "text/plain", b"x")


def test_stamp_received_rewrites_only_the_top_via() -> None:
    request = stamp_received(invite(), "203.0.113.44", 40123)
    assert request.top_via.rport == 40123 and len(request.via) == 1
    assert response_for(request, 100).top_via.received == "203.0.113.44"


def test_branches_carry_the_magic_cookie_and_are_unique() -> None:
    assert new_branch().startswith(MAGIC_COOKIE) and new_branch() != new_branch()


# ------------------------------------------------------------------------------ TCP framing
def test_framer_cuts_a_stream_into_messages_however_it_is_chunked() -> None:
    stream = load("invite_baresip.sip") + b"\r\n\r\n" + load("bye.sip") + load("ok_agent.sip")
    for size in (1, 7, 100, len(stream)):
        framer = SipStreamFramer()
        out: list[bytes] = []
        for i in range(0, len(stream), size):
            out += framer.feed(stream[i:i + size])
        assert [parse_message(m, stream=True).cseq.method for m in out] == ["INVITE", "BYE",
                                                                            "INVITE"]
        assert framer.keepalives == 1


def test_framer_refuses_a_message_without_content_length() -> None:
    framer = SipStreamFramer()
    with pytest.raises(SipParseError):
        framer.feed(load("bye.sip").replace(b"Content-Length: 0\r\n", b""))


def test_framer_refuses_endless_headers() -> None:
    framer = SipStreamFramer(max_size=1000)
    with pytest.raises(SipParseError):
        for _ in range(100):
            framer.feed(b"X-Junk: " + b"a" * 50 + b"\r\n")


def test_framer_waits_for_the_rest_of_a_body() -> None:
    wire = load("invite_sipp.sip")
    framer = SipStreamFramer()
    assert framer.feed(wire[:-1]) == []
    assert framer.feed(wire[-1:]) == [wire]
