"""Fuzzing the wire parsers: mutated SIP, SDP, RTP and DTMF bytes raise one precise error or parse.

Every case is derived from a seeded ``random.Random``, so a failure repeats; the failing input
is shown. A message that parses must also survive its accessors and a round trip through bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

import pytest

from telephony.rtp.dtmf import DtmfReceiver, DtmfSender, TelephoneEvent
from telephony.rtp.jitter import JitterBuffer
from telephony.rtp.packet import RtpError, RtpExtension, RtpPacket, RtpSender
from telephony.sip.digest import (
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    authorize,
)
from telephony.sip.errors import SdpError, SipParseError
from telephony.sip.headers import Address, SipUri, Via
from telephony.sip.message import Request, SipStreamFramer, parse_message
from telephony.sip.refer import parse_sipfrag
from telephony.sip.sdp import SessionDescription, answer_offer
from tests.fixtures.sip import load

pytestmark = pytest.mark.unit
T = TypeVar("T")

SEEDS = ["invite_sipp.sip", "invite_baresip.sip", "bye.sip", "options_compact.sip",
         "notify_sipfrag.sip", "ok_agent.sip", "reinvite_hold.sip"]
SPECIALS = [b"<", b">", b'"', b";", b",", b":", b"@", b"=", b"\r\n", b"\n", b" ", b"\t", b"%",
            b"/", b"[", b"]", b"?", b"\\", b"\x00", b"\r\n\r\n", b"\r\n "]
NON_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x9f\x98", b"\x80"]
HUGE = [b"a" * 1000, b"9" * 40, b"9" * 5000, "\u00b2\u0663".encode(), b"x" * 70_000, b"-1", b"4294967296", b"99999", b";" * 500,
        b"," * 500, b"<" * 100]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three random damages, the kinds real traffic and attackers produce."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(10)
        position = rng.randrange(len(data) + 1)
        if kind == 0 and data:  # bit flips
            buffer = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
            data = bytes(buffer)
        elif kind == 1:  # truncation
            data = data[:position]
        elif kind in (2, 3):  # a duplicated or removed line
            lines = _lines(data)
            i = rng.randrange(len(lines))
            lines[i:i + 1] = [lines[i]] * 2 if kind == 2 else []
            data = b"\r\n".join(lines)
        elif kind == 4:  # a huge or absurd value after a colon, space or equals sign
            marks = [i + 1 for i, c in enumerate(data) if c in b": ="] or [position]
            at = rng.choice(marks)
            data = data[:at] + rng.choice(HUGE) + data[at:]
        elif kind == 5:  # random bytes over a slice
            size = rng.randint(1, 16)
            data = data[:position] + rng.randbytes(size) + data[position + size:]
        elif kind == 6:  # invalid UTF-8
            data = data[:position] + rng.choice(NON_UTF8) + data[position:]
        elif kind == 7:  # a delimiter where it hurts
            data = data[:position] + rng.choice(SPECIALS) + data[position:]
        elif kind == 8:  # two lines swapped
            lines = _lines(data)
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\r\n".join(lines)
        else:  # a header emptied
            lines = _lines(data)
            i = rng.randrange(len(lines))
            lines[i] = lines[i].split(b":", 1)[0] + b":"
            data = b"\r\n".join(lines)
    return data


def survive(parse: Callable[[bytes], T], data: bytes,
            allowed: tuple[type[Exception], ...]) -> T | None:
    try:
        return parse(data)
    except allowed:
        return None
    except Exception as exc:  # pragma: no cover - the failure report
        raise AssertionError(f"{type(exc).__name__}: {exc} for input {data!r:.400}") from exc


def check_sip(data: bytes) -> object:
    message = parse_message(data)
    # what the layers above touch must not fail on a message that parsed
    _ = (message.via, message.top_via, message.cseq, message.from_, message.to, message.call_id,
         message.contact, message.record_route, message.content_type)
    again = parse_message(bytes(message))
    assert again == message, f"round trip changed {data!r:.300}"
    if isinstance(message, Request):
        message.uri.transport  # noqa: B018
    return message


def test_mutated_sip_messages_raise_only_sip_parse_errors() -> None:
    rng = random.Random(3261)
    seeds = [load(name) for name in SEEDS]
    parsed = 0
    for _ in range(3000):
        data = mutate(rng, rng.choice(seeds))
        parsed += survive(check_sip, data, (SipParseError,)) is not None
    assert parsed > 100  # the mutations are not all fatal: the checks above ran on many


def test_random_bytes_raise_only_sip_parse_errors() -> None:
    rng = random.Random(7)
    for _ in range(500):
        survive(check_sip, rng.randbytes(rng.randrange(300)), (SipParseError,))
        survive(check_sip, b"INVITE sip:a@b SIP/2.0\r\n" + rng.randbytes(rng.randrange(200)),
                (SipParseError,))


def test_mutated_tcp_streams_frame_or_fail_with_sip_parse_errors() -> None:
    rng = random.Random(5626)
    seeds = [load(name) for name in SEEDS]
    for _ in range(300):
        stream = b"".join(mutate(rng, rng.choice(seeds)) for _ in range(3))
        framer = SipStreamFramer()

        def frame(data: bytes, framer: SipStreamFramer = framer) -> list[bytes]:
            out: list[bytes] = []
            for i in range(0, len(data), 97):
                out += framer.feed(data[i:i + 97])
            return out

        for message in survive(frame, stream, (SipParseError,)) or []:
            survive(check_sip, message, (SipParseError,))


def _as_text(parse: Callable[[str], object]) -> Callable[[bytes], object]:
    return lambda data: parse(data.decode("utf-8", "replace"))


def test_mutated_header_values_raise_only_sip_parse_errors() -> None:
    rng = random.Random(25)
    values = [b'"Alice, Example" <sip:alice@example.org;transport=udp>;tag=77',
              b"SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport;received=1.2.3.4",
              b"sips:bob:pw@host.example.org:5061;lr?Replaces=a%40b",
              b'Digest username="u", realm="r", nonce="n", uri="sip:r", response="0", qop=auth, '
              b'nc=00000001, cnonce="c"']
    parsers: list[Callable[[str], object]] = [Address.parse, Via.parse, SipUri.parse,
                                               DigestCredentials.parse, DigestChallenge.parse]
    for _ in range(2000):
        data = mutate(rng, rng.choice(values))
        for parse in parsers:
            survive(_as_text(parse), data, (SipParseError,))


def test_mutated_sdp_raises_only_sdp_errors_and_parsed_offers_are_answered_or_refused() -> None:
    rng = random.Random(4566)
    seeds = [parse_message(load(name)).body for name in
             ("invite_sipp.sip", "invite_baresip.sip", "ok_agent.sip", "reinvite_hold.sip")]

    def negotiate(data: bytes) -> object:
        sdp = SessionDescription.parse(data)
        assert SessionDescription.parse(bytes(sdp)) == sdp
        return answer_offer(sdp, address="192.0.2.10", port=30000, session_id=1,
                            session_version=1)

    for _ in range(2000):
        survive(negotiate, mutate(rng, rng.choice(seeds)), (SdpError,))


def test_mutated_rtp_raises_only_rtp_errors_and_parsed_packets_round_trip() -> None:
    rng = random.Random(3550)
    sender = RtpSender(0, rng=rng)
    seeds = [bytes(sender.audio(b"\xff" * 160)),
             bytes(RtpPacket(8, 1, 2, 3, b"\xd5" * 20, True, (4, 5), RtpExtension(0xBEDE, b"1234"),
                             b"\x00\x00\x03")),
             *[bytes(p) for p in DtmfSender(sender, 101).packets("7")]]
    buffer, receiver = JitterBuffer(), DtmfReceiver()

    def check(data: bytes) -> object:
        packet = RtpPacket.parse(data)
        assert bytes(packet) == data
        buffer.push(packet)
        if packet.payload_type == 101:
            receiver.receive(packet)
        return packet

    for _ in range(3000):
        survive(check, mutate(rng, rng.choice(seeds)), (RtpError,))
        survive(check, rng.randbytes(rng.randrange(40)), (RtpError,))


def test_mutated_dtmf_payloads_and_sipfrags_raise_only_their_errors() -> None:
    rng = random.Random(4733)
    for _ in range(1000):
        payload = mutate(rng, bytes(TelephoneEvent(11, True, 10, 800)))
        event = survive(TelephoneEvent.parse, payload, (RtpError,))
        if event is not None:
            assert TelephoneEvent.parse(bytes(event)) == event
        survive(parse_sipfrag, mutate(rng, b"SIP/2.0 200 OK\r\n"), (SipParseError,))


def test_digest_with_mutated_headers_fails_only_with_parse_errors() -> None:
    rng = random.Random(7616)
    server = DigestAuthenticator(b"fuzzing-secret-0123456789", "r")
    challenge = str(server.challenge(now=0.0)).encode()
    answer = str(authorize(challenge.decode(), method="INVITE", uri="sip:r", username="u",
                           password="p")).encode()

    def answer_it(data: bytes) -> object:
        return authorize(data.decode("utf-8", "replace"), method="INVITE", uri="sip:r",
                         username="u", password="p")

    def check_it(data: bytes) -> object:
        return server.check(data.decode("utf-8", "replace"), method="INVITE", password="p",
                            now=1.0)

    for _ in range(1000):
        survive(answer_it, mutate(rng, challenge), (SipParseError,))
        survive(check_it, mutate(rng, answer), (SipParseError,))
