"""SIP for direct calling, sans I/O: messages, SDP, transactions, dialogs, digest auth, REFER.

The modules, from the bytes up (each usable and tested on its own):

- ``headers``: URI, name-addr (``Address``), ``Via``, ``CSeq``, parameters, the ``Headers`` map
- ``message``: ``parse_message`` / ``bytes(msg)``, ``SipStreamFramer`` for TCP, ``response_for``
- ``sdp``: SDP and the G.711 offer/answer (``answer_offer``, ``make_offer``, ``accept_answer``)
- ``transaction``: the four RFC 3261 §17 transaction state machines, with timers as actions
- ``dialog``: a dialog's state and the requests built inside it; the UAC's INVITE, ACK, CANCEL
- ``digest``: HTTP digest challenges and answers (RFC 2617 / 7616 / 8760)
- ``refer``: REFER (RFC 3515) and the progress reported by its NOTIFYs

The network layer (sockets, timers, calls) sits on top and owns all I/O.

Errors::

    ValueError
     └── SipError            .status: the SIP response code that reports it (None: our own mistake)
          ├── SipParseError  bytes or a header value that is not valid SIP (400; 416, 505, 513)
          ├── SdpError       SDP we cannot read (400), or no codec in common (488)
          ├── DialogError    an in-dialog request that fits no dialog (481) or comes out of order (500)
          └── SipStateError  a local call the state machine does not allow: a programming error
"""

from telephony.sip.errors import DialogError, SdpError, SipError, SipParseError, SipStateError

__all__ = ["DialogError", "SdpError", "SipError", "SipParseError", "SipStateError"]
