"""KB documents: Markdown files to :class:`Passage` objects, and what a document's front matter says.

A document is one Markdown file: a ``# Title``, optional ``## Section`` headings and short
paragraphs. Each paragraph (or list) becomes a passage whose id is the file stem and its
position, ``"returns#2"``.

A document may start with front matter between two ``---`` lines, ``key: value`` per line::

    ---
    intents: price_match
    ---
    # Price match

``intents`` (comma-separated) names the caller intents the document answers. When the intent
classifier is confident a question has one of them and the whole knowledge base gives no
confident answer, the answerer accepts a weaker match in these documents (see
:mod:`kb.answers`). No other key is
known; an unknown key or an empty value is an error (``ValueError``), so a typo is not silently
ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FRONT_MATTER_KEYS", "Passage", "front_matter", "split_passages", "strip_markdown"]

FRONT_MATTER_KEYS = frozenset({"intents"})


@dataclass(frozen=True, slots=True)
class Passage:
    """One paragraph of a document: plain text, Markdown removed."""

    id: str  # "<document stem>#<1-based position>", e.g. "returns#2"
    title: str  # the document's "# Title"
    text: str
    section: str | None = None  # the "## Section" the paragraph sits under, if any
    # The caller intents its document answers (its front matter's ``intents``).
    intents: tuple[str, ...] = ()

    @property
    def document(self) -> str:
        """The id of the document the passage comes from ("returns")."""
        return self.id.partition("#")[0]


_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)",
                           re.DOTALL | re.MULTILINE)
_INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def front_matter(markdown: str) -> tuple[dict[str, str], str]:
    """The front matter's ``key: value`` pairs and the Markdown after it (all of it when there
    is none). Raises ``ValueError`` for a line that is not ``key: value``, an unknown key or an
    empty value."""
    match = _FRONT_MATTER.match(markdown)
    if match is None:
        return {}, markdown
    fields: dict[str, str] = {}
    for number, line in enumerate(match.group(1).splitlines(), 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, colon, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not colon:
            raise ValueError(f"front matter line {number} is not 'key: value': {line.strip()!r}")
        if key not in FRONT_MATTER_KEYS:
            raise ValueError(f"front matter line {number}: unknown key {key!r} "
                             f"(known: {', '.join(sorted(FRONT_MATTER_KEYS))})")
        if not value:
            raise ValueError(f"front matter line {number}: {key!r} has no value")
        fields[key] = value
    return fields, markdown[match.end():]


def _intents(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    bad = [n for n in names if not _INTENT_NAME.match(n)]
    if bad or not names:
        raise ValueError(f"front matter: intents must be names such as price_match, not {value!r}")
    return names


_INLINE_MARKUP = (
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images keep their text
    (re.compile(r"https?://\S+|www\.\S+"), ""),  # bare URLs cannot be spoken usefully
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"<[^>]+>"), ""),
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def strip_markdown(text: str) -> str:
    """Plain text from one Markdown line or paragraph: no emphasis, code marks, links or URLs."""
    for pattern, replacement in _INLINE_MARKUP:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _join_block(lines: list[str]) -> str:
    """A paragraph's lines as one text; list items become sentences of their own."""
    parts: list[str] = []
    for line in lines:
        item = _LIST_ITEM.sub("", line)
        text = strip_markdown(item.lstrip("> "))
        if not text:
            continue
        if item is not line and parts and parts[-1][-1] not in ".!?:":
            parts[-1] += "."
        parts.append(text)
    return " ".join(parts)


def split_passages(markdown: str, *, document: str) -> list[Passage]:
    """Split one Markdown document into paragraph passages.

    The first ``# `` heading is the title (the document id, title-cased, when there is none);
    ``##`` and deeper headings name the section of the paragraphs under them. Front matter
    (see the module docstring) gives every passage the document's ``intents``; ``ValueError``
    when it is malformed.
    """
    fields, markdown = front_matter(markdown)
    intents = _intents(fields["intents"]) if "intents" in fields else ()
    title: str | None = None
    section: str | None = None
    blocks: list[tuple[str | None, list[str]]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append((section, current.copy()))
            current.clear()

    for line in markdown.splitlines():
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            flush()
            text = strip_markdown(heading.group(2))
            if len(heading.group(1)) == 1 and title is None:
                title = text
            else:
                section = text
        elif not line.strip() or re.match(r"^\s*(?:-{3,}|\*{3,}|```.*)\s*$", line):
            flush()
        else:
            current.append(line)
    flush()

    title = title or document.replace("-", " ").replace("_", " ").capitalize()
    passages: list[Passage] = []
    for block_section, lines in blocks:
        text = _join_block(lines)
        if text:
            passages.append(Passage(f"{document}#{len(passages) + 1}", title, text, block_section,
                                    intents))
    return passages
