"""Audio plumbing shared by the bridges: G.711 μ-law, resampling, WAV files.

Pure functions over bytes of 16-bit little-endian mono PCM (``pcm16``), vectorised with numpy.
μ-law follows ITU-T G.711 (14-bit magnitudes, bias 33, bits inverted on the wire), so
``pcm16_to_ulaw(b"\\0\\0") == b"\\xff"``.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soxr

_BIAS = 0x84


class AudioFormatError(ValueError):
    """A WAV file or buffer that is not in a format this module reads."""


def _build_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.uint8)
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + _BIAS) << exponent.astype(np.int32)
    values = magnitude - _BIAS
    return np.where(sign != 0, -values, values).astype(np.int16)


_DECODE = _build_decode_table()


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    return _DECODE[np.frombuffer(ulaw, dtype=np.uint8)].tobytes()


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    # G.711 encodes 14-bit magnitudes: drop two bits, add the bias, find the segment (the
    # position of the highest set bit), keep four mantissa bits, invert.
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16).astype(np.int32) >> 2
    mask = np.where(samples < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(samples), _CLIP_14) + _BIAS_14
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude)
    code = np.where(segment > 7, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8).tobytes()


_BIAS_14 = 0x21
_CLIP_14 = 8159
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


class Resampler:
    """Streaming int16 mono resampler (state kept between chunks, so no clicks at the seams).

    soxr's "quick" quality on purpose: its high-quality filters hold audio back in ~100 ms
    blocks, which would add that much to every end-of-turn decision; the quick one returns
    each 20 ms chunk at once, and telephone audio (band-limited to 3.4 kHz) loses nothing the
    ASR or VAD would notice.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._stream = (None if src_rate == dst_rate
                        else soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality="QQ"))

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
        return self._stream.resample_chunk(samples, last=last).tobytes()


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """One-shot resampling of a whole buffer."""
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype=np.int16)
    return soxr.resample(samples, src_rate, dst_rate, quality="HQ").astype(np.int16).tobytes()


def read_wav(path: Path | str) -> tuple[bytes, int]:
    """(16-bit mono PCM, sample rate) from a PCM WAV file; stereo is mixed down."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.int32)
    elif width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.int32) - 128) << 8
    else:
        raise AudioFormatError(f"{path}: {8 * width}-bit samples; use 8- or 16-bit PCM")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int32)
    return samples.astype(np.int16).tobytes(), rate


def write_wav(path: Path | str, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
