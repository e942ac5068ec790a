"""The training lines as the recogniser heard them (``intents_train_asr.jsonl``): how the file is
read with the training file, and how it is made (with scripted ears, no voices or models)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from nlu.asr_examples import (
    EVAL_VOICES,
    TRAINING_VOICES,
    HeardExample,
    TrainingVoiceError,
    heard_examples,
    read_heard_examples,
    write_heard_examples,
)
from nlu.classifier import (
    ASR_TRAIN_FILE,
    TRAIN_FILE,
    Example,
    IntentClassifier,
    IntentDataError,
    load_examples,
    load_training,
)

pytestmark = pytest.mark.unit


# --- reading ------------------------------------------------------------------------------------


def _write(path: Path, examples: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"text": t, "intent": i}) + "\n" for t, i in examples))


WRITTEN = [(f"{w} {n}", label) for label, w in (("a", "apple"), ("b", "banana"))
           for n in ("one", "two", "three", "four", "five")]


def test_without_an_asr_file_the_digest_is_the_training_files_own(tmp_path: Path) -> None:
    _write(tmp_path / TRAIN_FILE.name, WRITTEN)
    examples, digest = load_training(tmp_path)
    assert len(examples) == len(WRITTEN)
    assert digest == hashlib.sha256((tmp_path / TRAIN_FILE.name).read_bytes()).hexdigest()


def test_a_transcript_is_held_out_with_the_line_it_was_heard_from() -> None:
    from nlu.classifier import _groups, _stratified_folds

    examples = [Example(f"line {n}", "a" if n % 2 else "b") for n in range(20)]
    examples += [Example(f"lime {n}", e.intent, e.text) for n, e in enumerate(examples)]
    groups = _groups(examples)
    assert list(groups) == [*range(20), *range(20)]
    folds = _stratified_folds(np.array([e.intent == "a" for e in examples]), groups, 5, 0)
    assert list(folds[:20]) == list(folds[20:])


def test_asr_file_is_read_after_the_training_file_and_named_by_both(tmp_path: Path) -> None:
    _write(tmp_path / TRAIN_FILE.name, WRITTEN)
    heard = [HeardExample("a pull", "a", "apple one", "piper"),
             HeardExample("banal two", "b", "banana two", "festival")]
    write_heard_examples(heard, tmp_path / ASR_TRAIN_FILE.name)
    examples, digest = load_training(tmp_path)
    assert examples == [*(Example(t, i) for t, i in WRITTEN),
                        Example("a pull", "a", "apple one"), Example("banal two", "b", "banana two")]
    both = (tmp_path / TRAIN_FILE.name).read_bytes() + b"\n" + (
        tmp_path / ASR_TRAIN_FILE.name).read_bytes()
    assert digest == hashlib.sha256(both).hexdigest()


def test_asr_line_with_an_intent_the_training_file_lacks_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / TRAIN_FILE.name, WRITTEN)
    _write(tmp_path / ASR_TRAIN_FILE.name, [("a pull", "a"), ("cherry", "c")])
    with pytest.raises(IntentDataError, match=rf"{ASR_TRAIN_FILE.name}:2: .*'c'"):
        load_training(tmp_path)


def test_default_model_learns_the_asr_lines_and_retrains_when_they_change(tmp_path: Path) -> None:
    _write(tmp_path / TRAIN_FILE.name, WRITTEN)
    without = IntentClassifier.default(data_dir=tmp_path)
    _write(tmp_path / ASR_TRAIN_FILE.name, [("a pull", "a"), ("a pull one", "a")])
    with_heard = IntentClassifier.default(data_dir=tmp_path)
    assert with_heard.training_digest != without.training_digest
    assert with_heard.predict("pull").intent == "a"
    assert with_heard.predict("pull").confidence > without.predict("pull").confidence


# --- making it ----------------------------------------------------------------------------------


class ScriptedEars:
    """Hears each (voice, text) as scripted, else exactly what was said."""

    def __init__(self, script: dict[tuple[str, str], str]) -> None:
        self.script = script
        self.heard: list[tuple[str, str]] = []

    def __call__(self, voice: str, text: str) -> str:
        self.heard.append((voice, text))
        return self.script.get((voice, text), text)


def test_generation_keeps_new_transcripts_once_with_the_gold_intent(tmp_path: Path) -> None:
    training = [Example("freeze my plus", "membership_pause"),
                Example("what does plus cost", "membership_info"),
                Example("cancel plus", "membership_cancel")]
    ears = ScriptedEars({
        ("piper", "freeze my plus"): "Free in my plus.",
        ("festival", "freeze my plus"): "free in my plus",  # the same words again: once
        ("festival", "what does plus cost"): "What does last cost?",
        ("piper", "cancel plus"): "",  # nothing heard: dropped
        ("festival", "cancel plus"): "Cancel. Plus!",  # a training line once normalised
    })
    kept = heard_examples(training, voices=["piper", "festival"], hear=ears)
    assert len(ears.heard) == 6
    assert [(e.text, e.intent, e.said, e.voice) for e in kept] == [
        ("Free in my plus.", "membership_pause", "freeze my plus", "piper"),
        ("What does last cost?", "membership_info", "what does plus cost", "festival"),
    ]
    write_heard_examples(kept, tmp_path / "heard.jsonl")
    assert read_heard_examples(tmp_path / "heard.jsonl") == kept
    assert load_examples(tmp_path / "heard.jsonl") == [Example(e.text, e.intent, e.said)
                                                      for e in kept]


def test_extending_keeps_the_earlier_transcripts_and_adds_only_new_words() -> None:
    training = [Example("freeze my plus", "membership_pause")]
    earlier = [HeardExample("Free in my plus.", "membership_pause", "freeze my plus", "piper")]
    ears = ScriptedEars({("festival-ked", "freeze my plus"): "free in my plus"})
    assert heard_examples(training, voices=["festival-ked"], hear=ears,
                          earlier=earlier) == earlier
    ears.script[("festival-ked", "freeze my plus")] = "Fees in my bus."
    assert [e.voice for e in heard_examples(training, voices=["festival-ked"], hear=ears,
                                            earlier=earlier)] == ["piper", "festival-ked"]


def test_generation_drops_held_out_lines_and_words_heard_for_two_intents() -> None:
    training = [Example("pause it", "membership_pause"), Example("cause it", "out_of_scope"),
                Example("yes go on", "affirm")]
    ears = ScriptedEars({("piper", "pause it"): "Paws it.", ("piper", "cause it"): "paws it",
                         ("piper", "yes go on"): "yes, go ahead"})
    kept = heard_examples(training, voices=["piper"], hear=ears,
                          held_out=[Example("yes go ahead", "affirm")])
    assert kept == []


@pytest.mark.parametrize("voice", sorted(EVAL_VOICES | {"no-such-voice"}))
def test_generation_refuses_the_evaluation_voices(voice: str) -> None:
    with pytest.raises(TrainingVoiceError, match="not a training voice"):
        heard_examples([Example("hi", "greeting")], voices=[voice], hear=ScriptedEars({}))


def test_no_training_voice_is_an_evaluation_voice() -> None:
    assert not {name.split("-")[0] for name in TRAINING_VOICES} & {"espeak", "flite"}
    assert not set(TRAINING_VOICES) & EVAL_VOICES
