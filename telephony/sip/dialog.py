"""SIP dialogs (RFC 3261 §12), sans I/O: their state, and the requests built inside them.

A ``Dialog`` is made on the answering side from an INVITE (``Dialog.from_invite``, §12.1.1)
or on the calling side from the INVITE and a response with a To tag (``from_response``,
§12.1.2). It then builds our responses (``response``: our tag, our Contact, the Record-Route
copied) and our in-dialog requests (``request``, ``bye``, ``ack``: the route set, the remote
target, our CSeq), and checks the peer's (``receive_request``: Call-ID and tags, CSeq order,
target refresh). Its state machine is the table below: Early until a 2xx to the INVITE,
Terminated by a BYE either way or a failure to the INVITE that created it.

For calling out (the agent leg of a warm transfer), ``build_invite`` makes the initial INVITE
and ``build_cancel`` its CANCEL; the ACK for a 2xx comes from the dialog (``dialog.ack()``).

Errors: ``DialogError`` (481: no such dialog; 500: a CSeq out of order), ``SipStateError`` for
asking a terminated dialog to send a request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum

from telephony.sip.errors import DialogError, SipParseError, SipStateError
from telephony.sip.headers import Address, Headers, SipUri, Via
from telephony.sip.message import (
    Message,
    Request,
    Response,
    new_branch,
    new_call_id,
    new_tag,
    response_for,
)

__all__ = ["TARGET_REFRESH", "Dialog", "DialogState", "as_address", "build_cancel",
           "build_invite"]

TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
"""Requests that carry a Contact and may change the remote target (§12.2, RFC 6665)."""


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


D = DialogState
_TRANSITIONS: dict[tuple[DialogState, str], DialogState] = {
    (D.EARLY, "1xx"): D.EARLY,  # a provisional answer to the INVITE
    (D.EARLY, "2xx"): D.CONFIRMED,  # the INVITE accepted
    (D.EARLY, "failure"): D.TERMINATED,  # the INVITE refused
    (D.EARLY, "bye"): D.TERMINATED,
    (D.CONFIRMED, "2xx"): D.CONFIRMED,  # a re-INVITE accepted (or a 2xx retransmitted)
    (D.CONFIRMED, "failure"): D.CONFIRMED,  # a re-INVITE refused: the call goes on (§14.1)
    (D.CONFIRMED, "bye"): D.TERMINATED,
    (D.CONFIRMED, "gone"): D.TERMINATED,  # 481 or 408 to an in-dialog request (§12.2.1.2)
    (D.EARLY, "gone"): D.TERMINATED,
}


def _without_tag(address: Address) -> Address:
    return replace(address, params=tuple(p for p in address.params if p[0].lower() != "tag"))


def as_address(value: Address | SipUri | str) -> Address:
    """An Address from an Address, a URI, or header text."""
    if isinstance(value, Address):
        return value
    if isinstance(value, SipUri):
        return Address(value)
    return Address.parse(value)


def _via(contact: Address, transport: str) -> str:
    via = Via(transport, contact.uri.host, contact.uri.port,
              (("branch", new_branch()), ("rport", None)))
    return str(via)


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local: Address  # our URI (no tag): From in our requests
    remote: Address  # theirs (no tag): To in our requests
    remote_target: SipUri  # where in-dialog requests go: the peer's Contact
    local_contact: Address  # our Contact
    local_seq: int  # the CSeq of our last request
    remote_seq: int | None  # the CSeq of the peer's last request
    invite_seq: int  # the CSeq of the INVITE last sent or received: its ACK has it
    route_set: list[Address] = field(default_factory=list)
    transport: str = "UDP"
    state: DialogState = DialogState.EARLY

    # -------------------------------------------------------------------- creation
    @classmethod
    def from_invite(cls, invite: Request, *, contact: Address | SipUri | str,
                    local_tag: str | None = None, local_seq: int | None = None,
                    transport: str | None = None) -> Dialog:
        """The answering side's dialog (§12.1.1); ``contact`` is our address for this call and
        ``transport`` (by default the one the INVITE came over) goes in our requests' Via."""
        if not invite.contact:
            raise SipParseError("an INVITE without Contact cannot start a dialog")
        remote_tag = invite.from_.tag
        if remote_tag is None:
            raise SipParseError("an INVITE without a From tag cannot start a dialog")
        contact = as_address(contact)
        return cls(invite.call_id, local_tag or new_tag(), remote_tag,
                   _without_tag(invite.to), _without_tag(invite.from_),
                   invite.contact[0].uri, contact,
                   local_seq if local_seq is not None else secrets.randbelow(2**16) + 1,
                   invite.cseq.number, invite.cseq.number, invite.record_route,
                   transport or invite.top_via.transport)

    @classmethod
    def from_response(cls, invite: Request, response: Response) -> Dialog:
        """The calling side's dialog, from our INVITE and a 1xx/2xx with a To tag (§12.1.2)."""
        remote_tag, local_tag = response.to.tag, invite.from_.tag
        if remote_tag is None or local_tag is None or not response.contact:
            raise SipParseError("a response without To tag or Contact makes no dialog")
        dialog = cls(invite.call_id, local_tag, remote_tag, _without_tag(invite.from_),
                     _without_tag(response.to), response.contact[0].uri, invite.contact[0],
                     invite.cseq.number, None, invite.cseq.number,
                     list(reversed(response.record_route)), invite.top_via.transport)
        dialog._advance("2xx" if response.success else "1xx")
        return dialog

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    def _advance(self, event: str) -> None:
        self.state = _TRANSITIONS.get((self.state, event), self.state)

    # -------------------------------------------------------------------- the peer's messages
    def matches(self, message: Message) -> bool:
        """Whether ``message`` belongs to this dialog (Call-ID and both tags)."""
        if message.call_id != self.call_id:
            return False
        ours, theirs = (message.to, message.from_) if isinstance(message, Request) else (
            message.from_, message.to)
        return ours.tag == self.local_tag and theirs.tag == self.remote_tag

    def receive_request(self, request: Request) -> None:
        """Check and record an in-dialog request from the peer (§12.2.2).

        Raises ``DialogError``: 481 when it is not for this dialog (or the dialog is over),
        500 when its CSeq is not above the last one (answer with Retry-After, §14.2).
        """
        if not self.matches(request) or (self.state is D.TERMINATED and request.method != "ACK"):
            raise DialogError(f"{request.method} does not belong to this dialog", status=481)
        cseq = request.cseq.number
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and cseq <= self.remote_seq:
                raise DialogError(f"CSeq {cseq} is not above {self.remote_seq}", status=500)
            self.remote_seq = cseq
        if request.method == "INVITE":
            self.invite_seq = cseq
        if request.method in TARGET_REFRESH and request.contact:
            self.remote_target = request.contact[0].uri
        if request.method == "BYE":
            self._advance("bye")

    def receive_response(self, response: Response) -> None:
        """Record a response to one of our requests in this dialog (§12.2.1.2, §13.2.2.4)."""
        method = response.cseq.method
        if response.status in (481, 408):
            self._advance("gone")
        elif method == "INVITE" and response.cseq.number == self.invite_seq:
            self._advance(_event(response.status))
            if response.success and response.contact:
                self.remote_target = response.contact[0].uri

    # -------------------------------------------------------------------- our messages
    def response(self, request: Request, status: int, reason: str | None = None, *,
                 headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                 content_type: str | None = None) -> Response:
        """Our response to ``request`` in this dialog: our To tag, and for an INVITE our
        Contact and the Record-Route it came with (§12.1.1); the state follows an answer to
        the INVITE."""
        extra = list(headers)
        if request.method in TARGET_REFRESH and 100 < status < 300:
            extra.append(("Contact", str(self.local_contact)))
            if request.method == "INVITE":
                extra += [("Record-Route", value)
                          for value in request.headers.values("Record-Route")]
        response = response_for(request, status, reason, to_tag=self.local_tag, headers=extra,
                                body=body, content_type=content_type)
        if request.method == "INVITE" and request.cseq.number == self.invite_seq:
            self._advance(_event(status))
        return response

    def request(self, method: str, *, headers: Iterable[tuple[str, str]] = (),
                body: bytes = b"", content_type: str | None = None) -> Request:
        """A new request in this dialog (§12.2.1.1), with the next CSeq and a fresh branch."""
        if self.state is D.TERMINATED:
            raise SipStateError(f"cannot send {method} in a terminated dialog")
        if method in ("ACK", "CANCEL"):
            raise SipStateError(f"{method} is not a new request: use ack() or build_cancel()")
        self.local_seq += 1
        if method == "INVITE":
            self.invite_seq = self.local_seq
        return self._build(method, self.local_seq, headers, body, content_type)

    def bye(self, *, headers: Iterable[tuple[str, str]] = ()) -> Request:
        """BYE; the dialog is over as soon as it is sent (§15.1.1)."""
        bye = self.request("BYE", headers=headers)
        self._advance("bye")
        return bye

    def ack(self, *, body: bytes = b"", content_type: str | None = None) -> Request:
        """The ACK for a 2xx to our INVITE (§13.2.2.4): the INVITE's CSeq, a new branch."""
        return self._build("ACK", self.invite_seq, (), body, content_type)

    def _build(self, method: str, cseq: int, headers: Iterable[tuple[str, str]], body: bytes,
               content_type: str | None) -> Request:
        uri, routes = self.remote_target, [str(route) for route in self.route_set]
        if self.route_set and not self.route_set[0].uri.loose_route:
            # strict routing (§12.2.1.1): the first route becomes the Request-URI
            uri = replace(self.route_set[0].uri, params=())
            routes = routes[1:] + [str(Address(self.remote_target))]
        fields = [("Via", _via(self.local_contact, self.transport)), ("Max-Forwards", "70"),
                  ("From", str(self.local.with_tag(self.local_tag))),
                  ("To", str(self.remote.with_tag(self.remote_tag))),
                  ("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}")]
        fields += [("Route", route) for route in routes]
        if method in TARGET_REFRESH:
            fields.append(("Contact", str(self.local_contact)))
        fields += list(headers)
        if content_type is not None:
            fields.append(("Content-Type", content_type))
        return Request(method, uri, Headers(fields), body)


def _event(status: int) -> str:
    return "1xx" if status < 200 else "2xx" if status < 300 else "failure"


# ------------------------------------------------------------------------------ calling out
def build_invite(target: SipUri | str, *, from_: Address | str, contact: Address | SipUri | str,
                 to: Address | str | None = None, call_id: str | None = None,
                 from_tag: str | None = None, cseq: int = 1, body: bytes = b"",
                 content_type: str | None = None, headers: Iterable[tuple[str, str]] = (),
                 route: Iterable[Address | str] = ()) -> Request:
    """An initial INVITE to ``target`` (§8.1.1), e.g. to an agent's phone; ``body`` is usually
    ``bytes(make_offer(...))`` with ``content_type="application/sdp"``."""
    uri = target if isinstance(target, SipUri) else SipUri.parse(target)
    contact = as_address(contact)
    from_address = as_address(from_)
    from_address = from_address.with_tag(from_tag or from_address.tag or new_tag())
    fields = [("Via", _via(contact, uri.transport)), ("Max-Forwards", "70"),
              ("From", str(from_address)),
              ("To", str(_without_tag(as_address(to)) if to is not None else Address(uri))),
              ("Call-ID", call_id or new_call_id(contact.uri.host)),
              ("CSeq", f"{cseq} INVITE"), ("Contact", str(contact))]
    fields += [("Route", str(as_address(r))) for r in route]
    fields += list(headers)
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    return Request("INVITE", uri, Headers(fields), body)


def build_cancel(invite: Request) -> Request:
    """CANCEL for our pending INVITE (§9.1): its Request-URI, Call-ID, From, To, CSeq number
    and top Via (same branch), and its Route."""
    fields = [("Via", invite.headers.values("Via")[0]), ("Max-Forwards", "70"),
              ("From", invite.header("From")), ("To", invite.header("To")),
              ("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq.number} CANCEL")]
    fields += [("Route", value) for value in invite.headers.values("Route")]
    return Request("CANCEL", invite.uri, Headers(fields))
