"""The intent classifier: held-out accuracy, fresh phrasings, out of scope, calibration, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlu.classifier import (
    EVAL_FILE,
    MODEL_FILE,
    TRAIN_FILE,
    Example,
    IntentClassifier,
    IntentDataError,
    IntentModelError,
    IntentPrediction,
    load_examples,
    load_training,
    normalize_utterance,
)
from nlu.evaluation import evaluate_intents, expected_calibration_error, format_report, main

pytestmark = pytest.mark.unit

LABELS = {
    "order_status", "returns_refunds", "shipping", "membership_cancel", "membership_pause",
    "membership_info", "billing_dispute", "warranty", "hours", "price_match", "payment", "agent",
    "greeting", "goodbye", "affirm", "deny", "repeat", "hold", "out_of_scope",
}

# Phrasings in neither data file, written apart from both; each intent should get most right.
FRESH = {
    "order_status": [
        "hiya i'm trying to track down an order i placed",
        "my parcel from you still hasn't turned up",
        "any idea when order one zero zero three will go out",
        "can you see where ORD-1001 is right now",
    ],
    "returns_refunds": [
        "is it possible to send back headphones i don't like",
        "i'm still waiting for my money from a return",
        "what's the time limit on returning stuff",
        "can i get a refund on a software download",
    ],
    "shipping": [
        "what's the price for express delivery",
        "how many days does regular shipping take",
        "is delivery free if i spend over fifty",
        "do you guys offer quick shipping options",
    ],
    "membership_cancel": [
        "i'd like to stop my bright line plus for good",
        "please cancel my plus subscription right away",
        "i'm calling because i want to end my member ship",
        "um can i just cancel the plus membership",
    ],
    "membership_pause": [
        "instead of cancelling could i pause for a few months",
        "i'd like my plus membership put on hold",
        "can i pause brightline plus while i travel",
        "wait don't cancel it, just pause it",
    ],
    "membership_info": [
        "what's the monthly cost of brightline plus",
        "what benefits does plus give me",
        "how does the brightline plus membership work",
        "is my brightline plus active right now",
    ],
    "billing_dispute": [
        "i think i've been billed twice for the same thing",
        "there's a charge on my visa i never authorized",
        "you charged me for plus even though i canceled",
        "i'd like to dispute something on my statement",
    ],
    "warranty": [
        "my headphones stopped charging after seven months",
        "what's the warranty period on a laptop",
        "my headset broke is it still under warranty",
        "can you fix my speaker under the warranty",
    ],
    "hours": [
        "what time do your agents finish today",
        "are there people working on saturday",
        "when does your phone line open",
        "what are your opening hours on weekdays",
    ],
    "price_match": [
        "i saw the same speaker cheaper at best buy",
        "will you match a price from target",
        "the price dropped two days after i bought it",
        "can you do a price match for me",
    ],
    "payment": [
        "is it fine to pay with a debit card",
        "what kind of cards can i use to buy from you",
        "can i use paypal to pay for this",
        "what card gets billed for my plus subscription",
    ],
    "agent": [
        "can i please speak to a human being",
        "i'd like to be transferred to a live agent",
        "get me someone real please",
        "could i get an operator on the line",
    ],
    "greeting": [
        "hi there, good morning", "hello, hi, how are you", "hi, good day to you",
        "good evening, hello",
    ],
    "goodbye": [
        "thanks a lot, bye now",
        "okay that's everything, goodbye",
        "alright thanks, have a nice day",
        "that's all i needed, thank you, bye",
    ],
    "affirm": ["yes, that's correct", "yep, go ahead", "sure, please do", "yeah that's right"],
    "deny": [
        "no, that's wrong", "nope, i don't want that", "no thank you, not now", "no, not that one",
    ],
    "repeat": [
        "sorry, can you say that again",
        "what did you say, i didn't catch it",
        "could you repeat that once more",
        "pardon me, i missed the end of that",
    ],
}

OUT_OF_SCOPE_QUESTIONS = [
    "what's the weather",
    "who won the game",
    "book me a flight",
    "what's the capital of france",
    "how do i make lasagna",
    "can you recommend a good book",
]


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    """The service's classifier: trained on the written examples and the recogniser's
    transcripts of them (the shipped model file, retrained if it is stale)."""
    return IntentClassifier.default()


@pytest.fixture(scope="module")
def held_out() -> list[Example]:
    return load_examples(EVAL_FILE)


# --- the data files ----------------------------------------------------------------------------


def test_training_file_has_40_examples_of_each_of_the_18_intents() -> None:
    examples = load_examples(TRAIN_FILE)
    counts = {label: sum(e.intent == label for e in examples) for label in LABELS}
    assert {e.intent for e in examples} == LABELS
    assert min(counts.values()) >= 40, counts


def test_held_out_file_has_220_examples_covering_every_intent(held_out: list[Example]) -> None:
    assert len(held_out) >= 220
    assert {e.intent for e in held_out} == LABELS
    assert all(sum(e.intent == label for e in held_out) >= 10 for label in LABELS)


def test_training_and_held_out_files_share_no_text(held_out: list[Example]) -> None:
    training = {normalize_utterance(e.text) for e in load_examples(TRAIN_FILE)}
    assert not [e.text for e in held_out if normalize_utterance(e.text) in training]


def test_fresh_phrasings_appear_in_neither_file(held_out: list[Example]) -> None:
    known = {normalize_utterance(e.text) for e in [*load_examples(TRAIN_FILE), *held_out]}
    fresh = [*(t for texts in FRESH.values() for t in texts), *OUT_OF_SCOPE_QUESTIONS]
    assert not [t for t in fresh if normalize_utterance(t) in known]


def test_bad_examples_line_raises_data_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "hi", "intent": "greeting"}\n{"text": "no intent"}\n')
    with pytest.raises(IntentDataError, match=r"bad.jsonl:2"):
        load_examples(path)


# --- normalising -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "normalised"),
    [
        ("What's   the STATUS of ORD-1001?", "whats the status of ord 1001"),
        ("order one zero zero one", "order one zero zero one"),
        ("Cancel, no wait — PAUSE my membership!", "cancel no wait pause my membership"),
        ("  Café’s  ", "cafes"),
        ("", ""),
    ],
)
def test_normaliser_lowercases_strips_punctuation_and_keeps_spoken_numbers(
    said: str, normalised: str
) -> None:
    assert normalize_utterance(said) == normalised


# --- accuracy ----------------------------------------------------------------------------------


def test_held_out_accuracy_is_at_least_95_percent(
    classifier: IntentClassifier, held_out: list[Example]
) -> None:
    report = evaluate_intents(classifier, held_out)
    assert report.accuracy >= 0.95, format_report(report)


@pytest.mark.parametrize("intent", sorted(FRESH))
def test_each_intent_is_recognised_in_fresh_phrasings(
    classifier: IntentClassifier, intent: str
) -> None:
    predicted = {text: classifier.predict(text).intent for text in FRESH[intent]}
    assert sum(p == intent for p in predicted.values()) >= len(predicted) - 1, predicted


def test_fresh_phrasings_are_at_least_90_percent_right(classifier: IntentClassifier) -> None:
    pairs = [(text, intent) for intent, texts in FRESH.items() for text in texts]
    right = sum(classifier.predict(text).intent == intent for text, intent in pairs)
    assert right / len(pairs) >= 0.9


@pytest.mark.parametrize("question", OUT_OF_SCOPE_QUESTIONS)
def test_out_of_scope_question_is_out_of_scope_or_unsure(
    classifier: IntentClassifier, question: str
) -> None:
    prediction = classifier.predict(question)
    assert prediction.intent == "out_of_scope" or prediction.confidence < 0.85, prediction


def test_mid_sentence_correction_takes_the_final_request(classifier: IntentClassifier) -> None:
    pause = classifier.predict("so i want to cancel, no wait, actually pause the membership")
    cancel = classifier.predict("pause it, hmm, no, just cancel my plus")
    assert (pause.intent, cancel.intent) == ("membership_pause", "membership_cancel")


def test_empty_turn_is_not_a_confident_intent(classifier: IntentClassifier) -> None:
    assert classifier.predict("").confidence < 0.85
    assert classifier.predict("?!").confidence < 0.85


# --- confidence --------------------------------------------------------------------------------


def test_prediction_ranks_every_intent_with_probabilities_summing_to_one(
    classifier: IntentClassifier,
) -> None:
    prediction = classifier.predict("where is my order")
    scores = [score for _, score in prediction.ranking]
    assert {label for label, _ in prediction.ranking} == LABELS
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0)
    assert prediction.ranking[0] == (prediction.intent, prediction.confidence)


def test_confidence_is_calibrated_on_the_held_out_set(
    classifier: IntentClassifier, held_out: list[Example]
) -> None:
    report = evaluate_intents(classifier, held_out)
    assert report.mean_confidence_correct > report.mean_confidence_wrong + 0.1
    assert report.mean_confidence_correct > 0.85  # right answers rarely need a clarifying question
    assert report.expected_calibration_error < 0.08
    assert report.out_of_scope_confidently_wrong <= 2


def test_expected_calibration_error_is_the_weighted_gap_per_bin() -> None:
    assert expected_calibration_error([0.95, 0.95], [True, True]) == pytest.approx(0.05)
    assert expected_calibration_error([0.55, 0.55, 0.95, 0.95], [True, False, True, True]) == (
        pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    )
    assert expected_calibration_error([], []) == 0.0


# --- files and speed ---------------------------------------------------------------------------


def test_save_and_load_give_identical_predictions(
    classifier: IntentClassifier, held_out: list[Example], tmp_path: Path
) -> None:
    path = tmp_path / "intent_model.npz"
    classifier.save(path)
    loaded = IntentClassifier.load(path)
    assert loaded.labels == classifier.labels
    assert loaded.training_digest == classifier.training_digest
    for example in held_out:
        assert loaded.predict(example.text) == classifier.predict(example.text)


def test_unreadable_model_file_raises_model_error(tmp_path: Path) -> None:
    path = tmp_path / "intent_model.npz"
    path.write_bytes(b"not a model")
    with pytest.raises(IntentModelError):
        IntentClassifier.load(path)


def _write_examples(path: Path, examples: list[tuple[str, str]]) -> None:
    path.write_text("".join(json.dumps({"text": t, "intent": i}) + "\n" for t, i in examples))


def test_default_uses_a_model_file_only_while_it_matches_the_examples(tmp_path: Path) -> None:
    examples = [(f"{w} {n}", label) for label, w in (("a", "apple"), ("b", "banana"))
                for n in ("one", "two", "three", "four", "five")]
    _write_examples(tmp_path / "intents_train.jsonl", examples)
    trained = IntentClassifier.default(data_dir=tmp_path)  # no model file yet
    assert trained.labels == ("a", "b")
    # A model file claiming to be trained on these examples is used as it is.
    other = IntentClassifier.train(
        [Example(t, i.upper()) for t, i in examples], training_digest=trained.training_digest
    )
    other.save(tmp_path / "intent_model.npz")
    assert IntentClassifier.default(data_dir=tmp_path).labels == ("A", "B")
    # Once the examples change, it is stale and the classifier retrains.
    _write_examples(tmp_path / "intents_train.jsonl", [*examples, ("apple six", "a")])
    retrained = IntentClassifier.default(data_dir=tmp_path)
    assert retrained.labels == ("a", "b")
    assert retrained.training_digest not in {"", trained.training_digest}


class TopicEncoder:
    """A stand-in sentence encoder: texts about fruit point one way, about cars another,
    whatever their words; everything else a third way. Counts what it encodes."""

    TOPICS = {"fruit": ("apple", "pear", "plum", "mango"), "car": ("sedan", "truck", "van")}

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded.extend(texts)
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for row, text in enumerate(texts):
            topic = next((n for n, (name, words) in enumerate(self.TOPICS.items())
                          if any(w in text for w in words)), 2)
            out[row, topic] = 1.0
        return out


def test_the_sentence_embedding_carries_meaning_the_n_grams_never_saw(tmp_path: Path) -> None:
    # Trained on "apple"/"sedan" lines only; "mango" and "truck" share no n-gram with them.
    examples = [Example(f"i want the {w} {n}", label) for label, w in (("fruit", "apple"),
                                                                       ("car", "sedan"))
                for n in ("now", "today", "please", "soon", "again", "first")]
    encoder = TopicEncoder()
    model = IntentClassifier.train(examples, encoder=encoder)
    assert model.uses_embeddings and len(encoder.encoded) == len(examples)
    assert model.predict("mango").intent == "fruit"
    assert model.predict("truck").intent == "car"
    ngrams_only = IntentClassifier.train(examples)
    assert not ngrams_only.uses_embeddings
    assert ngrams_only.predict("mango").confidence < model.predict("mango").confidence

    path = tmp_path / "model.npz"
    model.save(path)
    loaded = IntentClassifier.load(path, encoder=encoder)
    assert loaded.uses_embeddings
    for text in ("mango", "truck", "i want the apple now", "nothing at all"):
        assert loaded.predict(text) == model.predict(text)
    ngrams_only.save(path)
    assert not IntentClassifier.load(path).uses_embeddings


def test_an_empty_turn_is_not_sent_to_the_encoder() -> None:
    examples = [Example(f"{w} {n}", w) for w in ("apple", "sedan") for n in ("one", "two", "three")]
    encoder = TopicEncoder()
    model = IntentClassifier.train(examples, encoder=encoder)
    encoder.encoded.clear()
    probs = model.probabilities(" ?! ")
    assert encoder.encoded == [] and np.allclose(probs, 0.5)


def test_the_shipped_model_file_matches_the_examples_and_reads_embeddings() -> None:
    # Shipped so the service starts without encoding 1,261 lines; retrained if ever stale.
    _, digest = load_training()
    shipped = IntentClassifier.load(MODEL_FILE)
    assert shipped.training_digest == digest, "intent_model.npz is stale: see nlu/data/README.md"
    assert shipped.uses_embeddings


def test_a_model_file_of_the_first_format_asks_for_retraining(tmp_path: Path) -> None:
    path = tmp_path / "old.npz"
    np.savez_compressed(path, format_version=np.array(1))
    with pytest.raises(IntentModelError, match="retrain"):
        IntentClassifier.load(path)


def test_training_needs_two_intents() -> None:
    with pytest.raises(IntentDataError):
        IntentClassifier.train([Example("hello", "greeting"), Example("hi", "greeting")])


# --- the evaluation report ---------------------------------------------------------------------


class ScriptedPredictor:
    """Answers each text with a scripted (intent, confidence)."""

    def __init__(self, script: dict[str, tuple[str, float]]) -> None:
        self.script = script

    def predict(self, text: str) -> IntentPrediction:
        intent, confidence = self.script[text]
        return IntentPrediction(intent, confidence, [(intent, confidence)])


def test_report_counts_accuracy_precision_recall_confusions_and_confident_out_of_scope() -> None:
    examples = [
        Example("where is it", "order_status"),
        Example("parcel", "order_status"),
        Example("refund", "returns_refunds"),
        Example("weather", "out_of_scope"),
        Example("football", "out_of_scope"),
    ]
    predictor = ScriptedPredictor({
        "where is it": ("order_status", 0.95),
        "parcel": ("returns_refunds", 0.6),
        "refund": ("returns_refunds", 0.9),
        "weather": ("hours", 0.9),
        "football": ("order_status", 0.5),
    })
    report = evaluate_intents(predictor, examples)
    assert (report.correct, report.total, report.accuracy) == (2, 5, 0.4)
    assert report.per_intent["order_status"].precision == 0.5
    assert report.per_intent["order_status"].recall == 0.5
    assert report.per_intent["returns_refunds"].precision == 0.5
    assert report.per_intent["hours"].support == 0
    assert report.confusions[0][2] == 1
    assert ("out_of_scope", "hours", 1) in report.confusions
    assert (report.out_of_scope_total, report.out_of_scope_confidently_wrong) == (2, 1)
    assert report.below_threshold == 2
    assert report.errors[0].confidence == 0.9
    text = format_report(report)
    assert "intent accuracy: 40.0% (2/5)" in text
    assert "out_of_scope -> hours: 1" in text


def test_evaluation_main_prints_the_report(
    classifier: IntentClassifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    classifier.save(tmp_path / "model.npz")
    examples = [("where is my order", "order_status"), ("bye", "goodbye")]
    _write_examples(tmp_path / "eval.jsonl", examples)
    assert main([str(tmp_path / "eval.jsonl"), "--model", str(tmp_path / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "intent accuracy: 100.0% (2/2)" in out
    assert "expected calibration error" in out


# --- the recogniser's hypotheses ----------------------------------------------------------------

def test_one_hypothesis_is_the_plain_prediction(classifier: IntentClassifier) -> None:
    alone = classifier.predict_heard([("where is my order", -0.4)])
    assert alone == classifier.predict("where is my order")


def test_a_word_the_best_hypothesis_garbled_is_heard_in_the_next(
        classifier: IntentClassifier) -> None:
    """Real tiny.en hypotheses for an espeak-ng caller who said "when do you close today"."""
    heard = [("When do you clone the name?", -0.393), ("When do you close the name?", -0.433),
             ("When do you clone today?", -0.536)]
    alone = dict(classifier.predict(heard[0][0]).ranking).get("hours", 0.0)
    fused = classifier.predict_heard(heard)
    assert fused.intent == "hours"
    assert alone < 0.6 and fused.confidence > alone + 0.15, (alone, fused.confidence)


def test_hypotheses_that_disagree_lower_the_confidence(classifier: IntentClassifier) -> None:
    heard = [("where is my order", -0.30), ("cancel my membership", -0.31)]
    each = [classifier.predict(text).confidence for text, _ in heard]
    both = classifier.predict_heard(heard)
    assert min(each) >= 0.85 and both.confidence < 0.6
    assert both.intent in ("order_status", "membership_cancel")


def test_spelling_variants_count_once_and_unlikely_hypotheses_not_at_all(
        classifier: IntentClassifier) -> None:
    best = classifier.predict("Cancel my membership.")
    # The same words twice, and a hypothesis the recogniser found e^-10 times less likely.
    heard = [("Cancel my membership.", -0.2), ("cancel my membership", -0.25),
             ("where is my order", -2.2)]
    assert classifier.predict_heard(heard) == best
    with pytest.raises(ValueError):
        classifier.predict_heard([])


def test_many_texts_are_scored_as_each_alone(classifier: IntentClassifier) -> None:
    texts = ["where is my order", "", "cancel my membership"]
    together = classifier._probabilities_of(texts)
    for row, text in zip(together, texts, strict=True):
        assert np.allclose(row, classifier.probabilities(text))
