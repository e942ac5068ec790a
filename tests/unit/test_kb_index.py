"""The demo documents, Markdown chunking, text analysis and BM25 retrieval."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kb import DEMO_KB_DIR, KnowledgeBase, KnowledgeBaseError, Passage
from kb.index import analyze, split_passages
from kb.markdown import front_matter

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.from_directory(DEMO_KB_DIR)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the demo documents -----------------------------------------------------------------------

# Every fact of DEMO_COMPANY.md, as the words a document must say.
COMPANY_FACTS = [
    ("returns", ["30 days from delivery", "Plus members can return items within 60 days"]),
    ("limited-edition", ["14 days from delivery", "Plus members can return limited-edition items within 30 days"]),
    ("digital-products", ["software licences", "gift cards", "cannot be refunded once", "downloaded or activated"]),
    ("refunds", ["original payment method", "5 to 7 business days after we receive your return"]),
    ("shipping", ["Standard shipping takes 3 to 5 business days", "free on orders over $50", "$5.99",
                  "Express shipping takes 1 to 2 business days and costs $12.99"]),
    ("brightline-plus", ["$9.99 a month", "cancel Brightline Plus at any time",
                         "active until the end of the current billing period", "pause Brightline Plus for up to 3 months"]),
    ("warranty", ["All electronics", "warranty of 1 year", "Plus members, the warranty on electronics is 2 years"]),
    ("agent-hours", ["Monday to Friday from 8 am to 8 pm Eastern", "Saturday from 9 am to 5 pm Eastern",
                     "not available on Sunday, when we are closed"]),
    ("price-match", ["major US retailer", "within 14 days of your purchase"]),
    ("billing-disputes", ["Billing disputes are always handled by a human agent"]),
]


def test_demo_kb_dir_is_a_folder_of_markdown_documents() -> None:
    assert DEMO_KB_DIR.is_dir()
    assert len(list(DEMO_KB_DIR.glob("*.md"))) >= 10


@pytest.mark.parametrize(("document", "phrases"), COMPANY_FACTS, ids=[d for d, _ in COMPANY_FACTS])
def test_demo_documents_state_every_company_fact(document: str, phrases: list[str]) -> None:
    text = " ".join((DEMO_KB_DIR / f"{document}.md").read_text(encoding="utf-8").split())
    for phrase in phrases:
        assert phrase in text


def test_every_demo_document_starts_with_a_title() -> None:
    for path in DEMO_KB_DIR.glob("*.md"):
        _fields, markdown = front_matter(path.read_text(encoding="utf-8"))
        assert markdown.startswith("# "), path.name


def test_demo_passages_are_plain_short_sentences_fit_to_speak(kb: KnowledgeBase) -> None:
    for passage in kb.passages:
        assert not re.search(r"https?://|www\.|[*_`#\[\]]", passage.text), passage.id
        for sentence in re.split(r"(?<=[.!?])\s+", passage.text):
            assert len(sentence.split()) <= 30, sentence


def test_demo_passage_ids_name_the_document_and_position(kb: KnowledgeBase) -> None:
    assert kb.passage("returns#1").title == "Returns"
    assert kb.passage("returns#2").document == "returns"
    assert all(re.fullmatch(r"[a-z-]+#\d+", p.id) for p in kb.passages)


# --- chunking ----------------------------------------------------------------------------------


def test_each_paragraph_becomes_a_passage_with_the_document_title() -> None:
    passages = split_passages("# Returns\n\nFirst paragraph.\nStill first.\n\nSecond one.\n", document="returns")
    assert passages == [
        Passage("returns#1", "Returns", "First paragraph. Still first."),
        Passage("returns#2", "Returns", "Second one."),
    ]


def test_section_headings_are_kept_as_context_of_their_paragraphs() -> None:
    passages = split_passages("# Help\n\nIntro.\n\n## Fees\n\nA fee.\n\nAnother fee.\n", document="help")
    assert [p.section for p in passages] == [None, "Fees", "Fees"]
    assert [p.id for p in passages] == ["help#1", "help#2", "help#3"]


def test_list_items_become_sentences_of_one_passage() -> None:
    (passage,) = split_passages("# Pay\n\nWe accept:\n- **cards**\n- gift cards\n", document="pay")
    assert passage.text == "We accept: cards. gift cards"


def test_markdown_links_emphasis_and_urls_are_removed_from_passages() -> None:
    markdown = "# T\n\nSee the [returns page](https://x.example/r) or `code` and _this_, www.x.example now.\n"
    (passage,) = split_passages(markdown, document="t")
    assert passage.text == "See the returns page or code and this, now."


def test_a_document_without_a_title_is_named_after_its_file() -> None:
    (passage,) = split_passages("Just a paragraph.\n", document="gift-cards")
    assert passage.title == "Gift cards"


def test_title_words_find_a_paragraph_that_does_not_name_its_topic(tmp_path: Path) -> None:
    write(tmp_path, "warranty.md", "# Warranty\n\nCovered for 1 year.\n")
    write(tmp_path, "shipping.md", "# Shipping\n\nArrives in 3 days.\n")
    hits = KnowledgeBase.from_directory(tmp_path).search("what is the warranty")
    assert hits[0].passage.id == "warranty#1"


# --- errors ----------------------------------------------------------------------------------------


def test_a_missing_folder_raises_knowledge_base_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="does not exist"):
        KnowledgeBase.from_directory(tmp_path / "nowhere")


def test_a_folder_without_markdown_raises_knowledge_base_error(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "not markdown")
    with pytest.raises(KnowledgeBaseError, match="no .md documents"):
        KnowledgeBase.from_directory(tmp_path)


def test_a_document_with_only_a_title_raises_knowledge_base_error(tmp_path: Path) -> None:
    write(tmp_path, "empty.md", "# Empty\n\n")
    with pytest.raises(KnowledgeBaseError, match="empty.md has no text"):
        KnowledgeBase.from_directory(tmp_path)


def test_a_document_that_is_not_utf8_raises_knowledge_base_error(tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_bytes(b"# Bad\n\n\xff\xfe caf\xe9\n")
    with pytest.raises(KnowledgeBaseError, match="cannot read"):
        KnowledgeBase.from_directory(tmp_path)


def test_a_knowledge_base_needs_passages_with_unique_ids() -> None:
    with pytest.raises(KnowledgeBaseError):
        KnowledgeBase([])
    with pytest.raises(KnowledgeBaseError, match="unique"):
        KnowledgeBase([Passage("a#1", "A", "x"), Passage("a#1", "A", "y")])


def test_search_rejects_k_below_one(kb: KnowledgeBase) -> None:
    with pytest.raises(ValueError):
        kb.search("returns", k=0)


# --- analysis ------------------------------------------------------------------------------------


def test_analysis_lowercases_and_drops_punctuation_and_stop_words() -> None:
    assert analyze("What's the WARRANTY, please?!") == ["warranty"]


def test_numbers_are_not_index_terms() -> None:
    assert analyze("Express costs $12.99, two weeks ago.") == analyze("express cost")


@pytest.mark.parametrize("words", [("return", "returns", "returned", "returning"),
                                   ("ship", "shipping", "shipped", "ships"),
                                   ("cancel", "cancelled", "canceling", "cancellation")])
def test_inflections_share_one_stem(words: tuple[str, ...]) -> None:
    assert len({tuple(analyze(w)) for w in words}) == 1


@pytest.mark.parametrize(("phrase", "meaning"), [
    ("send it back", "return"), ("ship the laptop back", "return"), ("i want my money back", "refund"),
    ("delivery", "shipping"), ("membership", "plus"), ("subscription", "plus"),
    ("guarantee", "warranty"), ("are you open", "hours"), ("what time", "hours"),
    ("talk to someone", "agent"), ("a real person", "agent"), ("limited-edition", "limited edition"),
    ("gift cards", "gift card"), ("how much", "cost"), ("price matching", "price match"),
])
def test_phone_phrasings_mean_what_the_documents_say(phrase: str, meaning: str) -> None:
    assert analyze(phrase) == analyze(meaning)


def test_delivery_as_a_point_in_time_is_not_about_shipping() -> None:
    assert "ship" not in analyze("30 days from delivery")


# --- BM25 retrieval ------------------------------------------------------------------------------


def test_search_returns_at_most_k_hits_best_first(kb: KnowledgeBase) -> None:
    hits = kb.search("return shipping refund", k=3)
    assert 1 <= len(hits) <= 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_with_no_known_words_returns_no_hits(kb: KnowledgeBase) -> None:
    assert kb.search("weather in paris") == []
    assert kb.search("") == []


def test_rare_terms_weigh_more_than_common_ones(kb: KnowledgeBase) -> None:
    assert kb.idf("pricematch") > kb.idf("plus")
    assert kb.idf("never-seen-term") >= kb.idf("pricematch")


def test_a_term_repeated_in_a_passage_scores_higher_than_a_single_mention(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "# A\n\nRefund refund policy text here.\n")
    write(tmp_path, "b.md", "# B\n\nRefund policy text here too.\n")
    write(tmp_path, "c.md", "# C\n\nSomething else entirely.\n")
    hits = KnowledgeBase.from_directory(tmp_path).search("refund")
    assert [h.passage.id for h in hits] == ["a#1", "b#1"]


def test_coverage_counts_unknown_words_against_the_passage(kb: KnowledgeBase) -> None:
    assert kb.coverage(analyze("return"), "returns#1") == pytest.approx(1.0)
    assert kb.coverage(analyze("return my car"), "returns#1") < 0.5


RETRIEVAL = [
    ("whats your return policy", "returns#1"),
    ("how long do i have to return something", "returns#1"),
    ("whats your return policy for plus members", "returns#1"),
    ("how do i start a return", "returns#2"),
    ("can i return a limited edition item", "limited-edition#1"),
    ("can i get a refund on a gift card", "digital-products#1"),
    ("when will i get my money back", "refunds#1"),
    ("how long does delivery take", "shipping#1"),
    ("how much is express shipping", "shipping#2"),
    ("how much is the membership", "brightline-plus#1"),
    ("how do i cancel my subscription", "brightline-plus#3"),
    ("can i put my membership on hold", "brightline-plus#4"),
    ("whats the guarantee on electronics", "warranty#1"),
    ("what time are you open on saturday", "agent-hours#1"),
    ("do you price match", "price-match#1"),
    ("i was charged twice", "billing-disputes#1"),
    ("where is my order", "order-status#1"),
    ("what payment methods do you accept", "payment#1"),
]


@pytest.mark.parametrize(("query", "passage_id"), RETRIEVAL)
def test_spoken_questions_retrieve_the_right_passage_first(
    kb: KnowledgeBase, query: str, passage_id: str
) -> None:
    assert kb.search(query)[0].passage.id == passage_id


# --- front matter ------------------------------------------------------------------------------


def test_front_matter_gives_every_passage_its_documents_intents_and_is_not_text() -> None:
    markdown = "---\nintents: returns_refunds, warranty\n---\n# Returns\n\nFirst.\n\nSecond.\n"
    passages = split_passages(markdown, document="returns")
    assert [p.text for p in passages] == ["First.", "Second."]
    assert {p.intents for p in passages} == {("returns_refunds", "warranty")}
    assert passages[0].title == "Returns"


def test_a_document_without_front_matter_names_no_intents_and_a_later_rule_is_a_break() -> None:
    passages = split_passages("# Pay\n\nCards.\n---\nintents: x\n---\nMore.\n", document="pay")
    assert [p.intents for p in passages] == [(), (), ()]
    assert [p.text for p in passages] == ["Cards.", "intents: x", "More."]


@pytest.mark.parametrize(("front", "error"), [
    ("intent: warranty", "unknown key 'intent'"),
    ("just words", "is not 'key: value'"),
    ("intents:", "'intents' has no value"),
    ("intents: Price Match", "names such as price_match"),
])
def test_bad_front_matter_raises_knowledge_base_error_naming_the_document(
        tmp_path: Path, front: str, error: str) -> None:
    write(tmp_path, "warranty.md", f"---\n{front}\n---\n# Warranty\n\nOne year.\n")
    with pytest.raises(KnowledgeBaseError, match=rf"warranty\.md.*{re.escape(error)}"):
        KnowledgeBase.from_directory(tmp_path, embeddings=False)


def test_the_knowledge_base_knows_which_documents_answer_an_intent(tmp_path: Path) -> None:
    write(tmp_path, "returns.md", "---\nintents: returns_refunds\n---\n# Returns\n\nA.\n\nB.\n")
    write(tmp_path, "refunds.md", "---\nintents: returns_refunds\n---\n# Refunds\n\nC.\n")
    write(tmp_path, "hours.md", "# Hours\n\nNine to five.\n")
    kb = KnowledgeBase.from_directory(tmp_path, embeddings=False)
    assert kb.documents_about("returns_refunds") == {"returns", "refunds"}
    assert kb.documents_about("hours") == frozenset()
    assert kb.intents == {"returns_refunds"}


def test_front_matter_with_windows_line_ends_is_read_too() -> None:
    markdown = "---\r\nintents: warranty\r\n---\r\n# Warranty\r\n\r\nOne year.\r\n"
    (passage,) = split_passages(markdown, document="warranty")
    assert passage.intents == ("warranty",) and passage.text == "One year."
