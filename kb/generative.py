"""Optional generative answers over any OpenAI-compatible endpoint, grounded in retrieved passages.

Retrieval still decides whether an answer exists. :class:`GenerativeAnswerer` asks the wrapped
extractive answerer first; when it is not confident, its honest "I don't know" is returned
unchanged and the LLM is never asked (an LLM asked about something the KB does not cover is
where invented facts come from). When it is confident, the LLM rephrases an answer from the
retrieved passages only, and whatever it says is checked before it is spoken: empty replies,
``NOT_IN_PASSAGES``, and answers naming a number the passages do not contain ("$4.99",
"1-800", "45 days") all fall back to the extractive answer, as do timeouts, connection
errors, HTTP errors and malformed responses. A caller waits at most about the configured
timeout for the LLM, and never hears less than the extractive answer.

:class:`LlmClient` is a small blocking client of ``POST {base_url}/chat/completions`` (vLLM,
llama.cpp server, Ollama, OpenAI, ...) on the standard library alone. The answerer runs in a
worker thread, so blocking is right; both classes are thread-safe and shared by all calls.

Exceptions::

    LlmError        the endpoint did not give a usable completion; ``kind`` says why:
                    "timeout", "connection", "http_status", "bad_response" or "empty"
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from kb.answers import Answer
from kb.index import Passage

__all__ = [
    "NOT_IN_PASSAGES",
    "SYSTEM_PROMPT",
    "GenerativeAnswerer",
    "LlmClient",
    "LlmError",
    "answerer_from_settings",
    "speakable",
    "ungrounded_numbers",
]

log = logging.getLogger(__name__)

NOT_IN_PASSAGES = "NOT_IN_PASSAGES"

SYSTEM_PROMPT = (
    "You are {company}'s phone assistant. Answer the caller's question using only the "
    "passages in the user message; never add facts, numbers, prices, times or names that "
    "the passages do not state. Your reply is read aloud on a phone call: at most two short "
    "sentences in plain spoken English, no Markdown, no lists, no URLs, no passage ids. Copy "
    "numbers, prices and durations exactly as the passages write them. If the passages do "
    f"not contain the answer, reply exactly {NOT_IN_PASSAGES}"
)

# Fallback reasons, besides the LlmError kinds.
NOT_IN_PASSAGES_REASON = "not_in_passages"
UNGROUNDED_REASON = "ungrounded_number"
TOO_LONG_REASON = "too_long"

_MAX_RESPONSE_BYTES = 1 << 20  # a chat completion of 120 tokens is a few kB


class LlmError(Exception):
    """The endpoint gave no usable completion; ``kind`` names the failure for counters and logs."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ExtractiveAnswerer(Protocol):
    """What is wrapped: ``kb.GroundedAnswerer`` is one."""

    def answer(self, question: str, *, context: str | None = None,
               topic: str | None = None) -> Answer: ...


class PassageSource(Protocol):
    """What the answerer needs from the knowledge base (``kb.KnowledgeBase`` is one)."""

    def passage(self, passage_id: str) -> Passage: ...


class ChatClient(Protocol):
    """Anything that turns chat messages into the assistant's reply text or raises LlmError."""

    def complete(self, messages: Sequence[dict[str, str]]) -> str: ...


class LlmSettings(Protocol):
    """The settings fields used here (``voice.settings.Settings`` has them)."""

    llm_base_url: str | None
    llm_model: str
    llm_api_key: str | None
    llm_timeout_s: float


# --- the HTTP client ---------------------------------------------------------------------------


class LlmClient:
    """A blocking client of an OpenAI-compatible ``/chat/completions`` endpoint.

    ``timeout_s`` bounds connecting and each read of the socket (urllib's timeout), which for
    a non-streamed reply of 120 tokens is the whole wait. Holds no per-request state.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 2.0,
        max_tokens: int = 120,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the LLM base URL must start with http:// or https://, not {base_url!r}")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": "iva"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def complete(self, messages: Sequence[dict[str, str]]) -> str:
        """The reply text of ``choices[0].message.content``; :class:`LlmError` on any failure."""
        body = json.dumps({
            "model": self.model,
            "messages": list(messages),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }).encode()
        request = urllib.request.Request(self.url, data=body, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read(_MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise LlmError("http_status", f"the LLM endpoint answered HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:  # connecting failed; a connect timeout lands here too
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise self._timeout() from None
            raise LlmError("connection", f"cannot reach the LLM endpoint: {exc.reason}") from None
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            raise self._timeout() from None
        except OSError as exc:  # reset or closed mid-reply (RemoteDisconnected is one too)
            raise LlmError("connection", f"the LLM endpoint connection failed: {exc}") from None
        except http.client.HTTPException as exc:  # a reply that is not HTTP
            raise LlmError("bad_response", f"the LLM endpoint sent a malformed HTTP response: {exc!r}") from None
        if len(raw) > _MAX_RESPONSE_BYTES:
            raise LlmError("bad_response", "the LLM response is larger than 1 MB")
        return _content_of(raw)

    def _timeout(self) -> LlmError:
        return LlmError("timeout", f"the LLM endpoint did not answer within {self.timeout_s:g} s")


def _content_of(raw: bytes) -> str:
    try:
        payload: Any = json.loads(raw)
        content = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LlmError("bad_response", "the LLM response is not a chat completion JSON") from None
    if content is None or (isinstance(content, str) and not content.strip()):
        raise LlmError("empty", "the LLM returned no text")
    if not isinstance(content, str):
        raise LlmError("bad_response", "the LLM message content is not a string")
    return content


# --- checking and cleaning the reply -----------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NOT_IN_PASSAGES = re.compile(r"NOT[_ ]IN[_ ]PASSAGES", re.IGNORECASE)
_SCRATCHPAD = re.compile(r"<think>.*?</think>|```[^\n]*", re.DOTALL)  # reasoning, code fences
_HEADING = re.compile(r"^\s*#{1,6}\s")
_LINE_MARKER = re.compile(r"^\s*(?:>|[-*+•]|\d+[.)])\s+")  # quotes and list items
_INLINE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # Markdown links keep their text
    # URLs cannot be spoken usefully; "visit" or "see" before one goes with it.
    (re.compile(r"(?:\b(?:see|visit|go to|at|on)\s+)?(?:https?://|www\.)\S+", re.IGNORECASE), ""),
    (re.compile(r"\[[\w-]+#\d+(?:,\s*[\w-]+#\d+)*\]"), ""),  # cited passage ids
    (re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis, code
    (re.compile(r"[*_`#|]"), ""),
    (re.compile(r"\s+"), " "),
    (re.compile(r" (?=[.,!?;:])"), ""),
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def ungrounded_numbers(answer: str, passages: Sequence[str]) -> list[str]:
    """Digit sequences of ``answer`` ("4.99", "1", "800") that no passage contains, in order."""
    known = set().union(*(_numbers(p) for p in passages))
    return [n for n in dict.fromkeys(n.replace(",", "") for n in _NUMBER.findall(answer))
            if n not in known]


def _plain(text: str) -> str:
    """One line of plain text; headings dropped, list items made sentences of their own."""
    parts: list[str] = []
    last_marked = False
    for line in _SCRATCHPAD.sub(" ", text).splitlines():
        if _HEADING.match(line):
            continue
        item, marked = _LINE_MARKER.subn("", line)
        for pattern, replacement in _INLINE:
            item = pattern.sub(replacement, item)
        item = item.strip(" \"'")
        if not item:
            continue
        if marked and parts and parts[-1][-1] not in ".!?:;,":
            parts[-1] += "."
        parts.append(item)
        last_marked = bool(marked)
    if last_marked and parts[-1][-1] not in ".!?":
        parts[-1] += "."  # a last list item is finished, not cut off
    return " ".join(parts)


def speakable(text: str, *, max_words: int = 45) -> str:
    """Plain text to read aloud: Markdown and URLs removed, cut to ``max_words`` at a sentence end.

    Returns "" when even the first sentence is longer than ``max_words`` (a rambling reply is
    better replaced than cut mid-sentence). A trailing unfinished sentence (the reply hit
    ``max_tokens``) is dropped when a finished one comes before it.
    """
    text = _plain(text)
    sentences = [s for s in _SENTENCE_END.split(text) if s]
    if len(sentences) > 1 and sentences[-1][-1] not in ".!?":
        sentences.pop()
    kept: list[str] = []
    words = 0
    for sentence in sentences:
        words += len(sentence.split())
        if words > max_words:
            break
        kept.append(sentence)
    if not kept:
        return ""
    spoken = " ".join(kept)
    return spoken if spoken[-1] in ".!?" else spoken + "."


# --- the answerer ------------------------------------------------------------------------------


class GenerativeAnswerer:
    """Answers from the LLM when retrieval is confident and the LLM stays grounded; else extractively.

    ``kb`` resolves passage ids to texts (default: the wrapped answerer's ``kb``); up to
    ``max_passages`` passages go to the LLM: the extractive answer's own, then the next
    search hits from the same documents. Counters: :attr:`generated` answers and
    :attr:`fallbacks` by reason.
    """

    def __init__(
        self,
        extractive: ExtractiveAnswerer,
        client: ChatClient,
        *,
        kb: PassageSource | None = None,
        company_name: str = "the company",
        max_passages: int = 3,
        max_words: int = 45,
    ) -> None:
        kb = kb if kb is not None else getattr(extractive, "kb", None)
        if kb is None:
            raise ValueError("GenerativeAnswerer needs a knowledge base to read passages from (kb=...)")
        if max_passages < 1 or max_words < 1:
            raise ValueError("max_passages and max_words must be at least 1")
        self.extractive = extractive
        self.client = client
        self.kb = kb
        self.system_prompt = SYSTEM_PROMPT.format(company=company_name)
        self.max_passages = max_passages
        self.max_words = max_words
        self._lock = threading.Lock()
        self._generated = 0
        self._fallbacks: dict[str, int] = {}
        self._warned: set[str] = set()

    @property
    def generated(self) -> int:
        """Answers spoken as the LLM phrased them."""
        with self._lock:
            return self._generated

    @property
    def fallbacks(self) -> dict[str, int]:
        """Confident answers that fell back to the extractive text, by reason (a copy)."""
        with self._lock:
            return dict(self._fallbacks)

    def answer(self, question: str, *, context: str | None = None,
               topic: str | None = None) -> Answer:
        """Same contract as ``GroundedAnswerer.answer``; blocks up to the client's timeout."""
        extracted = self.extractive.answer(question, context=context, topic=topic)
        if not extracted.confident or not extracted.passage_ids:
            return extracted  # retrieval found nothing: the LLM is not asked
        passages = self._passages(question, extracted.passage_ids)
        try:
            reply = self.client.complete(self.messages(question, context, passages))
        except LlmError as exc:
            return self._fall_back(extracted, exc.kind, str(exc))
        if _NOT_IN_PASSAGES.search(reply):
            return self._fall_back(extracted, NOT_IN_PASSAGES_REASON,
                                   "the LLM found no answer in passages retrieval was confident about")
        text = speakable(reply, max_words=self.max_words)
        if not text:
            kind = TOO_LONG_REASON if reply.strip() else "empty"
            return self._fall_back(extracted, kind, "the LLM reply had no usable sentence "
                                   f"of at most {self.max_words} words")
        invented = ungrounded_numbers(text, [p.text for p in passages])
        if invented:
            return self._fall_back(extracted, UNGROUNDED_REASON,
                                   f"the LLM reply named {len(invented)} number(s) not in the passages")
        with self._lock:
            self._generated += 1
        log.debug("generative answer from %s", extracted.passage_ids)
        return replace(extracted, text=text)

    def messages(
        self, question: str, context: str | None, passages: Sequence[Passage]
    ) -> list[dict[str, str]]:
        """The chat messages sent for one question: the rules, then the passages and the question."""
        lines = ["Passages:"]
        for p in passages:
            heading = " / ".join(filter(None, (p.title, p.section)))
            lines.append(f"[{p.id}] {heading}: {p.text}")
        lines.append("")
        if context:
            lines.append(f"Earlier question (for context): {context}")
        lines.append(f"Caller's question: {question}")
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": "\n".join(lines)},
        ]

    def _passages(self, question: str, passage_ids: Sequence[str]) -> list[Passage]:
        """The answer's passages, then the next hits of the same documents, up to max_passages."""
        chosen = [self.kb.passage(pid) for pid in passage_ids]
        search = getattr(self.kb, "search", None)
        if search is not None and len(chosen) < self.max_passages:
            documents = {p.document for p in chosen}
            have = {p.id for p in chosen}
            for hit in search(question, k=self.max_passages + len(chosen)):
                if len(chosen) >= self.max_passages:
                    break
                if hit.passage.id not in have and hit.passage.document in documents:
                    chosen.append(hit.passage)
                    have.add(hit.passage.id)
        return chosen

    def _fall_back(self, extracted: Answer, reason: str, message: str) -> Answer:
        with self._lock:
            self._fallbacks[reason] = self._fallbacks.get(reason, 0) + 1
            first = reason not in self._warned
            self._warned.add(reason)
        # The reason only, never the caller's words: those may hold personal data.
        log.log(logging.WARNING if first else logging.DEBUG,
                "generative answer not used (%s): %s; answering extractively", reason, message)
        return extracted


def answerer_from_settings(
    settings: LlmSettings, extractive: ExtractiveAnswerer
) -> ExtractiveAnswerer:
    """The extractive answerer itself when no LLM endpoint is set, else a GenerativeAnswerer over it."""
    if not settings.llm_base_url:
        return extractive
    client = LlmClient(
        settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
    )
    company = getattr(settings, "company_name", None) or "the company"
    endpoint = urllib.parse.urlsplit(client.url)
    log.info("generative answers from %s://%s%s (model %s)", endpoint.scheme,
             endpoint.hostname, f":{endpoint.port}" if endpoint.port else "", settings.llm_model)
    return GenerativeAnswerer(extractive, client, company_name=company)
