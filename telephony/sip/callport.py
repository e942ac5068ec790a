"""The user agent as a transfer sees it: ``SipCallPort`` (``telephony.sip.control``) for one
answered ``SipCall``.

``SipCallControl`` is sans-socket: it asks for requests to be sent, an agent to be called, a
fresh RTP endpoint and the caller's media. :class:`UserAgentPort` answers those with the
``SipUserAgent`` primitives and the ``SipCall``'s own hooks (``hand_over_media``,
``end_conversation``); nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from telephony.rtp.session import RtpSession
from telephony.sip.bridge import AudioLeg
from telephony.sip.dialog import Dialog
from telephony.sip.errors import SipStateError
from telephony.sip.message import Request, Response

if TYPE_CHECKING:
    from telephony.sip.call import SipCall

__all__ = ["UserAgentPort"]

# ``ua.invite`` CANCELs by itself after its own timeout; the control's agent-answer timeout
# must fire first (it CANCELs by cancelling the task), so the user agent's is this much longer.
INVITE_TIMEOUT_MARGIN_S = 10.0


class UserAgentPort:
    """``SipCallPort`` over ``call.ua`` for ``call``."""

    def __init__(self, call: SipCall, *, agent_answer_timeout_s: float) -> None:
        self._call = call
        self._invite_timeout_s = agent_answer_timeout_s + INVITE_TIMEOUT_MARGIN_S

    @property
    def call_id(self) -> str:
        return self._call.call_id

    @property
    def dialog(self) -> Dialog:
        return self._call.dialog

    @property
    def media_address(self) -> str:
        return self._call.ua.media_address

    async def send_in_dialog(self, dialog: Dialog, request: Request) -> Response:
        call, ua = self._call, self._call.ua
        leg = call if dialog is call.dialog else ua.leg(dialog)
        if leg is None:
            raise SipStateError(f"{request.method}: the dialog is no longer known")
        try:
            return await ua.send_in_dialog(leg, request)
        finally:
            if request.method == "BYE" and leg is not call:  # the caller's: SipCall forgets it
                ua.forget_leg(leg)

    async def invite(self, target: str, *, sdp_offer: bytes,
                     on_bye: Callable[[], None]) -> tuple[Dialog | None, Response]:
        ua = self._call.ua
        dialog, response = await ua.invite(target, sdp_offer_bytes=sdp_offer,
                                           timeout_s=self._invite_timeout_s)
        if dialog is not None:
            leg = ua.leg(dialog)
            if leg is not None:
                leg.on_bye = on_bye
        return dialog, response

    async def open_agent_media(self) -> RtpSession:
        return await self._call.ua.open_rtp()

    async def take_caller_media(self) -> AudioLeg:
        return self._call.hand_over_media()

    async def end_call(self) -> None:
        self._call.end_conversation()
