"""Hybrid retrieval (BM25 + embeddings), its honesty, and the labelled answer set that measures it."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from kb import DEMO_KB_DIR, DONT_KNOW, GroundedAnswerer, KnowledgeBase, KnowledgeBaseError, Passage
from kb.evaluation import (
    ANSWERS_EVAL_FILE,
    AnswerExample,
    AnswerReport,
    evaluate_answers,
    load_answer_examples,
    main,
)
from kb.index import analyze
from kb.retrieval import SIMILARITY_FLOOR, Retrieval, fuse, top_indices

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_directory(DEMO_KB_DIR)


@pytest.fixture(scope="module")
def hybrid(kb: KnowledgeBase) -> GroundedAnswerer:
    return GroundedAnswerer(kb)


@pytest.fixture(scope="module")
def examples() -> list[AnswerExample]:
    return load_answer_examples()


@pytest.fixture(scope="module")
def reports(kb: KnowledgeBase, examples: list[AnswerExample]) -> dict[Retrieval, AnswerReport]:
    return {mode: evaluate_answers(GroundedAnswerer(kb, retrieval=mode), examples) for mode in Retrieval}


# --- the labelled set ------------------------------------------------------------------------------


def test_the_answer_set_has_enough_in_scope_and_out_of_scope_questions(
    examples: list[AnswerExample],
) -> None:
    assert sum(e.in_scope for e in examples) >= 80
    assert sum(not e.in_scope for e in examples) >= 25
    assert len({e.question for e in examples}) == len(examples)


def test_the_answer_set_is_written_as_speech_recognition_hands_it_over(
    examples: list[AnswerExample],
) -> None:
    for e in examples:
        assert e.question == e.question.lower() and e.question.strip() == e.question, e.question
        assert not re.search(r"[?!,;]", e.question), e.question


def test_every_expected_passage_exists_and_says_what_the_answer_must(
    kb: KnowledgeBase, examples: list[AnswerExample]
) -> None:
    for e in examples:
        texts = [kb.passage(p).text.casefold() for p in e.passages]  # KeyError: unknown id
        for words in e.expect:
            assert any(words.casefold() in t for t in texts), (e.question, words)
        assert bool(e.expect) == e.in_scope, e.question


def test_the_answer_set_does_not_repeat_the_unit_test_phrasings(examples: list[AnswerExample]) -> None:
    tests = (Path(__file__).parent / "test_answers.py").read_text(encoding="utf-8")
    phrasings = set(re.findall(r'"([a-z][a-z \']+)"', tests))
    assert not phrasings & {e.question for e in examples}


def test_the_answer_set_ships_as_package_data() -> None:
    assert ANSWERS_EVAL_FILE.parent.name == "data" and ANSWERS_EVAL_FILE.parent.parent.name == "kb"
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"*.jsonl"' in pyproject and '"kb*"' in pyproject


# --- what hybrid retrieval is measured to do -------------------------------------------------------


def test_the_hybrid_answerer_invents_nothing_and_answers_no_worse_than_bm25(
    reports: dict[Retrieval, AnswerReport],
) -> None:
    hybrid, bm25 = reports[Retrieval.HYBRID], reports[Retrieval.BM25]
    assert hybrid.invented == 0
    assert hybrid.honesty == 1.0
    assert hybrid.correct >= bm25.correct
    assert hybrid.wrong <= bm25.wrong


def test_hybrid_retrieval_recalls_at_least_as_well_as_either_alone(
    reports: dict[Retrieval, AnswerReport],
) -> None:
    hybrid = reports[Retrieval.HYBRID]
    for alone in (reports[Retrieval.BM25], reports[Retrieval.EMBEDDINGS]):
        assert hybrid.found_first >= alone.found_first
        assert hybrid.found_top3 >= alone.found_top3


@pytest.mark.parametrize("question", [
    "whats the weather tomorrow", "can you book me a flight", "who won the game last night",
    "whats my electricity bill", "can i cancel my gym membership", "is the pharmacy open on sunday",
    "how much does shipping cost at the post office", "can i cancel my netflix subscription",
])
def test_an_off_topic_question_stays_unanswered_with_embeddings(
    hybrid: GroundedAnswerer, question: str
) -> None:
    answer = hybrid.answer(question)
    assert not answer.confident
    assert answer.text == DONT_KNOW and answer.passage_ids == []


@pytest.mark.parametrize(("question", "passage_id", "figure"), [
    ("how much is bright line plus a month", "brightline-plus#1", "$9.99"),
    ("i want to cancel bright line plus", "brightline-plus#3", "any time"),
    ("when are your agents working", "agent-hours#1", "Monday to Friday"),
    ("whats the minimum order for free shipping", "shipping#1", "$50"),
])
def test_a_phrasing_bm25_is_unsure_of_is_answered_with_embeddings(
    kb: KnowledgeBase, hybrid: GroundedAnswerer, question: str, passage_id: str, figure: str
) -> None:
    assert not GroundedAnswerer(kb, retrieval="bm25").answer(question).confident
    answer = hybrid.answer(question)
    assert answer.confident
    assert answer.passage_ids[0] == passage_id and figure in answer.text


def test_context_never_makes_an_off_topic_question_confident_with_embeddings(
    hybrid: GroundedAnswerer,
) -> None:
    assert not hybrid.answer("what about the weather", context="how much is bright line plus").confident


# --- the knowledge base and its options ------------------------------------------------------------


def test_embeddings_are_on_by_default_and_make_the_answerer_hybrid(kb: KnowledgeBase) -> None:
    assert kb.has_embeddings
    assert GroundedAnswerer(kb).retrieval is Retrieval.HYBRID


def test_a_knowledge_base_without_embeddings_is_bm25_only() -> None:
    plain = KnowledgeBase.from_directory(DEMO_KB_DIR, embeddings=False)
    assert not plain.has_embeddings
    assert GroundedAnswerer(plain).retrieval is Retrieval.BM25
    assert plain.search("how much is express shipping")[0].similarity is None
    with pytest.raises(ValueError, match="embeddings"):
        GroundedAnswerer(plain, retrieval="hybrid")
    with pytest.raises(KnowledgeBaseError):
        plain.similarities("refund")


def test_hits_carry_the_bm25_and_semantic_evidence(kb: KnowledgeBase) -> None:
    (hit, *_) = kb.search("how much is express shipping")
    assert hit.passage.id == "shipping#2"
    assert hit.bm25 > 0 and hit.similarity is not None and hit.similarity > 0.5
    (lexical, *_) = kb.search_terms(dict.fromkeys(analyze("express"), 1.0))
    assert lexical.score == lexical.bm25 and lexical.similarity is None


def test_hybrid_search_finds_nothing_for_a_question_nothing_matches(kb: KnowledgeBase) -> None:
    assert kb.search("weather in paris") == []


def test_embedding_retrieval_ranks_every_passage_by_similarity(kb: KnowledgeBase) -> None:
    hits = kb.rank({}, text="how do i track my package", k=5, retrieval=Retrieval.EMBEDDINGS)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].passage.id == "shipping#3"
    with pytest.raises(ValueError, match="text"):
        kb.rank({"track": 1.0}, retrieval=Retrieval.HYBRID)


def test_passages_of_a_new_folder_are_embedded_when_it_is_built(tmp_path: Path) -> None:
    (tmp_path / "hours.md").write_text("# Opening hours\n\nWe are open from 9 to 5 on weekdays.\n")
    (tmp_path / "parking.md").write_text("# Parking\n\nVisitors park for free behind the building.\n")
    kb = KnowledgeBase.from_directory(tmp_path)
    assert kb.similarity("where can i leave my car", "parking#1") > kb.similarity(
        "where can i leave my car", "hours#1")


def test_a_missing_embedding_model_is_a_knowledge_base_error_naming_the_setting(tmp_path: Path) -> None:
    from kb.embeddings import SentenceEncoder

    with pytest.raises(KnowledgeBaseError, match="cannot read the embedding model"):
        KnowledgeBase([Passage("a#1", "A", "text")], encoder=SentenceEncoder(tmp_path / "none.zip"))


# --- fusion ----------------------------------------------------------------------------------------


def test_a_full_lexical_match_keeps_its_lead_over_a_closer_paraphrase() -> None:
    scores = fuse(np.array([1.0, 0.7]), np.array([0.35, 0.75]))
    assert scores[0] > scores[1]


def test_cosines_below_the_floor_add_nothing() -> None:
    np.testing.assert_array_equal(fuse(np.zeros(3), np.array([-0.2, 0.0, SIMILARITY_FLOOR])), 0.0)
    assert top_indices(fuse(np.zeros(2), np.array([0.1, 0.2])), 3) == []


def test_top_indices_are_best_first_with_earlier_passages_winning_ties() -> None:
    assert top_indices(np.array([0.5, 0.9, 0.5, 0.0]), 3) == [1, 0, 2]
    assert top_indices(np.array([0.0, -1.0]), 2, positive=False) == [0, 1]
    with pytest.raises(ValueError):
        top_indices(np.array([1.0]), 0)


# --- the evaluation --------------------------------------------------------------------------------


def test_evaluation_counts_recall_correct_wrong_and_invented_answers(kb: KnowledgeBase) -> None:
    answerer = GroundedAnswerer(kb, retrieval="bm25")
    report = evaluate_answers(answerer, [
        AnswerExample("how much is express shipping", ("shipping#2",), ("$12.99",)),  # correct
        AnswerExample("how much is express shipping", ("shipping#1",), ("$5.99",)),  # wrong
        AnswerExample("paws my membership", ("brightline-plus#4",), ("3 months",)),  # declined
        AnswerExample("whats the weather tomorrow"),  # honest
        AnswerExample("is the pharmacy open on sunday"),  # invented by BM25
    ], name="bm25")
    assert (report.in_scope, report.out_of_scope) == (3, 2)
    assert (report.correct, report.wrong, report.declined) == (1, 1, 1)
    assert (report.honest, report.invented) == (1, 1)
    assert report.found_first == 1 and report.recall_at_1 == pytest.approx(1 / 3)
    assert [f.kind for f in report.failures] == ["wrong", "declined", "invented"]
    assert "invented 1" in str(report)
    assert any("pharmacy" in line for line in report.lines(verbose=True))


def test_answer_examples_load_from_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"question": "q", "passages": ["a#1"], "expect": ["x"]}) + "\n\n"
                    + json.dumps({"question": "r", "passages": [], "expect": []}) + "\n")
    assert load_answer_examples(path) == [AnswerExample("q", ("a#1",), ("x",)), AnswerExample("r")]


@pytest.mark.parametrize("line", ['{"passages": []}', "not json",
                                  '{"question": "q", "passages": [], "expect": ["x"]}'])
def test_a_bad_answer_example_names_its_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "ok"}\n' + line + "\n")
    with pytest.raises(ValueError, match=r"set\.jsonl:2"):
        load_answer_examples(path)


def test_the_evaluation_command_prints_the_three_configurations(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        json.dumps({"question": "how long does express delivery take for an order to me",
                    "passages": ["shipping#2"], "expect": ["1 to 2"]}) + "\n"
        + json.dumps({"question": "whats the weather tomorrow", "passages": [], "expect": []}) + "\n")
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([str(path)]) == 0
    text = out.getvalue()
    for label in ("BM25 only", "embeddings only", "hybrid", "recall@1", "invented", "model load"):
        assert label in text
