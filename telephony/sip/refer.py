"""Call transfer by REFER (RFC 3515), with Replaces (RFC 3891), and the progress NOTIFYs report.

We are the transferor: ``build_refer`` asks the caller's phone, inside the call's dialog, to
call ``target`` (blind transfer), or, with ``replaces``, to replace our leg to the agent by
its own (attended transfer: the agent's dialog identifiers go in the Refer-To URI). The phone
then sends NOTIFYs whose ``message/sipfrag`` bodies carry the status line of its new call
("SIP/2.0 100 Trying", then "SIP/2.0 200 OK" or a failure): ``transfer_progress`` reads one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import quote as percent_encode

from telephony.sip.dialog import Dialog, as_address
from telephony.sip.errors import SipParseError
from telephony.sip.headers import Address, SipUri, get_param, parse_params
from telephony.sip.message import Request


@dataclass(frozen=True, slots=True)
class Replaces:
    """The dialog to replace (RFC 3891 §6.1), named as seen by the phone receiving the REFER's
    INVITE (the agent): its Call-ID, its To tag (the agent's tag) and From tag (ours)."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def __str__(self) -> str:
        flag = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{flag}"


def refer_to(target: Address | SipUri | str, replaces: Replaces | None = None) -> Address:
    """The Refer-To address; with ``replaces`` it carries ``?Replaces=`` (percent-encoded)."""
    address = as_address(target)
    if replaces is None:
        return address
    uri = replace(address.uri, headers="Replaces=" + percent_encode(str(replaces), safe=""))
    return replace(address, uri=uri)


def build_refer(dialog: Dialog, target: Address | SipUri | str, *,
                replaces: Replaces | None = None, referred_by: Address | str | None = None,
                headers: Iterable[tuple[str, str]] = ()) -> Request:
    """A REFER in ``dialog`` asking the peer to call ``target`` (and to replace a dialog)."""
    fields = [("Refer-To", str(refer_to(target, replaces)))]
    if referred_by is not None:
        fields.append(("Referred-By", str(as_address(referred_by))))
    return dialog.request("REFER", headers=[*fields, *headers])


@dataclass(frozen=True, slots=True)
class TransferProgress:
    status: int  # of the phone's call to the transfer target
    reason: str
    subscription_ended: bool  # Subscription-State: terminated: no more NOTIFYs will come

    @property
    def final(self) -> bool:
        return self.status >= 200 or self.subscription_ended

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


def parse_sipfrag(body: bytes) -> tuple[int, str]:
    """(status, reason) from a ``message/sipfrag`` body's status line (RFC 3420)."""
    try:
        line = body.decode("utf-8").lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    except UnicodeDecodeError:
        raise SipParseError("sipfrag body is not UTF-8") from None
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != "SIP/2.0" or not (len(code) == 3 and code.isascii() and code.isdigit()
                                            and 100 <= int(code) < 700):
        raise SipParseError(f"sipfrag without a status line: {line!r:.60}")
    return int(code), reason.strip()


def transfer_progress(notify: Request) -> TransferProgress:
    """What a NOTIFY for our REFER says (RFC 3515 §2.4.5). Raises ``SipParseError`` for a
    NOTIFY of another event package or without a sipfrag body."""
    event = notify.headers.get("Event") or ""
    if notify.method != "NOTIFY" or event.split(";", 1)[0].strip().lower() != "refer":
        raise SipParseError(f"not a NOTIFY for a REFER (Event: {event!r:.40})", status=489)
    if notify.content_type != "message/sipfrag":
        raise SipParseError(f"NOTIFY body is {notify.content_type}, not message/sipfrag",
                            status=415)
    status, reason = parse_sipfrag(notify.body)
    state = notify.headers.get("Subscription-State") or ""
    ended = state.split(";", 1)[0].strip().lower() == "terminated"
    return TransferProgress(status, reason, ended)


def refer_event_id(notify: Request) -> str | None:
    """The ``id`` of ``Event: refer;id=N``: the CSeq of the REFER it reports on (§2.4.6)."""
    event = notify.headers.get("Event") or ""
    _, _, params = event.partition(";")
    return get_param(parse_params(params), "id") if params else None
