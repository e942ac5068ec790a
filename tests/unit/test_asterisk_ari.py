import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from telephony.asterisk.ari import (
    AriCallControl,
    AriConfig,
    AriError,
    DialplanTarget,
    EndpointTarget,
    hangup_request,
    parse_target,
    transfer_request,
)

pytestmark = pytest.mark.unit

USER, PASSWORD = "iva", "s3cret"
GOOD_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class FakeAri:
    """A loopback stand-in for Asterisk's ARI: records requests, answers like ARI does."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 204
        self.body = b""
        ari = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                ari.requests.append({"method": self.command, "path": url.path,
                                     "query": dict(urllib.parse.parse_qsl(url.query)),
                                     "auth": self.headers.get("Authorization")})
                status, body = ari.status, ari.body
                if self.headers.get("Authorization") != GOOD_AUTH:
                    status, body = 401, b'{"message": "Authentication required"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_DELETE = _answer  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()


@pytest.fixture
def ari() -> Iterator[FakeAri]:
    fake = FakeAri()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def control_for(ari: FakeAri, *, channel: str | None = "1715000000.42", context: str | None = None,
                password: str = PASSWORD, ended: list | None = None) -> AriCallControl:
    async def end_stream() -> None:
        if ended is not None:
            ended.append(True)

    config = AriConfig(ari.url, USER, password, context=context, timeout_s=2.0)
    return AriCallControl(config=config, channel_id=lambda: channel, end_stream=end_stream)


HANDOFF = SimpleNamespace(id="h-1")


async def test_a_context_extension_priority_target_continues_in_the_dialplan(ari):
    ended: list = []
    await control_for(ari, ended=ended).transfer("agents,6000,2", HANDOFF)
    (request,) = ari.requests
    assert (request["method"], request["path"]) == ("POST", "/ari/channels/1715000000.42/continue")
    assert request["query"] == {"context": "agents", "extension": "6000", "priority": "2"}
    assert request["auth"] == GOOD_AUTH
    assert ended == [True]  # the call has left us: our media leg ends


async def test_a_bare_extension_goes_to_the_configured_context_at_priority_one(ari):
    await control_for(ari, context="from-iva").transfer("+15550199", HANDOFF)
    assert ari.requests[0]["query"] == {"context": "from-iva", "extension": "+15550199",
                                        "priority": "1"}


async def test_an_endpoint_target_redirects_the_channel(ari):
    await control_for(ari).transfer("PJSIP/agent-desk", HANDOFF)
    (request,) = ari.requests
    assert request["path"] == "/ari/channels/1715000000.42/redirect"
    assert request["query"] == {"endpoint": "PJSIP/agent-desk"}


async def test_hang_up_deletes_the_channel_then_ends_the_media_leg(ari):
    ended: list = []
    await control_for(ari, ended=ended).hang_up(reason="goodbye")
    (request,) = ari.requests
    assert (request["method"], request["path"], request["query"]) == (
        "DELETE", "/ari/channels/1715000000.42", {"reason": "normal"})
    assert ended == [True]


async def test_a_channel_outside_stasis_gives_a_precise_error(ari):
    ari.status, ari.body = 409, b'{"message": "Channel not in Stasis application"}'
    with pytest.raises(AriError, match="not in a Stasis application") as raised:
        await control_for(ari).transfer("agents,6000", HANDOFF)
    assert raised.value.status == 409 and "Channel not in Stasis application" in str(raised.value)


async def test_wrong_credentials_are_named(ari):
    with pytest.raises(AriError, match="user or password is wrong") as raised:
        await control_for(ari, password="nope").transfer("6000", HANDOFF)
    assert raised.value.status == 401


async def test_an_unreachable_ari_is_an_ari_error():
    control = AriCallControl(config=AriConfig("http://127.0.0.1:1", USER, PASSWORD, timeout_s=1),
                             channel_id=lambda: "c1", end_stream=_nothing)
    with pytest.raises(AriError, match="cannot reach ARI"):
        await control.transfer("6000", HANDOFF)


async def test_a_failed_ari_hang_up_still_ends_the_media_leg(ari):
    ari.status, ari.body = 404, json.dumps({"message": "Channel not found"}).encode()
    ended: list = []
    await control_for(ari, ended=ended).hang_up(reason="goodbye")
    assert ended == [True]


async def test_without_ari_hang_up_is_in_band_and_transfers_are_not_offered():
    ended: list = []

    async def end_stream() -> None:
        ended.append(True)

    control = AriCallControl(config=None, channel_id=lambda: "c1", end_stream=end_stream)
    assert not control.can_transfer
    await control.hang_up(reason="goodbye")
    assert ended == [True]
    with pytest.raises(AriError, match="set IVA_ARI_URL"):
        await control.transfer("6000", HANDOFF)


async def test_a_call_without_a_known_channel_cannot_be_transferred(ari):
    with pytest.raises(AriError, match="no ARI channel id"):
        await control_for(ari, channel=None).transfer("6000", HANDOFF)
    assert ari.requests == []


async def _nothing() -> None:
    return None


@pytest.mark.parametrize("target, parsed", [
    ("6001", DialplanTarget("6001", "ctx")),
    ("agents,6000", DialplanTarget("6000", "agents", 1)),
    ("agents, 6000, 3", DialplanTarget("6000", "agents", 3)),
    ("agents,6000,queue-start", DialplanTarget("6000", "agents", None, "queue-start")),
    ("PJSIP/6001", EndpointTarget("PJSIP/6001")),
    ("sip:agent@pbx.example.com", EndpointTarget("PJSIP/sip:agent@pbx.example.com")),
])
def test_transfer_targets_are_understood(target, parsed):
    assert parse_target(target, default_context="ctx") == parsed


@pytest.mark.parametrize("target", ["", "queue:sales", "client:alice", "a,b,c,d", "agents,,1",
                                    "PJSIP/", "two words", "/6001"])
def test_targets_asterisk_cannot_take_are_refused(target):
    with pytest.raises(AriError):
        parse_target(target)


def test_requests_quote_the_channel_id_and_accept_a_url_with_the_ari_prefix():
    config = AriConfig("http://pbx:8088/ari/", USER, PASSWORD)
    assert hangup_request(config, "pbx1/odd id").url == \
        "http://pbx:8088/ari/channels/pbx1%2Fodd%20id?reason=normal"
    request = transfer_request(config, "c1", "PJSIP/agent")
    assert request.url == "http://pbx:8088/ari/channels/c1/redirect?endpoint=PJSIP%2Fagent"
    assert request.headers["Authorization"] == GOOD_AUTH
    assert "s3cret" not in repr(config)


def test_the_service_builds_ari_from_its_settings_and_refuses_half_a_configuration(tmp_path):
    from voice.app import ari_config
    from voice.settings import Settings

    assert ari_config(Settings(data_dir=tmp_path)) is None
    config = ari_config(Settings(data_dir=tmp_path, ari_url="http://pbx:8088", ari_user=USER,
                                 ari_password=PASSWORD, ari_context="agents"))
    assert (config.base, config.context) == ("http://pbx:8088/ari", "agents")
    with pytest.raises(ValueError, match="IVA_ARI_USER and IVA_ARI_PASSWORD"):
        ari_config(Settings(data_dir=tmp_path, ari_url="http://pbx:8088"))
