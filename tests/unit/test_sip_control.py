"""telephony.sip.control: hang-up, blind REFER and warm B2BUA transfers against a fake user agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from telephony.sip.control import SipCallControl, SipTransferConfig, SipTransferError
from telephony.sip.dialog import Dialog, DialogState, build_invite
from telephony.sip.headers import Headers, SipUri
from telephony.sip.message import Request, Response, response_for
from telephony.sip.sdp import SessionDescription, answer_offer
from telephony.sip.transfer import TransferMode, TransferState
from tests.unit.test_sip_bridge import (
    AGENT_LEVEL,
    CALLER_LEVEL,
    FakeLeg,
    FakeSink,
    handoff,
    quiet,
    tone,
    until,
)

pytestmark = pytest.mark.unit

AGENT = "sip:agent@127.0.0.1:5070"
OUR_CONTACT = "<sip:assistant@127.0.0.1:5060>"


def caller_dialog() -> Dialog:
    invite = build_invite("sip:assistant@127.0.0.1:5060", from_="<sip:+15550100@198.51.100.7>",
                          contact="<sip:caller@198.51.100.7:5062>")
    dialog = Dialog.from_invite(invite, contact=OUR_CONTACT)
    dialog.response(invite, 200)
    return dialog


class FakeMedia(FakeLeg):
    port = 40000

    def __init__(self) -> None:
        super().__init__()
        self.configured: Any = None
        self.closed = False

    def configure(self, media: Any) -> None:
        self.configured = media

    async def close(self) -> None:
        self.closed = True


class FakeUserAgent:
    """The SipCallPort of one call: records what is sent, answers from a script."""

    def __init__(self, *, answer: Callable[[Request], Response | None] | None = None,
                 agent_status: int | None = 200, agent_codecs: tuple[str, ...] = ("PCMA",)) -> None:
        self.call_id = "C1"
        self.media_address = "127.0.0.1"
        self.dialog = caller_dialog()
        self.sent: list[tuple[str, str]] = []  # (leg, method)
        self._answer = answer or (lambda request: response_for(request, 200))
        self.agent_status = agent_status  # None: the agent's phone rings forever
        self.agent_codecs = agent_codecs
        self.agent_dialog: Dialog | None = None
        self.on_agent_bye: Callable[[], None] | None = None
        self.invite_cancelled = False
        self.agent_media = FakeMedia()
        self.caller_media = FakeLeg()
        self.caller_media_taken = False
        self.ended = 0

    async def send_in_dialog(self, dialog: Dialog, request: Request) -> Response:
        leg = "caller" if dialog is self.dialog else "agent"
        self.sent.append((leg, request.method))
        await asyncio.sleep(0)
        response = self._answer(request) if leg == "caller" else response_for(request, 200)
        if response is None:  # no answer at all: the transaction would time out
            await asyncio.sleep(3600)
        assert response is not None
        return response

    async def invite(self, target: str, *, sdp_offer: bytes,
                     on_bye: Callable[[], None]) -> tuple[Dialog | None, Response]:
        self.sent.append(("agent", "INVITE"))
        self.on_agent_bye = on_bye
        invite = build_invite(target, from_="<sip:assistant@127.0.0.1>", contact=OUR_CONTACT,
                              body=sdp_offer, content_type="application/sdp")
        try:
            await asyncio.sleep(0.01 if self.agent_status is not None else 3600)
        except asyncio.CancelledError:
            self.invite_cancelled = True
            self.sent.append(("agent", "CANCEL"))
            raise
        assert self.agent_status is not None
        if self.agent_status >= 300:
            return None, response_for(invite, self.agent_status, to_tag="agent1")
        answer = answer_offer(SessionDescription.parse(sdp_offer), address="127.0.0.1", port=41000,
                              session_id=7, session_version=1, codecs=self.agent_codecs)
        response = response_for(invite, 200, to_tag="agent1",
                                headers=[("Contact", f"<{AGENT}>")], body=bytes(answer.sdp),
                                content_type="application/sdp")
        self.agent_dialog = Dialog.from_response(invite, response)
        self.sent.append(("agent", "ACK"))
        return self.agent_dialog, response

    async def open_agent_media(self) -> FakeMedia:
        return self.agent_media

    async def take_caller_media(self) -> FakeLeg:
        self.caller_media_taken = True
        return self.caller_media

    async def end_call(self) -> None:
        self.ended += 1

    def agent_hangs_up(self) -> None:
        assert self.on_agent_bye is not None and self.agent_dialog is not None
        self.on_agent_bye()


def notify(sipfrag: str, *, state: str = "active;expires=60", event: str = "refer") -> Request:
    return Request("NOTIFY", SipUri.parse("sip:assistant@127.0.0.1:5060"), Headers([
        ("Event", event), ("Subscription-State", state),
        ("Content-Type", "message/sipfrag;version=2.0")]), sipfrag.encode())


def control_for(ua: FakeUserAgent, mode: str = "refer", *, briefing: bool = True,
                timeout_s: float = 2.0, speak=None, sink=None) -> SipCallControl:
    config = SipTransferConfig(mode=TransferMode(mode), briefing=briefing,
                               agent_answer_timeout_s=timeout_s, refer_timeout_s=timeout_s)
    return SipCallControl(ua, config, sink=sink, speak=speak, pace_briefing=False)


async def speak_a_second(text: str) -> tuple[bytes, int]:
    return tone(1000, 4000), 8000


# ------------------------------------------------------------------------------ basics
async def test_hang_up_sends_bye_to_the_caller_and_ends_the_call():
    ua = FakeUserAgent()
    await control_for(ua).hang_up(reason="caller said goodbye")
    assert ua.sent == [("caller", "BYE")] and ua.ended == 1
    assert ua.dialog.state is DialogState.TERMINATED


def test_transfers_are_offered_when_a_mode_or_a_target_is_configured():
    ua = FakeUserAgent()
    assert not SipCallControl(ua, SipTransferConfig()).can_transfer
    assert SipCallControl(ua, SipTransferConfig(target_configured=True)).can_transfer
    assert SipCallControl(ua, SipTransferConfig(mode=TransferMode.REFER)).can_transfer
    assert SipTransferConfig().effective_mode is TransferMode.BRIDGE


async def test_a_target_that_is_not_a_sip_uri_is_refused_before_anything_is_sent():
    ua = FakeUserAgent()
    with pytest.raises(SipTransferError, match="not a SIP URI"):
        await control_for(ua).transfer("+15550199", handoff())
    assert ua.sent == []


# ------------------------------------------------------------------------------ blind: REFER
async def test_a_refer_accepted_then_notify_100_and_200_ends_with_a_bye_to_the_caller():
    ua = FakeUserAgent(answer=lambda r: response_for(r, 202))
    control = control_for(ua)
    transfer = asyncio.create_task(control.transfer(AGENT, handoff()))
    await until(lambda: control.machine is not None and
                control.machine.state is TransferState.ACCEPTED)
    assert control.notify_received(notify("SIP/2.0 100 Trying\r\n")) == 200
    assert control.notify_received(notify("SIP/2.0 200 OK\r\n", state="terminated;reason=noresource")) == 200
    await transfer
    assert ua.sent == [("caller", "REFER"), ("caller", "BYE")] and ua.ended >= 1
    assert control.machine.state is TransferState.SUCCEEDED
    assert [s.value for _, s in control.machine.history] == [
        "referring", "accepted", "progressing", "succeeded"]


async def test_the_refer_names_the_target_and_who_referred():
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        return response_for(request, 403)

    with pytest.raises(SipTransferError):
        await control_for(FakeUserAgent(answer=answer)).transfer(AGENT, handoff())
    assert seen[0].headers.get("Refer-To") == f"<{AGENT}>"
    assert seen[0].headers.get("Referred-By") is not None


async def test_a_refer_rejected_with_403_raises_a_transfer_error_and_keeps_the_call():
    ua = FakeUserAgent(answer=lambda r: response_for(r, 403))
    with pytest.raises(SipTransferError, match="REFER answered 403 Forbidden") as caught:
        await control_for(ua).transfer(AGENT, handoff())
    assert caught.value.status == 403 and caught.value.state is TransferState.FAILED
    assert ua.sent == [("caller", "REFER")] and ua.ended == 0


async def test_a_notify_with_a_failing_sipfrag_raises_a_transfer_error():
    ua = FakeUserAgent(answer=lambda r: response_for(r, 202))
    control = control_for(ua)
    transfer = asyncio.create_task(control.transfer(AGENT, handoff()))
    await until(lambda: control.machine is not None and
                control.machine.state is TransferState.ACCEPTED)
    control.notify_received(notify("SIP/2.0 100 Trying\r\n"))
    control.notify_received(notify("SIP/2.0 486 Busy Here\r\n", state="terminated"))
    with pytest.raises(SipTransferError, match="486 Busy Here") as caught:
        await transfer
    assert caught.value.status == 486 and ua.sent == [("caller", "REFER")] and ua.ended == 0


async def test_a_refer_without_a_final_notify_in_time_fails():
    ua = FakeUserAgent(answer=lambda r: response_for(r, 202))
    with pytest.raises(SipTransferError, match="within 0.1 s"):
        await control_for(ua, timeout_s=0.1).transfer(AGENT, handoff())


async def test_notifies_that_are_not_ours_are_answered_with_errors_not_raised():
    ua = FakeUserAgent(answer=lambda r: response_for(r, 202))
    control = control_for(ua, timeout_s=0.2)
    assert control.notify_received(notify("SIP/2.0 200 OK\r\n")) == 481  # no transfer yet
    transfer = asyncio.create_task(control.transfer(AGENT, handoff()))
    await until(lambda: control.machine is not None and
                control.machine.state is TransferState.ACCEPTED)
    assert control.notify_received(notify("SIP/2.0 200 OK\r\n", event="presence")) == 489
    assert control.notify_received(notify("garbage")) == 400
    with pytest.raises(SipTransferError):
        await transfer


# ------------------------------------------------------------------------------ warm: B2BUA
async def test_a_busy_agent_fails_the_warm_transfer_and_the_caller_stays():
    ua = FakeUserAgent(agent_status=486)
    with pytest.raises(SipTransferError, match="486 Busy Here") as caught:
        await control_for(ua, "bridge").transfer(AGENT, handoff())
    assert caught.value.status == 486
    assert not ua.caller_media_taken and ua.agent_media.closed and ua.ended == 0


async def test_an_agent_who_does_not_answer_in_time_is_cancelled():
    ua = FakeUserAgent(agent_status=None)
    with pytest.raises(SipTransferError, match="no answer from the agent within 0.1 s"):
        await control_for(ua, "bridge", timeout_s=0.1).transfer(AGENT, handoff())
    assert ua.invite_cancelled and ("agent", "CANCEL") in ua.sent


async def test_a_warm_transfer_briefs_the_agent_bridges_transcribes_and_ends_both_legs():
    ua, sink = FakeUserAgent(), FakeSink()
    spoken: list[str] = []

    async def speak(text: str) -> tuple[bytes, int]:
        spoken.append(text)
        assert not ua.caller_media_taken, "the caller must not hear the briefing"
        return await speak_a_second(text)

    control = control_for(ua, "bridge", speak=speak, sink=sink)
    await control.transfer(AGENT, handoff())
    assert control.machine.state is TransferState.BRIDGED and ua.caller_media_taken
    assert spoken and "Dana Reyes" in spoken[0]
    assert ua.agent_media.configured.codec.name == "PCMA"
    assert len(ua.agent_media.sent) == 50  # one second of briefing

    ua.caller_media.say(quiet(200) + tone(1000, CALLER_LEVEL) + quiet(900))
    ua.agent_media.say(quiet(200) + tone(1000, AGENT_LEVEL) + quiet(900))
    await until(lambda: ua.caller_media.incoming.empty() and ua.agent_media.incoming.empty())
    await until(lambda: len(ua.agent_media.sent) == 50 + 105 and len(ua.caller_media.sent) == 105)
    control.caller_hung_up()
    assert await control.wait_ended() is TransferState.ENDED
    assert ua.sent == [("agent", "INVITE"), ("agent", "ACK"), ("agent", "BYE")]
    assert sorted(t["speaker"] for t in sink.turns) == ["agent", "caller"]
    assert sink.finished == ["C1"] and ua.agent_media.closed


async def test_the_agent_hanging_up_a_bridged_call_hangs_up_the_caller():
    ua = FakeUserAgent()
    control = control_for(ua, "bridge", briefing=False, speak=speak_a_second)
    await control.transfer(AGENT, handoff())
    assert len(ua.agent_media.sent) == 0  # briefing off
    ua.agent_hangs_up()
    assert await control.wait_ended() is TransferState.ENDED
    assert ua.sent[-1] == ("caller", "BYE") and ("agent", "BYE") not in ua.sent
    assert ua.ended == 1


async def test_hanging_up_a_bridged_call_ends_both_legs():
    ua = FakeUserAgent()
    control = control_for(ua, "bridge", briefing=False)
    await control.transfer(AGENT, handoff())
    await control.hang_up(reason="shutting down")
    assert {("caller", "BYE"), ("agent", "BYE")} <= set(ua.sent)
    assert control.machine.state is TransferState.ENDED


async def test_a_caller_hanging_up_during_the_briefing_ends_the_agent_leg():
    ua = FakeUserAgent()

    async def slow_speak(text: str) -> tuple[bytes, int]:
        return tone(60_000, 4000), 8000

    config = SipTransferConfig(mode=TransferMode.BRIDGE)
    control = SipCallControl(ua, config, speak=slow_speak)  # paced: a minute of briefing
    transfer = asyncio.create_task(control.transfer(AGENT, handoff()))
    await until(lambda: control.machine is not None and
                control.machine.state is TransferState.BRIEFING and ua.agent_media.sent)
    control.caller_hung_up()
    with pytest.raises(SipTransferError, match="caller hung up") as caught:
        await transfer
    assert caught.value.state is TransferState.ENDED
    assert ua.sent[-1] == ("agent", "BYE") and not ua.caller_media_taken


async def test_an_agent_hanging_up_during_the_briefing_fails_the_transfer():
    ua = FakeUserAgent()

    async def slow_speak(text: str) -> tuple[bytes, int]:
        return tone(60_000, 4000), 8000

    control = SipCallControl(ua, SipTransferConfig(mode=TransferMode.BRIDGE), speak=slow_speak)
    transfer = asyncio.create_task(control.transfer(AGENT, handoff()))
    await until(lambda: control.machine is not None and
                control.machine.state is TransferState.BRIEFING and ua.agent_media.sent)
    ua.agent_media.hang_up()
    with pytest.raises(SipTransferError, match="agent hung up during the briefing"):
        await transfer
    assert not ua.caller_media_taken and ua.agent_media.closed


async def test_an_agent_answer_without_usable_audio_is_hung_up():
    ua = FakeUserAgent()
    original = ua.invite

    async def invite_answered_with_video_only(*args: Any, **kwargs: Any):
        dialog, response = await original(*args, **kwargs)
        response.body = response.body.replace(b"m=audio", b"m=video")
        return dialog, response

    ua.invite = invite_answered_with_video_only  # type: ignore[method-assign]
    with pytest.raises(SipTransferError, match="SDP is unusable"):
        await control_for(ua, "bridge").transfer(AGENT, handoff())
    assert ua.sent[-1] == ("agent", "BYE") and not ua.caller_media_taken
