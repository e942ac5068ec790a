"""Every way a call gets in and out: Twilio, Asterisk, SIP/RTP, WebRTC; codecs and call control."""
