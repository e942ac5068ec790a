"""nlu.report (``iva eval nlu``): the arithmetic on small in-memory sets with a scripted
classifier and answerer, the shipped slot set, the JSON, and the command itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from kb.answers import DONT_KNOW, Answer
from kb.backend import SqliteBackend
from kb.evaluation import AnswerExample
from nlu.classifier import Example, IntentPrediction
from nlu.report import (
    SLOT_KINDS,
    SLOTS_EVAL_FILE,
    CallerVoice,
    Heard,
    NluReport,
    PhoneCaller,
    SlotExample,
    evaluate_condition,
    evaluate_nlu,
    format_nlu_report,
    invented_numbers,
    load_slot_examples,
    word_error_rate,
)
from voice.cli import main

pytestmark = pytest.mark.unit


class ScriptedClassifier:
    """Predicts what its script says for a text, and ``out_of_scope`` at 0.5 otherwise."""

    def __init__(self, script: dict[str, tuple[str, float]]) -> None:
        self.script = script

    def predict(self, text: str) -> IntentPrediction:
        intent, confidence = self.script.get(text, ("out_of_scope", 0.5))
        return IntentPrediction(intent, confidence, [(intent, confidence)])

    def predict_heard(self, hypotheses) -> IntentPrediction:
        """The first hypothesis the script knows (a stand-in for weighing them all)."""
        known = [text for text, _ in hypotheses if text in self.script]
        return self.predict(known[0] if known else hypotheses[0][0])


class ScriptedAnswerer:
    """A confident KB answer for the questions in its script, "I don't know" for the rest."""

    def __init__(self, script: dict[str, tuple[str, list[str]]]) -> None:
        self.script = script

    def answer(self, question: str, *, context: str | None = None,
               topic: str | None = None) -> Answer:
        if question not in self.script:
            return Answer(DONT_KNOW, confident=False, score=0.1)
        text, passages = self.script[question]
        return Answer(text, passages, confident=True, score=0.9)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqliteBackend]:
    with SqliteBackend(tmp_path / "backend.sqlite3") as backend:
        yield backend


def condition(backend, *, intents=(), slots=(), answers=(), script=None, kb=None,
              hear=None, name="text"):
    return evaluate_condition(
        name, hear=hear or (lambda text, *, asked=None: text),
        classifier=ScriptedClassifier(script or {}), answerer=ScriptedAnswerer(kb or {}),
        backend=backend, intents=list(intents), slots=list(slots), answers=list(answers))


# --- intents ---------------------------------------------------------------------------------------

def test_intent_accuracy_counts_right_labels_and_confidently_wrong_out_of_scope(backend):
    intents = [Example("where is my order", "order_status"),
               Example("how much is express", "shipping"),
               Example("whats the weather", "out_of_scope"),
               Example("who won the game", "out_of_scope")]
    script = {"where is my order": ("order_status", 0.99),
              "how much is express": ("membership_info", 0.6),
              "whats the weather": ("out_of_scope", 0.9),
              "who won the game": ("hours", 0.95)}
    report = condition(backend, intents=intents, script=script)
    assert (report.intents.correct, report.intents.total) == (2, 4)
    assert report.intents.out_of_scope_confidently_wrong == 1
    assert [(m.expected, m.predicted) for m in report.intent_mistakes] == [
        ("shipping", "membership_info"), ("out_of_scope", "hours")]


def test_through_speech_the_classifier_gets_what_was_heard(backend):
    heard = {"cancel my plus": "cancel my bus", "pause it": "pause it"}
    script = {"cancel my plus": ("membership_cancel", 0.99), "pause it": ("membership_pause", 0.9)}
    report = condition(backend, name="speech", script=script,
                       intents=[Example("cancel my plus", "membership_cancel"),
                                Example("pause it", "membership_pause")],
                       hear=lambda text, *, asked=None: heard[text])
    assert report.intents.correct == 1
    mistake = report.intent_mistakes[0]
    assert (mistake.text, mistake.heard, mistake.predicted) == (
        "cancel my plus", "cancel my bus", "out_of_scope")
    assert report.word_error_rate == pytest.approx(1 / 5)  # one word of five misheard
    assert report.intent_word_error_rate == pytest.approx(1 / 5)
    assert report.transcripts == [("cancel my plus", "cancel my bus"), ("pause it", "pause it")]


def test_the_recognisers_other_hypotheses_reach_the_classifier_and_the_assistant(backend):
    """Heard with alternatives: intents are read from all of them, as on a live call, while the
    transcript (word error rate, slots, the KB question) is the best one."""
    heard = {"cancel my plus": Heard("cancel my bus", (("cancel my bus", -0.2),
                                                       ("cancel my plus", -0.3))),
             "what is plus": Heard("what is bus", (("what is bus", -0.2), ("what is plus", -0.4)))}
    report = condition(backend, name="speech",
                       script={"cancel my plus": ("membership_cancel", 0.99),
                               "what is plus": ("membership_info", 0.99)},
                       kb={"what is bus": ("Plus is our membership.", ["plus#1"])},
                       intents=[Example("cancel my plus", "membership_cancel")],
                       answers=[AnswerExample("what is plus", ("plus#1",), ("membership",))],
                       hear=lambda text, *, asked=None: heard[text])
    assert report.intents.correct == 1 and report.intent_mistakes == []
    assert report.transcripts[0] == ("cancel my plus", "cancel my bus")
    assert report.replies.in_scope_correct == 1  # membership_info, answered from "what is bus"


def test_a_phone_caller_transcribes_the_audio_as_the_service_would_cut_it():
    class Voice:
        def phone_audio(self, text):
            return np.ones(16_000, dtype=np.float32)  # a second of "speech"

    class Transcriber:
        def __init__(self):
            self.heard = []

        def transcribe(self, audio, *, hint=""):
            self.heard.append((len(audio), hint))
            return SimpleNamespace(text="cut", audio_s=len(audio) / 16_000, compute_s=0.01,
                                   alternatives=())

    def segment(audio):  # e.g. service_segmenter(): silence around the words, as on a call
        return np.concatenate([np.zeros(3_200, dtype=np.float32), audio])

    transcriber = Transcriber()
    caller = PhoneCaller(Voice(), transcriber, hints={"order_number": "Order number 1 0 0 1."},
                         segment=segment)
    assert caller("my order", asked="order_number") == ("cut", ())
    assert caller("my order", asked="order_number") == ("cut", ())  # heard once, then remembered
    assert transcriber.heard == [(19_200, "Order number 1 0 0 1.")]
    assert caller.audio_s == pytest.approx(1.2)


# --- slots -----------------------------------------------------------------------------------------

def test_a_slot_line_is_right_only_when_every_checked_kind_matches(backend):
    slots = [
        SlotExample("order ten oh two and my zip is 94110",
                    {"order_number": "ORD-1002", "postcode": "94110"}),
        # the extractor also reads "no" as a refusal: wrong, because yes_no is checked by default
        SlotExample("order 1003 no", {"order_number": "ORD-1003"}),
        # the same "no" is not a mistake when the line checks the order number only
        SlotExample("order 1003 no", {"order_number": "ORD-1003"}, check=("order_number",)),
    ]
    report = condition(backend, slots=slots).slots
    assert (report.correct, report.total) == (2, 3)
    assert report.mistakes[0].expected == {"yes_no": None}
    assert report.mistakes[0].got == {"yes_no": False}


def test_per_kind_figures_count_the_lines_about_each_kind(backend):
    slots = [
        SlotExample("yes please", {"yes_no": True}),
        SlotExample("the 2nd of may", {"date": "2026-05-02"}),
        SlotExample("i paid 1299 for it", {}, check=("order_number", "postcode")),  # a negative
        SlotExample("2024 was a rough year", {}, check=("order_number",)),  # read as ORD-2024
    ]
    report = condition(backend, slots=slots).slots
    assert report.per_kind["yes_no"] == (1, 1)
    assert report.per_kind["date"] == (1, 1)
    assert report.per_kind["order_number"] == (1, 2)
    assert report.per_kind["postcode"] == (1, 1)
    assert report.per_kind["months"] == (0, 0)


def test_a_bare_number_is_months_only_when_the_assistant_asked_for_months(backend):
    slots = [SlotExample("two", {"months": 2}, asked="months"),
             SlotExample("two", {}, check=("months",))]
    assert condition(backend, slots=slots).slots.correct == 2


def test_the_shipped_slot_set_is_big_enough_and_well_formed():
    examples = load_slot_examples(SLOTS_EVAL_FILE)
    assert len(examples) >= 120
    negatives = [e for e in examples if not e.slots]
    assert len(negatives) >= 25 and all(e.check for e in negatives)
    for kind in SLOT_KINDS:
        assert sum(kind in e.slots for e in examples) >= 10, kind
    assert len({e.text for e in examples}) == len(examples)


def test_a_slot_line_with_an_unknown_kind_is_refused(tmp_path):
    path = tmp_path / "slots.jsonl"
    path.write_text('{"text": "order 1001", "slots": {"order": "ORD-1001"}}\n')
    with pytest.raises(ValueError, match="slots.jsonl:1"):
        load_slot_examples(path)


# --- answers ---------------------------------------------------------------------------------------

def test_in_scope_answers_need_every_expected_substring_case_insensitively(backend):
    kb = {"how much is express shipping": ("Express costs $12.99 and takes 1 to 2 days.",
                                           ["shipping#2"]),
          "how long is the warranty": ("All electronics have a 1 year warranty.", ["warranty#1"])}
    script = {"how much is express shipping": ("shipping", 0.99),
              "how long is the warranty": ("warranty", 0.99)}
    answers = [AnswerExample("how much is express shipping", ("shipping#2",), ("$12.99", "EXPRESS")),
               AnswerExample("how long is the warranty", ("warranty#1",), ("2 years",))]
    replies = condition(backend, answers=answers, script=script, kb=kb).replies
    assert (replies.in_scope_correct, replies.in_scope) == (1, 2)
    assert replies.mistakes[0].kind == "wrong"
    assert replies.missed == {"declined": 0, "clarified": 0, "flow": 0, "agent": 0, "wrong": 1}


def test_in_scope_misses_say_how_the_question_was_missed(backend):
    script = {"how do returns work": ("returns_refunds", 0.5),  # below the threshold
              "how much is plus": ("membership_info", 0.99),  # the KB has no answer
              "cancel plus": ("membership_cancel", 0.99)}  # starts the cancel flow
    answers = [AnswerExample(q, ("some#1",), ("something",)) for q in script]
    replies = condition(backend, answers=answers, script=script).replies
    assert replies.missed == {"declined": 1, "clarified": 1, "flow": 1, "agent": 0, "wrong": 0}


def test_out_of_scope_questions_with_cited_passages_or_new_numbers_are_invented(backend):
    kb = {"whats the capital of spain": ("Express costs $12.99.", ["shipping#2"]),
          "how fast is light": ("It travels 299792 km a second.", [])}
    script = {"whats the capital of spain": ("shipping", 0.99),
              "how fast is light": ("shipping", 0.99),
              "will it rain": ("out_of_scope", 0.99)}
    answers = [AnswerExample(q) for q in script]
    replies = condition(backend, answers=answers, script=script, kb=kb).replies
    # cited passages; a number the caller never said; the honest "I don't know" is right
    assert (replies.invented, replies.out_of_scope_correct, replies.out_of_scope) == (2, 1, 3)
    assert [m.question for m in replies.mistakes] == ["whats the capital of spain",
                                                     "how fast is light"]


def test_numbers_the_caller_said_are_not_invented():
    assert invented_numbers("Returns are accepted within 30 days.", "can i return after thirty days") == []
    assert invented_numbers("It costs $12.99.", "is it twelve ninety nine") == []
    assert invented_numbers("It costs $12.99.", "how much is it") == ["12.99"]
    assert invented_numbers(DONT_KNOW, "what is 2 plus 2") == []


# --- the whole report ------------------------------------------------------------------------------

def test_the_report_has_a_table_and_json_for_both_conditions(backend, tmp_path):
    intents = [Example("hi", "greeting"), Example("bye", "goodbye")]
    report = evaluate_nlu(
        classifier=ScriptedClassifier({"hi": ("greeting", 0.99), "bye": ("goodbye", 0.99)}),
        answerer=ScriptedAnswerer({}), backend=backend, intents=intents,
        slots=[SlotExample("nope", {"yes_no": False})], answers=[AnswerExample("will it rain")],
        speech=lambda text, *, asked=None: {"hi": "high"}.get(text, text), voice="espeak")
    assert isinstance(report, NluReport) and report.speech is not None
    text = format_nlu_report(report)
    assert "| intent accuracy | 100.0% (2/2) | 50.0% (1/2) |" in text
    assert "speech (espeak)" in text and "'hi' heard as 'high'" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["text"]["intent_accuracy"] == 1.0 and data["speech"]["intent_accuracy"] == 0.5
    assert data["speech"]["transcripts"][0] == {"said": "hi", "heard": "high"}
    assert data["text"]["invented"] == 0 and data["targets"]["intent_accuracy_speech"] == 0.9


def test_word_error_rate_is_edits_over_reference_words():
    assert word_error_rate([("Where's my order?", "wheres my order")]) == 0.0
    assert word_error_rate([("cancel my plus", "cancel plus"), ("hi", "hi there")]) == 0.5


def test_an_unknown_caller_voice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="piper"):
        CallerVoice("piper", tmp_path)


# --- the command -----------------------------------------------------------------------------------

def test_iva_eval_nlu_runs_on_text_and_writes_json(tmp_path, capsys):
    out = tmp_path / "nlu.json"
    assert main(["eval", "nlu", "--limit", "5", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| measure | text | speech | target |" in printed
    data = json.loads(out.read_text())
    assert data["text"]["intent_total"] == 5 and data["speech"] is None


def test_a_missing_voice_program_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr("nlu.report.shutil.which", lambda name: None)
    assert main(["eval", "nlu", "--speech", "--voice", "flite", "--limit", "2"]) == 1
    assert "flite" in capsys.readouterr().err


@pytest.mark.slow
def test_iva_eval_nlu_through_espeak_and_the_real_asr(tmp_path):
    out = tmp_path / "nlu.json"
    assert main(["eval", "nlu", "--speech", "--voice", "espeak", "--limit", "8",
                 "--json", str(out)]) == 0  # 1 (a failure) when espeak-ng is not installed
    speech = json.loads(out.read_text())["speech"]
    assert speech["intent_total"] == 8 and len(speech["transcripts"]) == 24
    assert any(t["heard"] for t in speech["transcripts"])
    assert 0.0 <= speech["word_error_rate"] < 1.0


def test_the_service_segmenter_puts_live_call_silence_around_espeaks_words(tmp_path):
    from nlu.report import service_segmenter

    audio = CallerVoice("espeak", tmp_path).phone_audio("where is my order")
    voiced = np.flatnonzero(np.abs(audio) > 0.02)
    assert voiced[0] < 16_000 * 0.05  # espeak-ng speaks from its first sample

    segment = service_segmenter()(audio)
    voiced = np.flatnonzero(np.abs(segment) > 0.02)
    assert 0.15 <= voiced[0] / 16_000 <= 0.3  # the pre-roll's silence, as on a live call
    assert 0.05 <= (len(segment) - voiced[-1]) / 16_000 <= 0.45
    assert len(voiced) >= 0.95 * np.count_nonzero(np.abs(audio) > 0.02)  # no word lost
    assert len(service_segmenter()(np.zeros(16_000, dtype=np.float32))) == 0
