"""The exceptions of ``telephony.sip``: one tree, each error naming the response that reports it.

::

    ValueError
     └── SipError            .status: the SIP response code that reports it (None: our own mistake)
          ├── SipParseError  bytes or a header value that is not valid SIP (400; 416, 505, 513 where
          │                  a more precise code exists)
          ├── SdpError       SDP we cannot read (400), or no codec in common (488)
          ├── DialogError    an in-dialog request that fits no dialog (481) or comes out of order (500)
          └── SipStateError  a local call the state machine does not allow: a programming error
"""

from __future__ import annotations


class SipError(ValueError):
    """Base of this package's errors; ``status`` is the response code to answer with, if any."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class SipParseError(SipError):
    """A SIP message, or one of its header values, that is not valid SIP."""

    status = 400


class SdpError(SipError):
    """An SDP body we cannot read, or an offer we cannot answer (no codec in common)."""

    status = 488


class DialogError(SipError):
    """A request that claims a dialog we do not have (481) or is out of CSeq order (500)."""

    status = 481


class SipStateError(SipError):
    """This side asked a transaction or dialog for something its state does not allow."""
