"""RTP media, sans I/O: packets (RFC 3550), a jitter buffer and DTMF events (RFC 4733).

The UDP socket around these belongs to the network layer; everything here takes and returns
bytes, dataclasses and plain numbers, and is tested with bytes alone.

Errors::

    ValueError
     └── RtpError   bytes that are not an RTP packet or a telephone-event payload; also a
                    packet built with out-of-range fields
"""

from telephony.rtp.packet import RtpError

__all__ = ["RtpError"]
