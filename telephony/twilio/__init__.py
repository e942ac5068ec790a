"""Twilio Media Streams: the wire protocol, TwiML, the pipecat serializer and the routes."""
