"""A SIP call's media handed from the conversation to a warm transfer's bridge."""

from __future__ import annotations

import asyncio

import pytest

from telephony.audio import pcm16_to_ulaw
from telephony.rtp.packet import RtpSender
from telephony.rtp.session import RtpSession
from telephony.sip.call import _ConversationMedia
from telephony.sip.sdp import PCMU, Direction, MediaSession
from tests.sip_peer import Udp

pytestmark = pytest.mark.unit

SILENCE = bytes(320)


@pytest.fixture
async def pair():
    rtp = RtpSession("127.0.0.1", fill_after_s=5.0)
    await rtp.open()
    peer = await Udp.open()
    rtp.configure(MediaSession(PCMU, 101, "127.0.0.1", peer.port, Direction.SENDRECV, 20))
    yield rtp, peer
    await rtp.close()
    peer.close()


async def test_the_conversation_reads_and_sends_the_callers_media_until_detached(pair):
    rtp, peer = pair
    media = _ConversationMedia(rtp)
    sender = RtpSender(0)
    peer.send(bytes(sender.audio(pcm16_to_ulaw(SILENCE))), ("127.0.0.1", rtp.port))
    assert await asyncio.wait_for(media.receive(), 1) == SILENCE
    await media.send(SILENCE)
    await asyncio.sleep(0.05)
    assert rtp.stats.packets_out == 1


async def test_once_detached_the_conversation_neither_reads_sends_nor_closes_the_media(pair):
    rtp, peer = pair
    media = _ConversationMedia(rtp)
    reading = asyncio.create_task(media.receive())
    await asyncio.sleep(0.01)
    media.detach()
    sender = RtpSender(0)
    for _ in range(2):  # the read in flight may take one packet; the bridge gets the rest
        peer.send(bytes(sender.audio(pcm16_to_ulaw(SILENCE))), ("127.0.0.1", rtp.port))
    assert await asyncio.wait_for(rtp.receive(), 1) == SILENCE
    await media.send(SILENCE)
    await media.close()
    await asyncio.sleep(0.05)
    assert not reading.done() and not rtp.closed and rtp.stats.packets_out == 0
    reading.cancel()
