"""Calls from a browser over WebRTC (pipecat's SmallWebRTC transport, aiortc underneath), and
agents who answer them in the browser.

- ``signalling``: the offer a page sends and the ICE servers it is told to use (pure).
- ``captions``: the messages the caller's page gets on the data channel (pure).
- ``transport``: the pipecat transport of one browser call, reporting what the caller heard.
- ``call``: one browser call, from its offer to its record's end; ``control``: hang up and
  transfer it; ``agent``: the agent's own connection once they answer in the browser.
- ``routes``: ``GET /call`` (the page), ``POST /call/offer`` and the agent's offer endpoint.
"""
