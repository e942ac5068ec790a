"""Browser calls end to end: the real server and models, Debian's headless Chromium as the
caller, its fake microphone playing a question spoken by flite, over real WebRTC (no STUN or
TURN: both ends on this machine)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from telephony.audio import read_wav, resample, write_wav
from tests.e2e.browser import chromium, screenshot, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAKE_MIC_RATE = 48_000


def fake_microphone(voices: Any, speech: list[tuple[float, str]], path: Path, *,
                    tail_s: float = 60.0, voice: str = "flite") -> Path:
    """A WAV for ``--use-file-for-fake-audio-capture``: for each ``(silence_s, text)``, that
    much silence and then ``text`` spoken; then a long silence (Chromium plays the file in a
    loop from when the page opens the microphone)."""
    parts = []
    for silence_s, text in speech:
        pcm, rate = read_wav(voices.say(text, voice=voice))
        parts += [bytes(2 * int(FAKE_MIC_RATE * silence_s)), resample(pcm, rate, FAKE_MIC_RATE)]
    parts.append(bytes(2 * int(FAKE_MIC_RATE * tail_s)))
    write_wav(path, b"".join(parts), FAKE_MIC_RATE)
    return path


@contextmanager
def browser_with_microphone(wav: Path, *extra: str) -> Iterator[Any]:
    with chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={wav}",
                  "--autoplay-policy=no-user-gesture-required", *extra) as browser:
        yield browser


def css(browser: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, selector)


def state_is(*states: str) -> Callable[[Any], bool]:
    return lambda b: css(b, "[data-testid=state]").get_attribute("data-state") in states


def captions(browser: Any, speaker: str, *, final: bool = False) -> list[str]:
    """The caption lines of ``speaker`` on the page; ``final``: only those whose turn has
    ended (an answer shows as it starts, and becomes final once it has been heard)."""
    from selenium.webdriver.common.by import By

    selector = f"[data-testid=caption][data-speaker={speaker}]"
    if final:
        selector += "[data-final=true]"
    rows = browser.find_elements(By.CSS_SELECTOR, selector)
    return [row.find_element(By.CSS_SELECTOR, ".text").text for row in rows]


def page_captions(browser: Any) -> list[tuple[str, str, str]]:
    """Every caption line: (speaker, final, text), for failure messages."""
    from selenium.webdriver.common.by import By

    return [(row.get_attribute("data-speaker"), row.get_attribute("data-final"),
             row.find_element(By.CSS_SELECTOR, ".text").text)
            for row in browser.find_elements(By.CSS_SELECTOR, "[data-testid=caption]")]


def wait_for_caption(browser: Any, speaker: str, pattern: str, *, final: bool = False,
                     timeout: float = 30.0) -> None:
    """Until a caption line of ``speaker`` matches ``pattern`` (lower case)."""
    from selenium.common.exceptions import TimeoutException

    try:
        wait_for(browser, lambda b: any(re.search(pattern, line.lower())
                                        for line in captions(b, speaker, final=final)),
                 timeout=timeout)
    except TimeoutException:
        raise AssertionError(f"no {speaker} caption matching {pattern!r} within {timeout} s; "
                             f"the page shows {page_captions(browser)}") from None


def peak_level(browser: Any, testid: str) -> float:
    """The loudest the page has heard the far end (its meter's peak, from WebRTC stats)."""
    return float(css(browser, f"[data-testid={testid}]").get_attribute("data-peak") or 0)


def start_call(browser: Any, base_url: str) -> str:
    """Open /call, press Call, wait until connected; the call id shown on the page."""
    browser.get(base_url + "/call")
    css(browser, "[data-testid=call]").click()
    wait_for(browser, state_is("connected"), timeout=30, message="the call did not connect: "
             + css(browser, "[data-testid=error]").text)
    reference = wait_for(browser, lambda b: re.search(
        r"WR[0-9a-f]{32}", css(b, "[data-testid=call-id]").text), message="no call id shown")
    return reference.group(0)


def test_a_browser_caller_asks_a_question_and_hears_and_reads_the_answer(server, voices,
                                                                          tmp_path):
    wav = fake_microphone(voices, [(8.0, "How long do I have to return an item?")],
                          tmp_path / "question.wav")
    with browser_with_microphone(wav) as browser:
        call_id = start_call(browser, server.base_url)
        wait_for_caption(browser, "assistant", "thanks for calling", timeout=20)
        wait_for_caption(browser, "assistant", r"\b30\b|thirty", final=True, timeout=60)
        heard = captions(browser, "caller")
        assert any("return" in line.lower() for line in heard), heard
        assert peak_level(browser, "level") > 0.01  # the assistant's voice reached the page
        screenshot(browser, "webrtc-call")
        css(browser, "[data-testid=hangup]").click()
        wait_for(browser, state_is("ended"), message="the page did not show the call ended")

    record = server.call_record(call_id, wait_s=15)
    assert record["channel"] == "webrtc" and record["caller"] is None, record
    assert record["outcome"] == "completed", record["outcome"]
    caller_turns = [t for t in record["turns"] if t["speaker"] == "caller"]
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    assert "return" in caller_turns[0]["text"].lower(), caller_turns
    assert caller_turns[0]["intent"] == "returns_refunds", caller_turns
    assert answers[0]["intent"] == "greeting" and not answers[0]["interrupted"], answers[0]
    answer = answers[1]
    assert re.search(r"\b30\b|thirty", answer["text"].lower()), answer
    assert answer["latency_ms"] is not None and 0 < answer["latency_ms"] < 5000, answer
    assert any(e["type"] == "kb_passages" for e in record["events"])


def test_a_caller_who_denies_the_microphone_is_told_how_to_allow_it(server):
    # A microphone exists (fake device) but the permission prompt is refused.
    with chromium("--use-fake-device-for-media-stream", "--deny-permission-prompts") as browser:
        browser.get(server.base_url + "/call")
        assert css(browser, "[data-testid=state]").get_attribute("data-state") == "idle"
        assert not css(browser, "[data-testid=error]").is_displayed()
        css(browser, "[data-testid=call]").click()
        wait_for(browser, state_is("failed"), message="the page did not give up on the call")
        error = css(browser, "[data-testid=error]")
        assert error.is_displayed()
        assert "microphone access was denied" in error.text.lower(), error.text
        assert "allow" in error.text.lower(), error.text
        assert css(browser, "[data-testid=hangup]").get_attribute("disabled") is not None
        assert css(browser, "[data-testid=call]").is_enabled()  # the caller may try again
        screenshot(browser, "webrtc-microphone-denied")


def test_a_browser_caller_who_speaks_over_the_answer_interrupts_it(server, voices, tmp_path):
    # The answer about returns takes ~7 s; the second question comes ~3 s into it.
    wav = fake_microphone(voices, [(8.0, "How long do I have to return an item?"),
                                   (3.5, "How much is express shipping?")],
                          tmp_path / "barge-in.wav")
    with browser_with_microphone(wav) as browser:
        call_id = start_call(browser, server.base_url)
        # The interruption gets an answer of its own (greeting, returns, then this one).
        try:
            wait_for(browser, lambda b: len(captions(b, "assistant", final=True)) >= 3,
                     timeout=60)
        except Exception:
            raise AssertionError(f"the interruption was not answered; the page shows "
                                 f"{page_captions(browser)}") from None
        css(browser, "[data-testid=hangup]").click()
        wait_for(browser, state_is("ended"))

    record = server.call_record(call_id, wait_s=15)
    answers = [t for t in record["turns"] if t["speaker"] == "assistant"]
    returns = next(t for t in answers if t["intent"] == "returns_refunds")
    assert returns["interrupted"] is True, returns
    planned = returns.get("planned_text") or ""
    assert len(returns["text"]) < len(planned), returns  # only what the caller heard is kept
    assert any(e["type"] == "barge_in" for e in record["events"])
    # The interrupting words reach the record as a caller turn of their own. (Which intent
    # they get is not asserted: Chromium's echo canceller may clip the start of speech over
    # the answer, as a real browser would; answer correctness is the first test's job.)
    later = [t for t in record["turns"] if t["speaker"] == "caller"
             and t["start_ms"] > returns["start_ms"]]
    assert later and later[0]["text"].strip(), record["turns"]


def test_the_embed_snippet_puts_a_call_button_on_another_site(server):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.e2e.conftest import free_port

    company_page = ("<!doctype html><title>Brightline</title><h1>Our shop</h1><script src="
                    f'"{server.base_url}/call/static/embed.js" data-label="Call us" async>'
                    "</script>").encode()

    class CompanySite(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(company_page)))
            self.end_headers()
            self.wfile.write(company_page)

        def log_message(self, *args: object) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", free_port()), CompanySite)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with chromium() as browser:
            browser.get(f"http://127.0.0.1:{site.server_address[1]}/")  # another origin
            button = wait_for(browser, lambda b: b.find_elements(
                "xpath", "//button[normalize-space()='Call us']"), message="no Call us button")
            button[0].click()
            wait_for(browser, lambda b: len(b.window_handles) == 2, message="no call window")
            browser.switch_to.window(browser.window_handles[1])
            wait_for(browser, lambda b: b.current_url.startswith(server.base_url + "/call"))
            wait_for(browser, lambda b: css(b, "[data-testid=call]").is_displayed())
            assert "embedded" in css(browser, "body").get_attribute("class")
    finally:
        site.shutdown()
