"""Asterisk: calls over AudioSocket (TCP) and over chan_websocket, moved and ended through ARI.

Modules, pure ones first:

- ``audiosocket``      the AudioSocket packet codec (bytes ⇄ packets, incremental parser)
- ``chan_websocket``   chan_websocket's control messages (plain text and JSON) and media codecs
- ``ari``              ``AriCallControl``: hang-up and transfer through the Asterisk REST Interface
- ``serializers``      the pipecat serializers of both bridges
- ``audiosocket_server``  ``AudioSocketServer``: the TCP listener, one call per connection
- ``routes``           ``WS /asterisk/media`` for chan_websocket

Errors::

    ValueError
     ├── AudioSocketError       bytes that are not AudioSocket            (audiosocket)
     └── ChanWebsocketError     a message that is not chan_websocket's    (chan_websocket)
    Exception
     ├── AsteriskStreamError    the far end broke its protocol mid-call;   (serializers)
     │                          the bridge drops that one connection
     └── AriError               ARI refused, is unreachable, or the        (ari)
                                transfer target is not understood

How to connect a PBX: ``docs/asterisk.md``.
"""
