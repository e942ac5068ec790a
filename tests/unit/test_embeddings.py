"""The numpy all-MiniLM-L6-v2 sentence encoder: the reference vectors, shapes, batching, errors."""

from __future__ import annotations

import json
import math
import struct
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kb.embeddings import (
    EmbeddingModelError,
    SentenceEncoder,
    default_model_path,
    erf,
    read_safetensors,
    shared_encoder,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    encoder = shared_encoder()
    encoder.load()
    return encoder


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_the_similarities_match_the_sentence_transformers_reference(encoder: SentenceEncoder) -> None:
    # The example of the sentence-transformers README, computed there with torch.
    vectors = encoder.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    expected = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    np.testing.assert_allclose(vectors @ vectors.T, expected, atol=2e-3)


def test_a_paraphrase_is_closer_than_an_unrelated_question(encoder: SentenceEncoder) -> None:
    shipping, fee, spain = encoder.encode(
        ["how much does shipping cost", "what is the delivery fee", "what is the capital of spain"]
    )
    assert cosine(shipping, fee) > 0.5
    assert cosine(shipping, fee) > cosine(shipping, spain) + 0.4
    assert cosine(fee, spain) < 0.2


def test_vectors_are_384_dimensional_float32_and_unit_length(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(["where is my order", "um", "Brightline Plus costs $9.99 a month."])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_batch_encodes_each_text_as_it_would_alone(encoder: SentenceEncoder) -> None:
    texts = [
        "hi", "can i pause my membership for two months",
        "Standard shipping takes 3 to 5 business days. Standard shipping is free on orders over $50.",
        "paws my membership",
    ]
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(encoder.encode(texts), alone, atol=1e-5)


def test_the_output_keeps_the_input_order(encoder: SentenceEncoder) -> None:
    texts = ["a much longer sentence about the warranty on electronics", "short"]
    forward, backward = encoder.encode(texts), encoder.encode(texts[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)


def test_a_text_longer_than_128_tokens_is_truncated(encoder: SentenceEncoder) -> None:
    long = "refund " * 400
    vector = encoder.encode([long])
    np.testing.assert_allclose(vector, encoder.encode(["refund " * 126]), atol=1e-5)


def test_no_texts_give_an_empty_matrix(encoder: SentenceEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_one_string_is_not_taken_for_a_list_of_letters(encoder: SentenceEncoder) -> None:
    with pytest.raises(TypeError):
        encoder.encode("refund")  # type: ignore[arg-type]


def test_threads_share_one_encoder(encoder: SentenceEncoder) -> None:
    texts = [f"question number {i} about returns" for i in range(8)]
    expected = encoder.encode(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = encoder.encode([texts[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.vstack([results[i] for i in range(len(texts))]), expected, atol=1e-5)


def test_the_shared_encoder_is_one_per_process() -> None:
    assert shared_encoder() is shared_encoder()
    assert shared_encoder(default_model_path()) is not shared_encoder()


def test_the_model_is_read_from_the_installed_package_zip() -> None:
    path = default_model_path()
    assert path.name == "model.zip" and path.is_file()
    with zipfile.ZipFile(path) as archive:
        assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(archive.namelist())


def test_erf_is_accurate_to_a_millionth() -> None:
    xs = np.linspace(-5, 5, 2001, dtype=np.float32)
    exact = np.array([math.erf(float(x)) for x in xs])
    assert np.max(np.abs(erf(xs) - exact)) < 1e-6


# --- reading safetensors -------------------------------------------------------------------------


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    body = b""
    for name, array in tensors.items():
        data = array.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [len(body), len(body) + len(data)]}
        body += data
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + body


def test_safetensors_are_parsed_into_arrays() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([0.5, -1.5], dtype=np.float32)
    tensors = read_safetensors(safetensors_bytes({"a": a, "b": b}))
    assert set(tensors) == {"a", "b"}
    np.testing.assert_array_equal(tensors["a"], a)
    np.testing.assert_array_equal(tensors["b"], b)


@pytest.mark.parametrize("data", [b"", b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}",
                                  safetensors_bytes({"a": np.zeros(4, np.float32)})[:-4]])
def test_a_damaged_safetensors_file_raises_embedding_model_error(data: bytes) -> None:
    with pytest.raises(EmbeddingModelError):
        read_safetensors(data)


def test_a_missing_model_file_raises_embedding_model_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingModelError, match="cannot read"):
        SentenceEncoder(tmp_path / "missing.zip").encode(["hello"])


def test_a_zip_without_the_model_raises_embedding_model_error(tmp_path: Path) -> None:
    path = tmp_path / "model.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(EmbeddingModelError):
        SentenceEncoder(path).load()
