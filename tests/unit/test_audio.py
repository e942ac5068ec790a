"""telephony.audio: G.711 μ-law, resampling, WAV files."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

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


def pcm(samples: object) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def values(data: bytes) -> list[int]:
    return np.frombuffer(data, dtype="<i2").tolist()


def g191_ulaw_compress(sample: int) -> int:
    """The ITU-T G.191 reference encoder (``ulaw_compress`` in g711.c), one sample at a time."""
    absno = ((~sample if sample < 0 else sample) >> 2) + 33
    absno = min(absno, 0x1FFF)
    i, segno = absno >> 6, 1
    while i:
        segno, i = segno + 1, i >> 1
    code = ((8 - segno) << 4) | (0x0F - ((absno >> segno) & 0x0F))
    return code | 0x80 if sample >= 0 else code


@pytest.mark.parametrize("sample, code", [
    (0, 0xFF), (-1, 0x7F), (1, 0xFF), (32767, 0x80), (-32768, 0x00), (1000, 0xCE), (-1000, 0x4E),
    (8031, 0xA0), (-8031, 0x20),
])
def test_mu_law_encodes_known_g711_values(sample: int, code: int) -> None:
    assert pcm16_to_ulaw(pcm([sample])) == bytes([code])


def test_mu_law_encoder_is_bit_exact_with_the_itu_reference_for_every_sample() -> None:
    every = np.arange(-32768, 32768, dtype="<i2")
    expected = bytes(g191_ulaw_compress(int(s)) for s in every)
    assert pcm16_to_ulaw(every.tobytes()) == expected


def test_mu_law_decodes_silence_and_the_extreme_codes() -> None:
    assert values(ulaw_to_pcm16(bytes([0xFF, 0x7F, 0x80, 0x00, 0xCE, 0x4E]))) == [
        0, 0, 32124, -32124, 988, -988]


def test_every_code_decodes_and_re_encodes_to_itself() -> None:
    again = pcm16_to_ulaw(ulaw_to_pcm16(bytes(range(256))))
    # G.711 has two zeros (0x7F and 0xFF); both decode to 0, which encodes as 0xFF
    assert [code for code in range(256) if again[code] != code] == [0x7F]


def test_mu_law_round_trip_error_stays_within_half_a_quantisation_step() -> None:
    samples = np.arange(-32000, 32000, 7, dtype=np.int32)
    decoded = np.array(values(ulaw_to_pcm16(pcm16_to_ulaw(pcm(samples)))))
    step = np.maximum(8, 2 ** (np.floor(np.log2(np.abs(samples) / 4 + 33)) - 3))  # per segment
    assert np.all(np.abs(decoded - samples) <= step * 2)
    assert np.abs(decoded - samples).max() <= 512


def test_odd_length_pcm_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        pcm16_to_ulaw(b"\x00\x00\x00")


def tone(seconds: float, rate: int, hz: float = 440.0, amplitude: float = 10000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return pcm(np.sin(2 * np.pi * hz * t) * amplitude)


@pytest.mark.parametrize("src, dst", [(8000, 16000), (16000, 8000), (22050, 8000), (44100, 16000)])
def test_resampling_changes_the_length_by_the_rate_ratio(src: int, dst: int) -> None:
    out = resample(tone(1.0, src), src, dst)
    assert len(out) == 2 * dst


def test_resampling_keeps_a_tone_at_its_frequency() -> None:
    out = np.array(values(resample(tone(1.0, 22050, hz=440), 22050, 8000)), dtype=float)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 8000 / len(out) - 440) < 2


def test_resampling_to_the_same_rate_returns_the_input() -> None:
    data = tone(0.1, 8000)
    assert resample(data, 8000, 8000) == data
    assert Resampler(8000, 8000).process(data) == data


def test_streaming_resampler_returns_each_20_ms_chunk_at_once() -> None:
    resampler = Resampler(8000, 16000)
    data = tone(1.0, 8000)
    sizes = [len(resampler.process(data[i:i + 320])) for i in range(0, len(data), 320)]
    assert all(size > 0 for size in sizes)
    total = sum(sizes) + len(resampler.process(b"", last=True))
    assert abs(total - 2 * len(data)) <= 16


def test_wav_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, pcm([1, 2, 3, -32768, 32767]), 16000)
    assert read_wav(path) == (pcm([1, 2, 3, -32768, 32767]), 16000)


def write_raw_wav(path: Path, frames: bytes, *, channels: int, rate: int, width: int,
                  tag: int = 1, extensible: bool = False) -> None:
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate,
                      rate * channels * width, channels * width, 8 * width)
    if extensible:
        fmt += struct.pack("<HHI", 22, 8 * width, 0) + struct.pack("<H", tag) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk to skip
    body += b"data" + struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_stereo_is_mixed_down_to_mono(tmp_path: Path) -> None:
    stereo = tmp_path / "s.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm([100, 300, -100, -300]))
    assert read_wav(stereo) == (pcm([200, -200]), 8000)


@pytest.mark.parametrize("width, tag, frames, extensible", [
    (1, 1, bytes([128, 255, 0]), False),
    (3, 1, b"\x00\x00\x00\x00\x00\x40\x00\x00\xc0", False),
    (4, 1, struct.pack("<3i", 0, 2**30, -(2**30)), True),
    (4, 3, struct.pack("<3f", 0.0, 0.5, -0.5), False),
])
def test_other_sample_formats_are_read_as_16_bit(tmp_path: Path, width: int, tag: int,
                                                 frames: bytes, extensible: bool) -> None:
    path = tmp_path / "x.wav"
    write_raw_wav(path, frames, channels=1, rate=11025, width=width, tag=tag,
                  extensible=extensible)
    data, rate = read_wav(path)
    assert rate == 11025
    assert values(data)[0] == 0
    assert values(data)[1] in (16384, 32512)
    assert values(data)[2] in (-16384, -32768)


def test_a_file_that_is_not_a_wav_gets_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.wav"
    bogus.write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioFormatError, match="not a PCM WAV"):
        read_wav(bogus)


def test_a_compressed_wav_names_its_format(tmp_path: Path) -> None:
    path = tmp_path / "alaw.wav"
    write_raw_wav(path, b"\xd5" * 10, channels=1, rate=8000, width=1, tag=6)
    with pytest.raises(AudioFormatError, match="format tag 0x0006"):
        read_wav(path)


def test_a_missing_file_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError, match="cannot read"):
        read_wav(tmp_path / "nope.wav")
