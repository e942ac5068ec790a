import wave

import numpy as np
import pytest

from telephony.audio import (
    AudioFormatError,
    Resampler,
    pcm16_to_ulaw,
    read_wav,
    resample,
    ulaw_to_pcm16,
    write_wav,
)

pytestmark = pytest.mark.unit


def pcm(samples) -> bytes:
    return np.asarray(samples, dtype=np.int16).tobytes()


@pytest.mark.parametrize("sample, code", [
    (0, 0xFF), (-1, 0x7E), (32767, 0x80), (-32768, 0x00), (1000, 0xCE), (-1000, 0x4E),
])
def test_mu_law_encodes_known_g711_values(sample, code):
    assert pcm16_to_ulaw(pcm([sample])) == bytes([code])


def test_mu_law_decodes_the_silence_and_extreme_codes():
    assert np.frombuffer(ulaw_to_pcm16(bytes([0xFF, 0x7F, 0x80, 0x00])), np.int16).tolist() == [
        0, 0, 32124, -32124]


def test_mu_law_round_trip_error_stays_within_the_segment_step():
    samples = np.arange(-32000, 32000, 7, dtype=np.int16)
    decoded = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(samples.tobytes())), np.int16)
    error = np.abs(decoded.astype(np.int32) - samples)
    assert np.all(error <= np.maximum(16, np.abs(samples.astype(np.int32)) // 16))


def test_every_code_decodes_and_re_encodes_to_itself():
    codes = bytes(range(256))
    again = pcm16_to_ulaw(ulaw_to_pcm16(codes))
    # 0x7F and 0xFF are both zero: G.711's two zeros encode to 0xFF
    assert [a for a, b in zip(again, codes, strict=True) if a != b] == [0xFF]


def test_resampling_changes_length_by_the_rate_ratio():
    one_second = pcm(np.sin(np.linspace(0, 2 * np.pi * 440, 8000)) * 10000)
    assert len(resample(one_second, 8000, 16000)) == 2 * len(one_second)
    assert resample(one_second, 8000, 8000) == one_second


def test_streaming_resampler_matches_one_shot_length_over_many_chunks():
    tone = pcm(np.sin(np.linspace(0, 2 * np.pi * 300, 8000)) * 8000)
    resampler = Resampler(8000, 16000)
    out = b"".join(resampler.process(tone[i:i + 320]) for i in range(0, len(tone), 320))
    out += resampler.process(b"", last=True)
    assert abs(len(out) - 2 * len(tone)) <= 64


def test_wav_files_round_trip_and_stereo_is_mixed_down(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, pcm([1, 2, 3]), 16000)
    assert read_wav(path) == (pcm([1, 2, 3]), 16000)
    stereo = tmp_path / "s.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm([100, 300, -100, -300]))
    assert read_wav(stereo) == (pcm([200, -200]), 8000)


def test_a_file_that_is_not_a_wav_gets_a_clear_error(tmp_path):
    bogus = tmp_path / "x.wav"
    bogus.write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioFormatError, match="not a PCM WAV"):
        read_wav(bogus)
