"""telephony.sip.digest: digest responses (RFC test vectors), stateless nonces, both sides."""

from __future__ import annotations

import pytest

from telephony.sip.digest import (
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    DigestResult,
    authorize,
    digest_response,
)
from telephony.sip.errors import SipParseError

pytestmark = pytest.mark.unit

SECRET = b"0123456789abcdef-test-secret"
T0 = 1_700_000_000.0


def test_rfc_2617_md5_example() -> None:
    assert digest_response(
        algorithm="MD5", username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
        method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth", cnonce="0a4f113b", nc="00000001") == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("algorithm, expected", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc_7616_examples(algorithm: str, expected: str) -> None:
    assert digest_response(
        algorithm=algorithm, username="Mufasa", realm="http-auth@example.org",
        password="Circle of Life", method="GET", uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", qop="auth",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc="00000001") == expected


def test_challenge_header_round_trips() -> None:
    server = DigestAuthenticator(SECRET, "iva.example.org")
    challenge = server.challenge(now=T0, algorithm="SHA-256", stale=True)
    text = str(challenge)
    assert text.startswith('Digest realm="iva.example.org", nonce="')
    assert 'algorithm=SHA-256, qop="auth", stale=true' in text
    assert DigestChallenge.parse(text) == challenge


def test_a_phone_answering_our_challenge_is_let_in() -> None:
    server = DigestAuthenticator(SECRET, "iva.example.org")
    challenge = str(server.challenge(now=T0))
    header = str(authorize(challenge, method="INVITE", uri="sip:assistant@iva.example.org",
                           username="alice", password="s3cret"))
    assert header.startswith('Digest username="alice", realm="iva.example.org"')
    assert "qop=auth, " in header and "nc=00000001" in header
    assert server.check(header, method="INVITE", password="s3cret", now=T0 + 5,
                        request_uri="sip:assistant@iva.example.org") is DigestResult.OK


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
def test_every_algorithm_verifies(algorithm: str) -> None:
    server = DigestAuthenticator(SECRET, "r")
    credentials = authorize(server.challenge(now=T0, algorithm=algorithm), method="REGISTER",
                            uri="sip:r", username="u", password="p")
    assert server.check(credentials, method="REGISTER", password="p", now=T0) is DigestResult.OK


def test_auth_int_covers_the_body() -> None:
    server = DigestAuthenticator(SECRET, "r", qop="auth-int")
    credentials = authorize(server.challenge(now=T0), method="INVITE", uri="sip:r",
                            username="u", password="p", body=b"v=0")
    assert credentials.qop == "auth-int"
    assert server.check(credentials, method="INVITE", password="p", now=T0,
                        body=b"v=0") is DigestResult.OK
    assert server.check(credentials, method="INVITE", password="p", now=T0,
                        body=b"v=1") is DigestResult.INVALID


def test_rfc_2069_answers_without_qop_work_when_the_server_asks_for_none() -> None:
    server = DigestAuthenticator(SECRET, "r", qop=None)
    credentials = authorize(server.challenge(now=T0), method="INVITE", uri="sip:r",
                            username="u", password="p")
    assert credentials.qop is None and credentials.cnonce is None
    assert server.check(credentials, method="INVITE", password="p", now=T0) is DigestResult.OK


def test_wrong_password_method_uri_or_realm_is_invalid() -> None:
    server = DigestAuthenticator(SECRET, "r")
    good = authorize(server.challenge(now=T0), method="INVITE", uri="sip:r", username="u",
                     password="p")
    assert server.check(good, method="INVITE", password="x", now=T0) is DigestResult.INVALID
    assert server.check(good, method="BYE", password="p", now=T0) is DigestResult.INVALID
    assert server.check(good, method="INVITE", password="p", now=T0,
                        request_uri="sip:other") is DigestResult.INVALID
    other_realm = DigestAuthenticator(SECRET, "elsewhere")
    assert other_realm.check(good, method="INVITE", password="p", now=T0) is (
        DigestResult.INVALID)


def test_a_nonce_we_did_not_sign_is_invalid() -> None:
    server = DigestAuthenticator(SECRET, "r")
    forged = DigestChallenge("r", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    credentials = authorize(forged, method="INVITE", uri="sip:r", username="u", password="p")
    assert server.check(credentials, method="INVITE", password="p", now=T0) is (
        DigestResult.INVALID)
    other_secret = DigestAuthenticator(b"another-secret-of-16+", "r")
    credentials = authorize(other_secret.challenge(now=T0), method="INVITE", uri="sip:r",
                            username="u", password="p")
    assert server.check(credentials, method="INVITE", password="p", now=T0) is (
        DigestResult.INVALID)


def test_an_expired_nonce_with_the_right_password_is_stale() -> None:
    server = DigestAuthenticator(SECRET, "r", nonce_ttl=60)
    credentials = authorize(server.challenge(now=T0), method="INVITE", uri="sip:r",
                            username="u", password="p")
    assert server.check(credentials, method="INVITE", password="p", now=T0 + 60) is (
        DigestResult.OK)
    assert server.check(credentials, method="INVITE", password="p", now=T0 + 61) is (
        DigestResult.STALE)
    assert server.check(credentials, method="INVITE", password="x", now=T0 + 61) is (
        DigestResult.INVALID)


def test_a_nonce_bound_to_an_address_fails_from_another() -> None:
    server = DigestAuthenticator(SECRET, "r")
    credentials = authorize(server.challenge(now=T0, context="198.51.100.7"), method="INVITE",
                            uri="sip:r", username="u", password="p")
    assert server.check(credentials, method="INVITE", password="p", now=T0,
                        context="198.51.100.7") is DigestResult.OK
    assert server.check(credentials, method="INVITE", password="p", now=T0,
                        context="203.0.113.1") is DigestResult.INVALID


def test_credentials_parse_quoted_values_with_commas() -> None:
    text = ('Digest username="a,b", realm="r", nonce="n", uri="sip:x;transport=tcp", '
            'response="00", algorithm=MD5, qop=auth, nc=00000001, cnonce="c"')
    credentials = DigestCredentials.parse(text)
    assert credentials.username == "a,b" and credentials.uri == "sip:x;transport=tcp"
    assert DigestCredentials.parse(str(credentials)) == credentials


@pytest.mark.parametrize("text", ["Basic dXNlcjpwYXNz", "Digest", 'Digest realm="r"',
                                  'Digest username="u", realm="r", nonce="n", uri="u"',
                                  'Digest realm="r, nonce=x', "Digest =x"])
def test_malformed_headers_raise_parse_errors(text: str) -> None:
    with pytest.raises(SipParseError):
        DigestCredentials.parse(text)


def test_a_challenge_with_an_unknown_algorithm_cannot_be_answered() -> None:
    with pytest.raises(SipParseError):
        authorize('Digest realm="r", nonce="n", algorithm=SHA-512-256', method="INVITE",
                  uri="sip:r", username="u", password="p")
