"""Knowledge: the demo documents, the passage index and grounded, extractive answers.

``DEMO_KB_DIR`` is the demo company's knowledge base (Brightline, see ``kb/documents``): one
Markdown file per topic, shipped as package data. Documents are written for extraction: every
sentence names its subject ("Express shipping takes ...", never "It takes ..."), so that any
sentence read alone over the phone is still true and complete.

    kb = KnowledgeBase.from_directory(DEMO_KB_DIR)
    GroundedAnswerer(kb).answer("how long do i have to return something").text
"""

from pathlib import Path

from kb.answers import DONT_KNOW, Answer, GroundedAnswerer
from kb.index import Hit, KnowledgeBase, KnowledgeBaseError, Passage

DEMO_KB_DIR: Path = Path(__file__).resolve().parent / "documents"

__all__ = [
    "DEMO_KB_DIR",
    "DONT_KNOW",
    "Answer",
    "GroundedAnswerer",
    "Hit",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Passage",
]
