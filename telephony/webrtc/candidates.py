"""Which local addresses browser calls offer as ICE host candidates.

aiortc (through aioice) offers every non-loopback interface and has no option to choose; a
service on a multi-homed host, or a browser on the same machine (127.0.0.1, which Chromium
accepts with ``--allow-loopback-in-peer-connection``), needs to say which. ``IVA_WEBRTC_HOST_
ADDRESSES`` lists them; :func:`offer_host_addresses` makes aioice's address lookup return
exactly that list, for the whole process (the setting is process-wide too).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aioice.ice

__all__ = ["offer_host_addresses"]

log = logging.getLogger("iva.webrtc")

_DEFAULT_LOOKUP = aioice.ice.get_host_addresses


def offer_host_addresses(addresses: Sequence[str]) -> None:
    """Offer only ``addresses`` as host candidates; an empty list restores aioice's choice."""
    if not addresses:
        aioice.ice.get_host_addresses = _DEFAULT_LOOKUP
        return
    chosen = list(addresses)

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured
    log.info("browser calls offer host candidates on %s only", ", ".join(chosen))
