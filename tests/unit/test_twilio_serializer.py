import json

import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)

from telephony.frames import CallStartedFrame, SpeechMarkFrame
from telephony.twilio import protocol as tw
from telephony.twilio.serializer import TwilioMediaStreamSerializer, TwilioStreamError
from tests.fakes import MemoryRecorder
from voice.session import CallSession

pytestmark = pytest.mark.unit


def make(recorder=None):
    session = CallSession(recorder or MemoryRecorder(), channel="twilio")
    stops, errors = [], []
    serializer = TwilioMediaStreamSerializer(
        hooks=session, max_message_bytes=4096, on_stop=lambda: stops.append(True),
        on_error=errors.append)
    return serializer, session, stops, errors


async def started(recorder=None):
    serializer, session, stops, errors = make(recorder)
    frame = await serializer.deserialize(
        tw.start_message("MZ1", "CA1", custom_parameters={"From": "+15550100"}))
    return serializer, session, stops, errors, frame


async def test_start_begins_the_session_and_announces_the_call():
    _, session, _, _, frame = await started()
    assert isinstance(frame, CallStartedFrame)
    assert (frame.call_id, frame.caller) == ("CA1", "+15550100")
    assert session.call_id == "CA1"


async def test_media_becomes_16khz_pcm_frames():
    serializer, *_ = await started()
    frames = [await serializer.deserialize(tw.inbound_media_message("MZ1", i, i * 20, b"\xff" * 160))
              for i in range(5)]
    audio = [f for f in frames if isinstance(f, InputAudioRawFrame)]
    assert audio and all(f.sample_rate == 16000 for f in audio)
    assert sum(len(f.audio) for f in audio) > 5 * 160  # upsampled, minus the filter's delay


async def test_dtmf_marks_and_stop_reach_the_right_places():
    serializer, session, stops, _, _ = await started()
    dtmf = await serializer.deserialize(tw.dtmf_message("MZ1", "5"))
    assert isinstance(dtmf, InputDTMFFrame) and dtmf.button.value == "5"
    turn = session.reply_started("Hello.", intent=None, confidence=None, speech_end_at=None)
    mark = session.sentence_queued(turn, "Hello.", 500)
    session.synthesis_finished(turn)
    session.audio_sent()
    assert await serializer.deserialize(tw.inbound_mark_message("MZ1", mark)) is None
    assert turn.finished
    assert await serializer.deserialize(tw.stop_message("MZ1", "CA1")) is None
    assert stops == [True]


@pytest.mark.parametrize("digit", ["A", "B", "C", "D"])
async def test_a_letter_digit_is_noted_on_the_session_and_the_call_goes_on(digit):
    recorder = MemoryRecorder()
    serializer, session, stops, errors, _ = await started(recorder)
    assert await serializer.deserialize(tw.dtmf_message("MZ1", digit)) is None
    events = recorder.calls["CA1"]["events"]
    assert [(e["type"], e["digit"]) for e in events] == [("dtmf_ignored", digit)]
    after = await serializer.deserialize(tw.dtmf_message("MZ1", "#"))
    assert isinstance(after, InputDTMFFrame) and after.button.value == "#"
    assert stops == [] and errors == [] and not session.ended


async def test_audio_marks_and_interruptions_are_serialized_for_twilio():
    serializer, session, *_ = await started()
    session.reply_started("Hi.", intent=None, confidence=None, speech_end_at=0.0)
    media = await serializer.serialize(OutputAudioRawFrame(audio=b"\x10\x00" * 160,
                                                           sample_rate=8000, num_channels=1))
    assert isinstance(tw.parse_outbound(media), tw.OutboundMedia)
    assert session.current.first_audio_at is not None
    mark = await serializer.serialize(SpeechMarkFrame.named("r1.1"))
    assert tw.parse_outbound(mark) == tw.OutboundMark("MZ1", "r1.1")
    clear = await serializer.serialize(InterruptionFrame())
    assert json.loads(clear) == {"event": "clear", "streamSid": "MZ1"}


@pytest.mark.parametrize("message, code", [
    (b"\x00\x01", 1003),
    ("x" * 5000, 1009),
    ("{oops", 1007),
    (json.dumps({"event": "warp"}), 1007),
])
async def test_protocol_violations_raise_with_their_close_code(message, code):
    serializer, _, _, errors = make()
    with pytest.raises(TwilioStreamError) as raised:
        await serializer.deserialize(message)
    assert raised.value.code == code and errors == [raised.value]


async def test_media_before_start_and_a_second_start_are_policy_violations():
    serializer, *_ = make()
    with pytest.raises(TwilioStreamError) as before:
        await serializer.deserialize(tw.inbound_media_message("MZ1", 1, 0, b"\xff" * 160))
    assert before.value.code == 1008
    serializer, *_ = await started()
    with pytest.raises(TwilioStreamError) as again:
        await serializer.deserialize(tw.start_message("MZ1", "CA2"))
    assert again.value.code == 1008


async def test_nothing_is_sent_before_the_stream_is_known():
    serializer, *_ = make()
    assert await serializer.serialize(InterruptionFrame()) is None
