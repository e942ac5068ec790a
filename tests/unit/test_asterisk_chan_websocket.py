import json
import struct

import pytest

from telephony.asterisk import chan_websocket as cw
from tests.fixtures.load import load

pytestmark = pytest.mark.unit

DOC_START = cw.MediaStart(connection_id="e226e283-c90a-4ea9-9e37-389000b9ef47",
                          channel="WebSocket/connectionid", format="ulaw",
                          optimal_frame_size=160, channel_id="pbx1-123456789.999", ptime=20)


def test_the_documented_plain_text_media_start_is_read():
    assert cw.parse_event(load("asterisk/media_start.txt")) == DOC_START
    assert cw.control_format(load("asterisk/media_start.txt")) is cw.ControlFormat.PLAIN


def test_the_documented_json_media_start_brings_the_channel_variables():
    event = cw.parse_event(load("asterisk/media_start.json"))
    assert cw.control_format(load("asterisk/media_start.json")) is cw.ControlFormat.JSON
    assert event.channel_variables == {"SOME_CHANNEL_VARIABLE": "some value",
                                       "ANOTHER_CHANNEL_VARIABLE": "some other value"}
    assert (event.connection_id, event.channel, event.channel_id, event.format,
            event.optimal_frame_size, event.ptime) == (
        DOC_START.connection_id, DOC_START.channel, DOC_START.channel_id, "ulaw", 160, 20)


def test_an_older_media_start_without_channel_id_or_ptime_is_read():
    event = cw.parse_event("MEDIA_START connection_id:abc channel:WebSocket/c1-00000001 "
                           "format:slin16 optimal_frame_size:640")
    assert (event.channel_id, event.ptime, event.format) == (None, None, "slin16")


def test_dtmf_status_and_flow_events_in_plain_text():
    assert cw.parse_event(load("asterisk/dtmf_end.txt")) == cw.DtmfEnd("5", "pbx1-123456789.999")
    assert cw.parse_event(load("asterisk/status.txt")) == cw.Status(43, 800, 900, False, True,
                                                                   False)
    assert cw.parse_event("MEDIA_XOFF") == cw.MediaXoff()
    assert cw.parse_event("MEDIA_XON") == cw.MediaXon()
    assert cw.parse_event("QUEUE_DRAINED") == cw.QueueDrained()


def test_correlation_ids_are_bare_words_in_plain_text_and_fields_in_json():
    assert cw.parse_event("MEDIA_MARK_PROCESSED r1.2") == cw.MediaMarkProcessed("r1.2")
    assert cw.parse_event("MEDIA_BUFFERING_COMPLETED") == cw.MediaBufferingCompleted(None)
    assert cw.parse_event('{"event":"MEDIA_MARK_PROCESSED","channel_id":"c","correlation_id":'
                          '"r1.2"}') == cw.MediaMarkProcessed("r1.2", "c")


def test_an_error_event_keeps_its_whole_text():
    event = cw.parse_event("ERROR channel_id:pbx1-1.2 error_text:FLUSH_MEDIA not supported in "
                           "passthrough mode")
    assert event == cw.ErrorEvent("FLUSH_MEDIA not supported in passthrough mode", "pbx1-1.2")
    assert cw.parse_event('{"event":"ERROR","channel_id":"x","error_text":"Unable to parse JSON '
                          'command"}').error_text == "Unable to parse JSON command"


def test_an_event_from_a_newer_asterisk_is_passed_on_as_unknown():
    assert cw.parse_event("MEDIA_SOMETHING_NEW a:b") == cw.UnknownEvent("MEDIA_SOMETHING_NEW")


@pytest.mark.parametrize("message, problem", [
    ("", "empty control message"),
    ("{oops", "invalid JSON"),
    ('{"event": 5}', "needs an 'event' name"),
    ('{"command": "ANSWER"}', "a command, not an event"),
    ("hello world", "not a chan_websocket message"),
    ("MEDIA_START connection_id:a channel:b format:ulaw", "missing 'optimal_frame_size'"),
    ("MEDIA_START connection_id:a channel:b format:ulaw optimal_frame_size:0", "must be positive"),
    ("MEDIA_START connection_id:a channel:b format:ulaw optimal_frame_size:lots",
     "must be a whole number"),
    ("MEDIA_START connection_id:a channel:b format:ulaw optimal_frame_size:160 loose",
     "not a name:value parameter"),
    ('{"event":"MEDIA_START","connection_id":7,"channel":"b","format":"ulaw",'
     '"optimal_frame_size":160}', "'connection_id' must be a string"),
    ("DTMF_END digit:x", "'x' is not a DTMF digit"),
    ("STATUS queue_length:1 xon_level:800 xoff_level:900 queue_full:maybe bulk_media:false "
     "media_paused:false", "must be true or false"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_malformed_events_raise_chan_websocket_error(message, problem):
    with pytest.raises(cw.ChanWebsocketError, match=problem):
        cw.parse_event(message)


@pytest.mark.parametrize("fmt", list(cw.ControlFormat))
def test_asterisks_side_builds_events_the_bridge_reads_back(fmt):
    start = cw.media_start_message("conn-1", "WebSocket/media-00000001", format="slin16",
                                   optimal_frame_size=640, channel_id="1715.42",
                                   channel_variables={"IVA_CALLER": "+15550100"}, fmt=fmt)
    event = cw.parse_event(start)
    assert (event.format, event.optimal_frame_size, event.channel_id) == ("slin16", 640, "1715.42")
    assert event.channel_variables == ({"IVA_CALLER": "+15550100"}
                                       if fmt is cw.ControlFormat.JSON else {})
    assert cw.parse_event(cw.dtmf_end_message("#", fmt=fmt)).digit == "#"
    assert cw.parse_event(cw.mark_processed_message("r2.1", fmt=fmt)).correlation_id == "r2.1"
    assert isinstance(cw.parse_event(cw.simple_event_message("MEDIA_XOFF", fmt=fmt)), cw.MediaXoff)


def test_commands_are_built_in_each_format():
    plain, js = cw.ControlFormat.PLAIN, cw.ControlFormat.JSON
    assert cw.build_command(cw.Command.FLUSH_MEDIA, plain) == "FLUSH_MEDIA"
    assert cw.build_command(cw.Command.MARK_MEDIA, plain,
                            correlation_id="r1.1") == "MARK_MEDIA r1.1"
    assert json.loads(cw.build_command(cw.Command.MARK_MEDIA, js, correlation_id="r1.1")) == {
        "command": "MARK_MEDIA", "correlation_id": "r1.1"}
    assert cw.build_command(cw.Command.SET_MEDIA_DIRECTION, plain, direction="in") == \
        "SET_MEDIA_DIRECTION in"
    assert json.loads(cw.build_command(cw.Command.HANGUP, js)) == {"command": "HANGUP"}


def test_the_documented_json_command_is_read_back():
    assert cw.parse_command(load("asterisk/stop_media_buffering.json")) == cw.CommandMessage(
        cw.Command.STOP_MEDIA_BUFFERING, "61ea9311-d501-46e5-8825-017b342b39f2")
    assert cw.parse_command("STOP_MEDIA_BUFFERING 61ea9311-d501-46e5-8825-017b342b39f2") == \
        cw.parse_command(load("asterisk/stop_media_buffering.json"))
    assert cw.parse_command("GET_STATUS") == cw.CommandMessage(cw.Command.GET_STATUS)


@pytest.mark.parametrize("kwargs, problem", [
    ({"command": cw.Command.ANSWER, "correlation_id": "x"}, "takes no correlation id"),
    ({"command": cw.Command.MARK_MEDIA, "correlation_id": "two words"}, "one non-empty word"),
    ({"command": cw.Command.SET_MEDIA_DIRECTION}, "a direction goes with"),
    ({"command": cw.Command.SET_MEDIA_DIRECTION, "direction": "up"}, "in, out or both"),
    ({"command": cw.Command.MARK_MEDIA, "correlation_id": "x" * 200}, "more than the 128"),
])
def test_commands_asterisk_would_refuse_or_ignore_are_not_built(kwargs, problem):
    with pytest.raises(cw.ChanWebsocketError, match=problem):
        cw.build_command(fmt=cw.ControlFormat.PLAIN, **kwargs)


def test_unknown_commands_are_refused_when_read():
    with pytest.raises(cw.ChanWebsocketError, match="unknown command 'DANCE'"):
        cw.parse_command("DANCE")
    with pytest.raises(cw.ChanWebsocketError, match="takes no argument"):
        cw.parse_command("FLUSH_MEDIA now")


@pytest.mark.parametrize("name, rate, frame_20ms", [
    ("ulaw", 8000, 160), ("alaw", 8000, 160), ("slin", 8000, 320), ("slin16", 16_000, 640),
    ("slin48", 48_000, 1920), ("SLIN16", 16_000, 640),
])
def test_the_codec_table_knows_rates_and_frame_sizes(name, rate, frame_20ms):
    codec = cw.codec_for(name)
    assert (codec.rate, codec.frame_bytes(20)) == (rate, frame_20ms)
    pcm = struct.pack("<4h", 0, 1000, -1000, 32000)
    assert len(codec.decode(codec.encode(pcm))) == len(pcm)


def test_codecs_this_bridge_cannot_decode_are_named():
    with pytest.raises(cw.ChanWebsocketError, match="'opus' is not supported"):
        cw.codec_for("opus")


def test_g711_silence_is_each_laws_own_idle_byte():
    assert cw.codec_for("ulaw").silence(4) == b"\xff" * 4
    assert cw.codec_for("alaw").silence(4) == b"\xd5" * 4
    assert cw.codec_for("slin").silence(4) == bytes(4)
