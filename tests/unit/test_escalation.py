"""The escalation predictor: hysteresis, asking for a person, reasons, the held-out snippets,
and the fitted weights file."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from nlu.escalation import (
    ASKED_FOR_PERSON,
    EVAL_FILE,
    FEATURES,
    MODEL_FILE,
    TRAIN_FILE,
    EscalationDataError,
    EscalationModel,
    EscalationPredictor,
    EscalationSettings,
    Snippet,
    SnippetTurn,
    evaluate_escalation,
    format_report,
    load_snippets,
    main,
    main_eval_escalation,
    replay,
    training_rows,
)
from nlu.sentiment import LEXICON_FILE, SentimentTracker, VoiceFeatures

pytestmark = pytest.mark.unit

INTENTS = {
    "order_status", "returns_refunds", "shipping", "membership_cancel", "membership_pause",
    "membership_info", "billing_dispute", "warranty", "hours", "price_match", "agent",
    "greeting", "goodbye", "affirm", "deny", "repeat", "out_of_scope",
}
CALM = VoiceFeatures()
RAISED = VoiceFeatures(energy_change_db=4, pitch_change_semitones=2, rate_change_ratio=1.15)
LOUD = VoiceFeatures(energy_change_db=7, pitch_change_semitones=3, rate_change_ratio=1.25)


@pytest.fixture(scope="module")
def model() -> EscalationModel:
    return EscalationModel.default()


class Call:
    """One call's trackers and predictor, driven the way the dialogue drives them."""

    def __init__(self, model: EscalationModel, **settings: float) -> None:
        self.tracker = SentimentTracker()
        self.predictor = EscalationPredictor(model, settings=EscalationSettings(**settings))

    def turn(self, text: str, intent: str | None = "order_status", *, voice=CALM,
             failed: bool = False, barge_in: bool = False):
        if barge_in:
            self.tracker.barge_in()
        mood = self.tracker.caller_turn(text, intent, voice=voice)
        decision = self.predictor.update(mood, self.tracker.signals, intent)
        self.tracker.assistant_reply(intent, failed)
        return decision


# --- hysteresis ----------------------------------------------------------------------------

@pytest.mark.parametrize("sharp", [
    "that's ridiculous", "what the hell", "ugh, this is so annoying", "i'm furious",
    "this is useless", "damn it", "this is the third time i've called about it",
])
@pytest.mark.parametrize("voice", [CALM, RAISED], ids=["calm voice", "raised voice"])
def test_one_sharp_turn_on_a_calm_call_does_not_escalate(model, sharp, voice) -> None:
    call = Call(model)
    decisions = [call.turn("hi, i'm calling about my order"),
                 call.turn(sharp, voice=voice),
                 call.turn("okay, fine, thanks", "affirm")]
    assert not any(d.escalate for d in decisions), [(d.risk, d.reasons) for d in decisions]
    assert decisions[-1].level == "calm"


def test_two_negative_turns_escalate(model) -> None:
    call = Call(model)
    first = call.turn("hi, where's my refund", "returns_refunds")
    second = call.turn("it's been three weeks, this is getting ridiculous", voice=RAISED)
    third = call.turn("i'm really fed up, nobody has helped me at all", voice=LOUD)
    assert not first.escalate and not second.escalate
    assert third.escalate and third.changed and third.level == "escalate"
    assert third.risk >= 0.55


def test_two_negative_turns_in_words_alone_escalate(model) -> None:
    """Without audio the voice is neutral; the words and the run of the call must do."""
    call = Call(model)
    call.turn("this is the third time i've called and nobody fixed it")
    call.turn("no, i've already told you, this is unacceptable", "deny", failed=True)
    assert call.turn("i'm extremely unhappy, this is a disgrace").escalate


def test_asking_for_a_person_escalates_at_once(model) -> None:
    call = Call(model)
    assert not call.turn("hi, i have a question about my order").escalate
    decision = call.turn("actually can you put me through to a human", "order_status")
    assert decision.escalate and decision.changed
    assert decision.reasons[0] == ASKED_FOR_PERSON
    assert decision.risk < 0.55  # it is the request, not the risk, that escalates


def test_the_agent_intent_escalates_even_on_a_calm_first_turn(model) -> None:
    decision = Call(model).turn("hmm", "agent")
    assert decision.escalate and decision.reasons == [ASKED_FOR_PERSON]


def test_an_escalation_stays_escalated(model) -> None:
    call = Call(model)
    call.turn("agent please", "agent")
    later = call.turn("thanks, that's lovely", "goodbye")
    assert later.escalate and not later.changed


def test_levels_change_through_watch(model) -> None:
    call = Call(model)
    calm = call.turn("hi, checking on my order")
    watch = call.turn("i'm furious", voice=RAISED)
    assert (calm.level, calm.changed) == ("calm", False)
    assert (watch.level, watch.changed) == ("watch", True)
    assert watch.event_data() == {"risk": round(watch.risk, 3), "level": "watch",
                                  "escalate": False, "reasons": watch.reasons}


def test_settings_move_the_threshold(model) -> None:
    def run(**settings: float) -> bool:
        call = Call(model, **settings)
        call.turn("hi, checking on my order")
        return call.turn("this is absolutely ridiculous", voice=RAISED).escalate

    assert not run()
    assert run(threshold=0.3, margin=0.1)


# --- reasons -----------------------------------------------------------------------------

def test_reasons_quote_the_words_and_describe_the_voice(model) -> None:
    call = Call(model)
    call.turn("hi, it's about my washing machine", "warranty")
    call.turn("this is the third time i've called and nobody fixed it", voice=RAISED)
    decision = call.turn("i'm really angry now", voice=LOUD)
    assert decision.escalate
    words = next(r for r in decision.reasons if r.startswith("negative words: "))
    assert "'angry'" in words and "'nobody fixed'" in words
    assert "voice louder, higher and faster than at the start" in decision.reasons


def test_reasons_count_failed_answers_and_interruptions(model) -> None:
    call = Call(model)
    call.turn("can i get a receipt for my order", "out_of_scope", failed=True)
    call.turn("a receipt, for the order", "out_of_scope", failed=True, barge_in=True)
    decision = call.turn("a receipt", "out_of_scope", voice=RAISED, barge_in=True)
    text = "; ".join(decision.reasons)
    assert "2 failed answers" in text
    assert "interrupted the assistant 2 times" in text


# --- held-out snippets -------------------------------------------------------------------

@pytest.fixture(scope="module")
def held_out(model):
    return evaluate_escalation(lambda: EscalationPredictor(model), load_snippets(EVAL_FILE))


def test_every_held_out_caller_who_asks_for_a_person_is_transferred(held_out) -> None:
    assert held_out.asked_for_human_total >= 8
    assert held_out.asked_for_human_transferred == held_out.asked_for_human_total


def test_no_calm_held_out_caller_is_transferred(held_out) -> None:
    assert held_out.calm_total >= 20
    assert held_out.false_transfers_of_calm == 0
    assert held_out.precision == 1.0


def test_held_out_recall_stays_high(held_out) -> None:
    assert held_out.recall >= 0.85, format_report(held_out)


def test_snippet_files_are_large_varied_and_apart() -> None:
    train, held = load_snippets(TRAIN_FILE), load_snippets(EVAL_FILE)
    assert len(train) >= 100 and len(held) >= 40 and len(train) + len(held) >= 140
    for snippets in (train, held):
        assert 0.3 < sum(s.escalate for s in snippets) / len(snippets) < 0.6
        assert all(s.note and all(t.intent in INTENTS for t in s.turns) for s in snippets)
    lines = {t.caller for s in train for t in s.turns if len(t.caller.split()) >= 4}
    assert not [t.caller for s in held for t in s.turns if t.caller in lines]


def test_replay_applies_barge_ins_and_failures_turn_by_turn(model) -> None:
    snippet = Snippet([SnippetTurn("where is it", "order_status", assistant_failed=True),
                       SnippetTurn("where is my order", "order_status", barge_in=True)], True)
    decisions = replay(snippet, EscalationPredictor(model))
    assert [d.features["failed_answers"] for d in decisions] == [0, 1]
    assert [d.features["barge_ins"] for d in decisions] == [0, 1]


# --- the weights file ----------------------------------------------------------------------

def test_the_shipped_weights_were_fitted_on_the_current_data() -> None:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert data["training_digest"] == hashlib.sha256(TRAIN_FILE.read_bytes()).hexdigest()
    assert data["lexicon_digest"] == hashlib.sha256(LEXICON_FILE.read_bytes()).hexdigest()
    assert tuple(data["features"]) == FEATURES


def test_the_shipped_weights_match_a_refit(model) -> None:
    """Catches what the digests cannot: a change to the sentiment code behind the features."""
    refit = EscalationModel.fit(*training_rows(load_snippets(TRAIN_FILE)))
    assert refit.weights == pytest.approx(model.weights, abs=1e-4)
    assert refit.bias == pytest.approx(model.bias, abs=1e-4)


def test_a_stale_weights_file_is_refitted_on_load(tmp_path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text(TRAIN_FILE.read_text(encoding="utf-8") + json.dumps(
        {"turns": [{"caller": "you lot are useless, absolutely useless", "intent": "deny"}],
         "escalate": True, "note": "added"}) + "\n", encoding="utf-8")
    refitted = EscalationModel.default(train_file=train)
    assert refitted.training_digest == hashlib.sha256(train.read_bytes()).hexdigest()
    assert refitted.training_digest != EscalationModel.default().training_digest


def test_fit_writes_a_loadable_file(tmp_path, capsys) -> None:
    out = tmp_path / "model.json"
    assert main(["fit", "--out", str(out)]) == 0
    fitted, shipped = EscalationModel.load(out), EscalationModel.load(MODEL_FILE)
    assert fitted.training_digest == shipped.training_digest
    assert fitted.weights == pytest.approx(shipped.weights, abs=1e-5)
    assert "wrote" in capsys.readouterr().out


def test_eval_command_prints_precision_and_recall(capsys) -> None:
    assert main_eval_escalation([]) == 0
    out = capsys.readouterr().out
    assert "precision: 100.0%" in out and "recall:" in out
    assert "calm callers transferred: 0/" in out


def test_unusable_files_raise_one_error_type(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"turns": [], "escalate": true}\n', encoding="utf-8")
    with pytest.raises(EscalationDataError, match="bad.jsonl:1"):
        load_snippets(bad)
    model = tmp_path / "model.json"
    model.write_text('{"format_version": 1, "features": ["x"]}', encoding="utf-8")
    with pytest.raises(EscalationDataError, match="other features"):
        EscalationModel.load(model)


def test_an_update_is_cheap(model) -> None:
    call = Call(model)
    mood = call.tracker.caller_turn("this is the third time i've called", voice=RAISED)
    started = time.perf_counter()
    for _ in range(200):
        call.predictor.update(mood, call.tracker.signals, "order_status")
    assert (time.perf_counter() - started) / 200 < 0.002
