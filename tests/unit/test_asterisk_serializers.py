import json
import uuid
from typing import Any

import numpy as np
import pytest
from pipecat.frames.frames import (
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)

from telephony.asterisk import audiosocket as aus
from telephony.asterisk import chan_websocket as cw
from telephony.asterisk.serializers import (
    AsteriskStreamError,
    AudioSocketSerializer,
    ChanWebsocketSerializer,
)
from telephony.frames import CallStartedFrame, SpeechMarkFrame
from tests.fixtures.load import load, load_bytes

pytestmark = pytest.mark.unit

CALL_UUID = "40325ec2-5efd-4bd3-805f-53576e581d13"


class FakeHooks:
    """A ``CallHooks`` that writes down what the bridge told it."""

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.caller: str | None = None
        self.meta: dict[str, Any] = {}
        self.played: list[str] = []
        self.audio_sent_count = 0
        self.events: list[tuple[str, dict[str, Any]]] = []

    @property
    def started(self) -> bool:
        return self.call_id is not None

    def begin(self, call_id: str, *, caller: str | None,
              meta: dict[str, Any] | None = None) -> None:
        self.call_id, self.caller, self.meta = call_id, caller, dict(meta or {})

    def mark_played(self, name: str) -> None:
        self.played.append(name)

    def audio_sent(self) -> None:
        self.audio_sent_count += 1

    def event(self, type: str, **data: Any) -> None:
        self.events.append((type, data))


def tone(rate: int, ms: int) -> bytes:
    n = rate * ms // 1000
    return (np.sin(np.arange(n) * 2 * np.pi * 440 / rate) * 8000).astype("<i2").tobytes()


# ------------------------------------------------------------------------------ AudioSocket
def audiosocket():
    hooks, hangups, errors = FakeHooks(), [], []
    serializer = AudioSocketSerializer(hooks=hooks, on_hangup=lambda *a: hangups.append(a),
                                       on_error=errors.append)
    return serializer, hooks, hangups, errors


async def test_the_uuid_packet_begins_the_call_without_a_caller_number():
    serializer, hooks, *_ = audiosocket()
    frame = await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    assert isinstance(frame, CallStartedFrame)
    assert (frame.call_id, frame.caller, frame.channel) == (CALL_UUID, None, "asterisk_audiosocket")
    assert hooks.call_id == CALL_UUID and hooks.meta == {"uuid": CALL_UUID}


async def test_8khz_audio_packets_become_16khz_frames_and_digits_keypad_frames():
    serializer, *_ = audiosocket()
    await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    frames = [await serializer.deserialize(load_bytes("asterisk/audio.bin")) for _ in range(5)]
    assert all(isinstance(f, InputAudioRawFrame) and f.sample_rate == 16_000 for f in frames if f)
    assert sum(len(f.audio) for f in frames if f) > 5 * 320  # upsampled, minus filter delay
    dtmf = await serializer.deserialize(load_bytes("asterisk/dtmf.bin"))
    assert isinstance(dtmf, InputDTMFFrame) and dtmf.button.value == "7"


async def test_a_letter_digit_is_noted_not_passed_on():
    serializer, hooks, *_ = audiosocket()
    await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    assert await serializer.deserialize(bytes(aus.Dtmf("A"))) is None
    assert hooks.events == [("dtmf_ignored", {"digit": "A"})]


async def test_assistant_audio_goes_out_as_20ms_slin_packets_at_the_callers_rate():
    serializer, hooks, *_ = audiosocket()
    await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    data = await serializer.serialize(OutputAudioRawFrame(audio=tone(8000, 40), sample_rate=8000,
                                                          num_channels=1))
    packets, rest = aus.parse_packets(data)
    assert rest == b"" and [len(p.pcm) for p in packets] == [320, 320]
    assert all(p.rate == 8000 for p in packets) and hooks.audio_sent_count == 1
    await serializer.deserialize(bytes(aus.Audio(bytes(640), 16_000)))  # Asterisk goes wideband
    data = await serializer.serialize(OutputAudioRawFrame(audio=tone(8000, 40), sample_rate=8000,
                                                          num_channels=1))
    assert {p.rate for p in aus.parse_packets(data)[0]} == {16_000}


async def test_a_mark_counts_as_played_when_sent_and_there_is_nothing_to_flush():
    serializer, hooks, *_ = audiosocket()
    await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    assert await serializer.serialize(SpeechMarkFrame.named("r1.1")) is None
    assert hooks.played == ["r1.1"]
    assert await serializer.serialize(InterruptionFrame()) is None


async def test_hangups_and_errors_from_asterisk_end_the_call_with_an_outcome():
    serializer, _, hangups, _ = audiosocket()
    await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    await serializer.deserialize(load_bytes("asterisk/hangup.bin"))
    await serializer.deserialize(load_bytes("asterisk/error.bin"))
    await serializer.deserialize(bytes(aus.Error(b"\x02")))
    assert hangups == [("completed", "hang-up packet"), ("completed", "the caller hung up"),
                       ("error", "Asterisk reported a frame could not be forwarded")]


@pytest.mark.parametrize("packet, problem", [
    (load_bytes("asterisk/audio.bin"), "audio before the UUID"),
    (b"\x42\x00\x00", "unknown packet kind"),
    ("text", "AudioSocket is binary"),
])
async def test_audiosocket_violations_raise_and_are_reported(packet, problem):
    serializer, _, _, errors = audiosocket()
    with pytest.raises(AsteriskStreamError, match=problem) as raised:
        await serializer.deserialize(packet)
    assert errors == [raised.value]


async def test_a_second_uuid_is_a_policy_violation():
    serializer, *_ = audiosocket()
    await serializer.deserialize(load_bytes("asterisk/uuid.bin"))
    with pytest.raises(AsteriskStreamError, match="second UUID"):
        await serializer.deserialize(bytes(aus.Uuid(uuid.uuid4())))


# ------------------------------------------------------------------------------ chan_websocket
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def websocket(**kwargs):
    hooks, errors, clock = FakeHooks(), [], Clock()
    serializer = ChanWebsocketSerializer(hooks=hooks, on_error=errors.append,
                                         max_message_bytes=65_500, clock=clock, **kwargs)
    return serializer, hooks, errors, clock


async def test_media_start_begins_the_call_with_the_connection_id_and_caller():
    serializer, hooks, *_ = websocket(caller="+15550100")
    frame = await serializer.deserialize(load("asterisk/media_start.txt"))
    assert isinstance(frame, CallStartedFrame)
    assert (frame.call_id, frame.caller, frame.channel) == (
        "e226e283-c90a-4ea9-9e37-389000b9ef47", "+15550100", "asterisk_websocket")
    assert hooks.meta["asterisk_channel"] == "WebSocket/connectionid"
    assert serializer.ari_channel_id == "pbx1-123456789.999"
    assert serializer.codec.name == "ulaw" and serializer.format is cw.ControlFormat.PLAIN


async def test_json_channel_variables_name_the_caller_and_the_ari_channel():
    serializer, hooks, *_ = websocket()
    await serializer.deserialize(cw.media_start_message(
        "c1", "WebSocket/media-01", channel_id="ws-chan", fmt=cw.ControlFormat.JSON,
        channel_variables={"IVA_CALLER": "+15550111", "IVA_CHANNEL_ID": "caller-chan"}))
    assert hooks.caller == "+15550111" and serializer.ari_channel_id == "caller-chan"
    assert json.loads(await serializer.serialize(InterruptionFrame())) == {"command": "FLUSH_MEDIA"}


async def test_the_uris_channel_id_wins_over_everything():
    serializer, *_ = websocket(ari_channel="from-uri")
    await serializer.deserialize(load("asterisk/media_start.json"))
    assert serializer.ari_channel_id == "from-uri"


@pytest.mark.parametrize("fmt, rate, frame_bytes", [
    ("ulaw", 8000, 160), ("alaw", 8000, 160), ("slin", 8000, 320), ("slin16", 16_000, 640),
])
async def test_media_in_each_codec_becomes_16khz_frames_and_goes_back_in_whole_frames(
        fmt, rate, frame_bytes):
    serializer, hooks, *_ = websocket()
    await serializer.deserialize(cw.media_start_message("c1", "WebSocket/x", format=fmt,
                                                        optimal_frame_size=frame_bytes))
    codec = cw.codec_for(fmt)
    frame = await serializer.deserialize(codec.encode(tone(rate, 20)))
    assert isinstance(frame, InputAudioRawFrame) and frame.sample_rate == 16_000
    out = await serializer.serialize(OutputAudioRawFrame(audio=tone(rate, 40), sample_rate=rate,
                                                         num_channels=1))
    assert len(out) == 2 * frame_bytes and hooks.audio_sent_count == 1


async def test_a_short_tail_waits_for_the_next_audio_and_is_dropped_by_a_flush():
    serializer, *_ = websocket()
    await serializer.deserialize(load("asterisk/media_start.txt"))  # ulaw, 160-byte frames
    half = OutputAudioRawFrame(audio=tone(8000, 10), sample_rate=8000, num_channels=1)
    assert await serializer.serialize(half) is None
    assert len(await serializer.serialize(half)) == 160
    assert await serializer.serialize(half) is None
    assert await serializer.serialize(InterruptionFrame()) == "FLUSH_MEDIA"
    assert await serializer.serialize(half) is None  # the old half frame went with the flush


async def test_marks_are_confirmed_by_asterisk_when_it_supports_them():
    serializer, hooks, *_ = websocket()
    await serializer.deserialize(load("asterisk/media_start.txt"))
    assert await serializer.serialize(SpeechMarkFrame.named("r1.1")) == "MARK_MEDIA r1.1"
    assert hooks.played == []
    await serializer.deserialize(cw.mark_processed_message("r1.1"))
    assert hooks.played == ["r1.1"] and serializer.marks == "confirmed"


async def test_an_asterisk_without_mark_media_gets_marks_played_on_send():
    serializer, hooks, _, clock = websocket()
    await serializer.deserialize(load("asterisk/media_start.txt"))
    await serializer.serialize(SpeechMarkFrame.named("r1.1"))
    clock.now += 2.5
    await serializer.deserialize(b"\xff" * 160)  # Asterisk's next 20 ms of caller audio
    assert hooks.played == ["r1.1"] and serializer.marks == "on_send"
    assert await serializer.serialize(SpeechMarkFrame.named("r1.2")) is None
    assert hooks.played == ["r1.1", "r1.2"]


async def test_marks_flushed_by_a_barge_in_are_not_taken_for_missing_support():
    serializer, hooks, _, clock = websocket()
    await serializer.deserialize(load("asterisk/media_start.txt"))
    await serializer.serialize(SpeechMarkFrame.named("r1.1"))
    await serializer.serialize(InterruptionFrame())
    clock.now += 5
    await serializer.deserialize(b"\xff" * 160)
    assert serializer.marks == "probing" and hooks.played == []


async def test_dtmf_errors_and_flow_control_from_asterisk():
    serializer, hooks, *_ = websocket()
    await serializer.deserialize(load("asterisk/media_start.txt"))
    dtmf = await serializer.deserialize(load("asterisk/dtmf_end.txt"))
    assert isinstance(dtmf, InputDTMFFrame) and dtmf.button.value == "5"
    await serializer.deserialize("MEDIA_XOFF")
    assert serializer.flow_paused
    await serializer.deserialize("MEDIA_XON")
    assert not serializer.flow_paused
    await serializer.deserialize("ERROR channel_id:x error_text:MARK_MEDIA not supported")
    assert hooks.events == [("asterisk_error", {"detail": "MARK_MEDIA not supported"})]
    assert await serializer.deserialize(load("asterisk/status.txt")) is None
    assert await serializer.serialize(EndFrame()) == "HANGUP"


@pytest.mark.parametrize("first, code", [
    (b"\xff" * 160, 1008),
    ("DTMF_END digit:1", 1008),
    ("{oops", 1007),
    ("MEDIA_START connection_id:a channel:b format:opus optimal_frame_size:80", 1003),
    ("x" * 70_000, 1009),
])
async def test_violations_carry_their_close_code(first, code):
    serializer, _, errors, _ = websocket()
    with pytest.raises(AsteriskStreamError) as raised:
        await serializer.deserialize(first)
    assert raised.value.code == code and errors == [raised.value]


async def test_odd_slin_media_and_a_second_media_start_are_refused():
    serializer, *_ = websocket()
    await serializer.deserialize(cw.media_start_message("c1", "WebSocket/x", format="slin",
                                                        optimal_frame_size=320))
    with pytest.raises(AsteriskStreamError, match="whole number of slin samples"):
        await serializer.deserialize(b"\x00" * 3)
    with pytest.raises(AsteriskStreamError, match="second MEDIA_START") as raised:
        await serializer.deserialize(load("asterisk/media_start.txt"))
    assert raised.value.code == 1008


async def test_nothing_is_sent_before_media_start():
    serializer, *_ = websocket()
    assert await serializer.serialize(InterruptionFrame()) is None
