"""Audio plumbing shared by the bridges: G.711 μ-law, resampling, WAV files.

Everything works on bytes of 16-bit little-endian mono PCM (``pcm16``), vectorised with numpy.

μ-law is bit-exact with ITU-T G.711 as implemented by the ITU's reference code (G.191,
``g711.c``): samples are reduced to 14-bit magnitudes (one's complement for negative values,
so the quantiser is symmetric around zero), biased by 33, split into a 3-bit segment and a
4-bit step, and the bits are inverted on the wire. Digital silence is ``0xFF``.

Errors::

    ValueError
     └── AudioFormatError   odd-length PCM, a WAV file this module cannot read
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import soxr


class AudioFormatError(ValueError):
    """Audio bytes or a WAV file that are not in a format this module reads."""


# ------------------------------------------------------------------------------ G.711 μ-law
def _build_decode_table() -> np.ndarray:
    inverted = ~np.arange(256, dtype=np.uint8)  # the wire format inverts every bit
    exponent = ((inverted >> 4) & 0x07).astype(np.int32)
    mantissa = (inverted & 0x0F).astype(np.int32)
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return np.where(inverted & 0x80, -magnitude, magnitude).astype("<i2")


_DECODE = _build_decode_table()
# Segment of a biased 14-bit magnitude m (33..8191): the bit length of m >> 6.
_SEGMENT = np.array([int(i).bit_length() for i in range(128)], dtype=np.int32)


def _samples(pcm: bytes) -> np.ndarray:
    if len(pcm) % 2:
        raise AudioFormatError(f"16-bit PCM needs an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2")


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode G.711 μ-law bytes to 16-bit PCM (table lookup)."""
    return _DECODE[np.frombuffer(ulaw, dtype=np.uint8)].tobytes()


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit PCM to G.711 μ-law, bit-exact with the ITU reference encoder."""
    samples = _samples(pcm).astype(np.int32)
    negative = samples < 0
    magnitude = np.where(negative, ~samples, samples) >> 2  # 14-bit, one's complement
    biased = np.minimum(magnitude + 33, 0x1FFF)
    segment = _SEGMENT[biased >> 6]
    step = (biased >> (segment + 1)) & 0x0F
    code = 0x7F ^ ((segment << 4) | step)
    return np.where(negative, code, code | 0x80).astype(np.uint8).tobytes()


# ------------------------------------------------------------------------------ G.711 A-law
# Bit-exact with G.191's ``alaw_compress`` / ``alaw_expand``: a sample keeps a 12-bit magnitude
# (its top bits, one's complement for negative values), split into a 3-bit segment and a 4-bit
# step; the sign bit is set for positive values and the even bits are inverted on the wire.
# Digital silence is 0xD5 (and 0x55 for the smallest negative values).
def _build_alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    toggled = (codes ^ 0x55) & 0x7F
    segment = toggled >> 4
    step = toggled & 0x0F
    mantissa = np.where(segment > 0, step | 0x10, step) * 16 + 8  # + half a quantisation step
    magnitude = mantissa << np.maximum(segment - 1, 0)
    return np.where(codes & 0x80, magnitude, -magnitude).astype("<i2")


_ALAW_DECODE = _build_alaw_decode_table()


def alaw_to_pcm16(alaw: bytes) -> bytes:
    """Decode G.711 A-law bytes to 16-bit PCM (table lookup)."""
    return _ALAW_DECODE[np.frombuffer(alaw, dtype=np.uint8)].tobytes()


def pcm16_to_alaw(pcm: bytes) -> bytes:
    """Encode 16-bit PCM to G.711 A-law, bit-exact with the ITU reference encoder."""
    samples = _samples(pcm).astype(np.int32)
    positive = samples >= 0
    magnitude = np.where(positive, samples, ~samples) >> 4  # 0..2047
    segment = _SEGMENT[magnitude >> 4]  # 0 below 16, else the bit length less four
    step = (magnitude >> np.maximum(segment - 1, 0)) & 0x0F
    code = (segment << 4) | step
    return (np.where(positive, code | 0x80, code) ^ 0x55).astype(np.uint8).tobytes()


# ------------------------------------------------------------------------------ resampling
class Resampler:
    """Streaming int16 mono resampler: filter state is kept between chunks (no clicks at seams).

    The default quality is soxr's "QQ" on purpose: the higher qualities return audio in blocks
    of ~100 ms (and hold the last block back until the stream ends), which would delay every
    20 ms telephone frame and clip the end of each utterance; "QQ" returns each chunk at once.
    Pass ``quality="HQ"`` where latency does not matter.
    """

    def __init__(self, src_rate: int, dst_rate: int, *, quality: str = "QQ") -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._stream = (None if src_rate == dst_rate else
                        soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality=quality))

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample the next chunk; ``last=True`` flushes what the filter still holds."""
        samples = _samples(pcm)
        if self._stream is None:
            return pcm
        return self._stream.resample_chunk(samples, last=last).astype("<i2").tobytes()


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample a whole buffer at once (high quality)."""
    samples = _samples(pcm)
    if src_rate == dst_rate or not len(samples):
        return pcm
    return soxr.resample(samples, src_rate, dst_rate, quality="HQ").astype("<i2").tobytes()


# ------------------------------------------------------------------------------ WAV files
_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def _chunks(data: bytes, path: Path | str) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a PCM WAV file (no RIFF/WAVE header)")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        chunks.setdefault(chunk_id, data[offset + 8: offset + 8 + size])
        offset += 8 + size + (size & 1)  # chunks are padded to even sizes
    if b"fmt " not in chunks or b"data" not in chunks:
        raise AudioFormatError(f"{path}: not a PCM WAV file (no 'fmt ' or 'data' chunk)")
    return chunks


def _to_float(frames: bytes, fmt: int, width: int, path: Path | str) -> np.ndarray:
    """Samples scaled to [-1, 1)."""
    frames = frames[: len(frames) - len(frames) % width]
    if fmt == _PCM and width == 1:
        return (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128) / 128
    if fmt == _PCM and width in (2, 4):
        return np.frombuffer(frames, dtype=f"<i{width}").astype(np.float64) / 2 ** (8 * width - 1)
    if fmt == _PCM and width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        return np.where(value & 0x800000, value - (1 << 24), value) / 2.0 ** 23
    if fmt == _FLOAT and width in (4, 8):
        return np.frombuffer(frames, dtype=f"<f{width}").astype(np.float64)
    kind = {_PCM: "integer PCM", _FLOAT: "float"}.get(fmt, f"format tag 0x{fmt:04x}")
    raise AudioFormatError(f"{path}: {8 * width}-bit {kind} samples are not supported; "
                           "use 8/16/24/32-bit integer PCM or 32/64-bit float")


def read_wav(path: Path | str) -> tuple[bytes, int]:
    """(16-bit mono PCM, sample rate) from a WAV file; several channels are mixed down.

    Reads integer PCM (8, 16, 24, 32 bit) and float (32, 64 bit), plain or
    WAVE_FORMAT_EXTENSIBLE; anything else (compressed codecs) raises ``AudioFormatError``.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AudioFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    chunks = _chunks(data, path)
    fmt_chunk = chunks[b"fmt "]
    if len(fmt_chunk) < 16:
        raise AudioFormatError(f"{path}: not a PCM WAV file (short 'fmt ' chunk)")
    fmt, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt_chunk)
    if fmt == _EXTENSIBLE and len(fmt_chunk) >= 26:
        fmt = struct.unpack_from("<H", fmt_chunk, 24)[0]  # first two bytes of the subformat GUID
    if channels < 1 or rate < 1 or bits < 1:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({channels} channels, {rate} Hz)")
    width = block_align // channels if block_align else (bits + 7) // 8
    samples = _to_float(chunks[b"data"], fmt, width, path)
    samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
    return pcm.tobytes(), int(rate)


def write_wav(path: Path | str, pcm: bytes, rate: int) -> None:
    """Write 16-bit mono PCM as a WAV file."""
    _samples(pcm)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
