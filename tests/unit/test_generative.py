"""Generative answers: grounded in retrieved passages, with the extractive answer as the fallback.

A small OpenAI-compatible endpoint runs on 127.0.0.1 in a thread; each test tells it how to
behave (answer, hang, fail, talk nonsense) and reads back the requests it received.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kb import DEMO_KB_DIR, DONT_KNOW, GroundedAnswerer, KnowledgeBase
from kb.generative import (
    GenerativeAnswerer,
    LlmClient,
    LlmError,
    answerer_from_settings,
    speakable,
    ungrounded_numbers,
)
from voice.settings import Settings

pytestmark = pytest.mark.unit

TIMEOUT_S = 0.3
QUESTION = "how much is express shipping"
GOOD_REPLY = "Express shipping costs $12.99 and takes 1 to 2 business days."


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def message(self, role: str) -> str:
        return next(m["content"] for m in self.body["messages"] if m["role"] == role)


@dataclass
class FakeLlm:
    """What the endpoint does next: ``mode`` is answer, hang, status_500 or garbage."""

    url: str
    mode: str = "answer"
    reply: str = GOOD_REPLY
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.release.set()  # let a hanging handler finish
        self.release = threading.Event()
        self.mode, self.reply = "answer", GOOD_REPLY
        with self.lock:
            self.requests.clear()


def serve(llm: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with llm.lock:
                llm.requests.append(Request(self.path, dict(self.headers), json.loads(raw)))
            mode, release = llm.mode, llm.release
            try:
                if mode == "hang":
                    release.wait(5)
                    self.send_json(200, completion(llm.reply))
                elif mode == "status_500":
                    self.send_json(500, {"error": {"message": "model crashed"}})
                elif mode == "garbage":
                    self.send_raw(200, b'{"choices": [{"message": ')
                else:
                    self.send_json(200, completion(llm.reply))
            except OSError:
                pass  # the client gave up (timeout): nobody is listening any more

        def send_json(self, status: int, payload: dict[str, Any]) -> None:
            self.send_raw(status, json.dumps(payload).encode())

        def send_raw(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class LoopbackServer(ThreadingHTTPServer):
    request_queue_size = 64  # the default 5 drops connections when 8 threads ask at once


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
    }


@pytest.fixture(scope="module")
def endpoint() -> Iterator[FakeLlm]:
    llm = FakeLlm(url="")
    server = LoopbackServer(("127.0.0.1", 0), serve(llm))
    llm.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield llm
    llm.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def llm(endpoint: FakeLlm, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlm]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # urllib must reach 127.0.0.1 directly
    endpoint.reset()
    yield endpoint
    endpoint.reset()


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    try:
        return KnowledgeBase.from_directory(DEMO_KB_DIR, embeddings=False)  # type: ignore[arg-type]
    except TypeError:  # an index without the embeddings option
        return KnowledgeBase.from_directory(DEMO_KB_DIR)


@pytest.fixture(scope="module")
def extractive(kb: KnowledgeBase) -> GroundedAnswerer:
    return GroundedAnswerer(kb)


def generative(
    extractive: GroundedAnswerer, url: str, *, timeout_s: float = TIMEOUT_S
) -> GenerativeAnswerer:
    client = LlmClient(url, model="test-model", api_key="sk-test", timeout_s=timeout_s)
    return GenerativeAnswerer(extractive, client, company_name="Brightline")


# --- the request ----------------------------------------------------------------------------------


def test_request_posts_model_key_passages_and_question_to_chat_completions(
    llm: FakeLlm, extractive: GroundedAnswerer, kb: KnowledgeBase
) -> None:
    generative(extractive, llm.url).answer(QUESTION)

    [request] = llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body["model"] == "test-model"
    assert request.body["temperature"] == 0
    assert request.body["max_tokens"] == 120
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    system, user = request.message("system"), request.message("user")
    assert "only" in system and "NOT_IN_PASSAGES" in system and "Markdown" in system
    assert "Brightline" in system
    assert kb.passage("shipping#2").text in user
    assert QUESTION in user


def test_request_adds_the_next_passages_of_the_same_document(
    llm: FakeLlm, extractive: GroundedAnswerer, kb: KnowledgeBase
) -> None:
    generative(extractive, llm.url).answer(QUESTION)

    user = llm.requests[0].message("user")
    assert kb.passage("shipping#1").text in user  # the standard-shipping paragraph, for context
    assert "returns#" not in user and "brightline-plus#" not in user


def test_request_carries_the_context_question(llm: FakeLlm, extractive: GroundedAnswerer) -> None:
    llm.reply = "Brightline Plus members can return items within 60 days from delivery."
    answer = generative(extractive, llm.url).answer(
        "and for plus members", context="how long do i have to return something"
    )

    user = llm.requests[0].message("user")
    assert "how long do i have to return something" in user
    assert "and for plus members" in user
    assert answer.text == llm.reply


def test_base_url_may_end_with_a_slash(llm: FakeLlm, extractive: GroundedAnswerer) -> None:
    generative(extractive, llm.url + "/").answer(QUESTION)

    assert llm.requests[0].path == "/v1/chat/completions"


def test_no_authorization_header_without_an_api_key(llm: FakeLlm, extractive: GroundedAnswerer) -> None:
    client = LlmClient(llm.url, model="local", timeout_s=TIMEOUT_S)
    GenerativeAnswerer(extractive, client).answer(QUESTION)

    assert "Authorization" not in llm.requests[0].headers


# --- answers -------------------------------------------------------------------------------------


def test_confident_answer_is_the_llms_text_with_the_extractive_sources(
    llm: FakeLlm, extractive: GroundedAnswerer
) -> None:
    answerer = generative(extractive, llm.url)
    expected = extractive.answer(QUESTION)

    answer = answerer.answer(QUESTION)

    assert answer.text == GOOD_REPLY
    assert answer.passage_ids == expected.passage_ids == ["shipping#2"]
    assert answer.confident and answer.score == expected.score
    assert answerer.generated == 1 and answerer.fallbacks == {}


def test_markdown_and_urls_are_removed_from_the_llms_text(
    llm: FakeLlm, extractive: GroundedAnswerer
) -> None:
    llm.reply = "**Express shipping** costs $12.99 [shipping#2]. Visit https://brightline.example/ship."

    assert generative(extractive, llm.url).answer(QUESTION).text == "Express shipping costs $12.99."


def test_out_of_scope_questions_never_reach_the_llm(llm: FakeLlm, extractive: GroundedAnswerer) -> None:
    answerer = generative(extractive, llm.url)

    for question in ("do you sell cars", "whats the weather like tomorrow",
                     "can you book me a flight to paris", "", "um"):
        answer = answerer.answer(question)
        assert answer == extractive.answer(question)
        assert answer.text == DONT_KNOW and not answer.confident

    assert llm.requests == []
    assert answerer.generated == 0 and answerer.fallbacks == {}


# --- fallbacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reply", "reason"),
    [
        ("hang", GOOD_REPLY, "timeout"),
        ("status_500", GOOD_REPLY, "http_status"),
        ("garbage", GOOD_REPLY, "bad_response"),
        ("answer", "", "empty"),
        ("answer", "NOT_IN_PASSAGES", "not_in_passages"),
        ("answer", "Express shipping costs $4.99.", "ungrounded_number"),
        ("answer", "Call 1-800-555-0199 for express shipping.", "ungrounded_number"),
        ("answer", "Express shipping takes 30 days.", "ungrounded_number"),
        ("answer", "Express shipping " + "is really very good " * 12 + ".", "too_long"),
    ],
)
def test_failures_fall_back_to_the_extractive_answer(
    llm: FakeLlm, extractive: GroundedAnswerer, mode: str, reply: str, reason: str
) -> None:
    llm.mode, llm.reply = mode, reply
    answerer = generative(extractive, llm.url)

    answer = answerer.answer(QUESTION)

    assert answer == extractive.answer(QUESTION)
    assert answer.text == "Express shipping takes 1 to 2 business days and costs $12.99."
    assert len(llm.requests) == 1
    assert answerer.fallbacks == {reason: 1} and answerer.generated == 0


def test_unreachable_endpoint_falls_back(extractive: GroundedAnswerer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answerer = generative(extractive, f"http://127.0.0.1:{port}/v1")

    assert answerer.answer(QUESTION) == extractive.answer(QUESTION)
    assert answerer.fallbacks == {"connection": 1}


def test_each_failure_kind_warns_once_without_the_callers_words(
    llm: FakeLlm, extractive: GroundedAnswerer, caplog: pytest.LogCaptureFixture
) -> None:
    answerer = generative(extractive, llm.url)
    caplog.set_level(logging.DEBUG, logger="kb.generative")

    llm.mode = "status_500"
    answerer.answer(QUESTION)
    answerer.answer(QUESTION)
    llm.mode, llm.reply = "answer", "NOT_IN_PASSAGES"
    answerer.answer(QUESTION)

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "http_status" in warnings[0] and "500" in warnings[0]
    assert "not_in_passages" in warnings[1]
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not any("express" in message.lower() for message in loud)
    assert answerer.fallbacks == {"http_status": 2, "not_in_passages": 1}


def test_answers_from_many_threads_are_all_counted(llm: FakeLlm, extractive: GroundedAnswerer) -> None:
    answerer = generative(extractive, llm.url, timeout_s=5.0)  # a busy machine is not the point here

    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(lambda _: answerer.answer(QUESTION).text, range(16)))

    assert texts == [GOOD_REPLY] * 16
    assert answerer.generated == 16 and len(llm.requests) == 16


# --- the client on its own ---------------------------------------------------------------------


def test_client_raises_llm_error_naming_the_http_status(llm: FakeLlm) -> None:
    llm.mode = "status_500"
    client = LlmClient(llm.url, model="m", timeout_s=TIMEOUT_S)

    with pytest.raises(LlmError, match="HTTP 500") as caught:
        client.complete([{"role": "user", "content": "hi"}])
    assert caught.value.kind == "http_status"


def test_client_rejects_a_base_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="http"):
        LlmClient("file:///etc", model="m")


# --- the factory ---------------------------------------------------------------------------------


def test_factory_without_a_url_returns_the_extractive_answerer(extractive: GroundedAnswerer) -> None:
    assert answerer_from_settings(Settings(llm_base_url=None), extractive) is extractive


def test_factory_with_a_url_wraps_the_extractive_answerer(extractive: GroundedAnswerer) -> None:
    settings = Settings(llm_base_url="http://127.0.0.1:11434/v1/", llm_model="llama3.2",
                        llm_api_key="k", llm_timeout_s=1.5)

    answerer = answerer_from_settings(settings, extractive)

    assert isinstance(answerer, GenerativeAnswerer) and answerer.extractive is extractive
    assert isinstance(answerer.client, LlmClient)
    assert answerer.client.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert answerer.client.model == "llama3.2" and answerer.client.timeout_s == 1.5
    assert settings.company_name in answerer.system_prompt


# --- cleaning and grounding ------------------------------------------------------------------------


def test_speakable_text_has_no_markdown_lists_or_thinking() -> None:
    reply = "<think>\nThe passage says 30.\n</think>\n## Returns\n- You can return items within 30 days\n- Plus members get 60 days"

    assert speakable(reply) == "You can return items within 30 days. Plus members get 60 days."


def test_speakable_text_is_cut_at_a_sentence_end() -> None:
    first = "Standard shipping takes 3 to 5 business days."
    second = "It is free on orders over $50 and costs $5.99 on smaller orders, which covers most of them."
    third = "Express shipping takes 1 to 2 business days and costs $12.99 on every order, large or small, to any address."

    assert speakable(" ".join([first, second, third])) == f"{first} {second}"
    assert speakable(f"{first} And then the reply stops in the mid") == first


def test_numbers_not_in_the_passages_are_found() -> None:
    passages = ["Express shipping costs $12.99.", "Orders over $1,000 ship free within 3 days."]

    assert ungrounded_numbers("It costs $12.99, free over $1000, in 3 days.", passages) == []
    assert ungrounded_numbers("Call 1-800-555 or pay $4.99.", passages) == ["1", "800", "555", "4.99"]
