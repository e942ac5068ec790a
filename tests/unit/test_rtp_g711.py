"""telephony.audio's G.711 A-law (added for SIP's PCMA), checked against the ITU reference."""

from __future__ import annotations

import numpy as np
import pytest

from telephony.audio import AudioFormatError, alaw_to_pcm16, pcm16_to_alaw

pytestmark = pytest.mark.unit


def pcm(samples: object) -> bytes:
    return np.asarray(samples, dtype="<i2").tobytes()


def g191_alaw_compress(sample: int) -> int:
    """``alaw_compress`` of ITU-T G.191 g711.c, one sample at a time."""
    ix = (~sample if sample < 0 else sample) >> 4
    if ix > 15:
        exponent = 1
        while ix > 16 + 15:
            ix >>= 1
            exponent += 1
        ix = ix - 16 + (exponent << 4)
    if sample >= 0:
        ix |= 0x80
    return ix ^ 0x55


def g191_alaw_expand(code: int) -> int:
    """``alaw_expand`` of ITU-T G.191 g711.c."""
    ix = (code ^ 0x55) & 0x7F
    exponent, mantissa = ix >> 4, ix & 0x0F
    if exponent > 0:
        mantissa += 16
    mantissa = (mantissa << 4) + 8
    if exponent > 1:
        mantissa <<= exponent - 1
    return mantissa if code > 127 else -mantissa


@pytest.mark.parametrize("sample, code", [
    (0, 0xD5), (-1, 0x55), (1, 0xD5), (32767, 0xAA), (-32768, 0x2A), (1000, 0xFA), (-1000, 0x7A),
])
def test_a_law_encodes_known_g711_values(sample: int, code: int) -> None:
    assert pcm16_to_alaw(pcm([sample])) == bytes([code])


def test_a_law_encoder_is_bit_exact_with_the_itu_reference_for_every_sample() -> None:
    every = np.arange(-32768, 32768, dtype="<i2")
    assert pcm16_to_alaw(every.tobytes()) == bytes(g191_alaw_compress(int(s)) for s in every)


def test_a_law_decoder_is_bit_exact_with_the_itu_reference_for_every_code() -> None:
    decoded = np.frombuffer(alaw_to_pcm16(bytes(range(256))), dtype="<i2").tolist()
    assert decoded == [g191_alaw_expand(code) for code in range(256)]
    assert decoded[0xD5] == 8 and decoded[0x55] == -8 and decoded[0xAA] == 32256


def test_a_law_round_trip_is_stable_and_close() -> None:
    codes = bytes(range(256))
    assert pcm16_to_alaw(alaw_to_pcm16(codes)) == codes
    samples = np.linspace(-30000, 30000, 801).astype("<i2")
    back = np.frombuffer(alaw_to_pcm16(pcm16_to_alaw(samples.tobytes())), dtype="<i2")
    error = np.abs(back.astype(np.int32) - samples)
    assert np.all(error <= np.maximum(16, np.abs(samples.astype(np.int32)) // 16))


def test_odd_length_pcm_is_refused() -> None:
    with pytest.raises(AudioFormatError):
        pcm16_to_alaw(b"\x00")
