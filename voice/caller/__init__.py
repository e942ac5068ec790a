"""``iva call``: a caller simulator that dials a running server over the Twilio protocol.

It plays Twilio and the phone together. Like Twilio it sends ``connected`` and ``start``, then
streams the caller's audio continuously at real-time pace (one 160-byte μ-law ``media`` every
20 ms, digital silence when the caller is quiet), and types keypad digits as ``dtmf``. Like the
phone it plays the assistant's audio from a buffer drained in real time, echoes each ``mark``
when playback reaches it and, on ``clear``, drops the buffer and echoes the pending marks.

A turn speaks a WAV file (any rate, mono or stereo) or types digits. It starts once the
assistant has finished speaking (its audible audio has played out and ``quiet_s`` has passed
with no more; silence a server streams while idle does not count), or with
``barge_in_after_s``, that long after the first audio of the answer being given, to speak over
it. Audio that goes on without a pause or a ``clear`` belongs to the answer being given; new
audio after a pause is the answer to the turn being (or just) spoken. Latency is measured on
the wire: from the caller's end of speech (the last 20 ms frame above a small energy
threshold; trailing silence in the file does not count) to the first audible ``media`` of the
answer. Times are ``time.monotonic()``.
"""

from voice.caller.call import place_call, speech_frames
from voice.caller.cli import add_call_arguments, main_call
from voice.caller.model import (
    AssistantSpeech,
    CallError,
    CallerTurn,
    CallResult,
    TurnResult,
)

__all__ = [
    "AssistantSpeech", "CallError", "CallResult", "CallerTurn", "TurnResult",
    "add_call_arguments", "main_call", "place_call", "speech_frames",
]
