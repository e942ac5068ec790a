"""A browser call handed to a person who answers in the browser: two headless Chromium tabs,
the caller's on /call and the agent's on the desk (/agent, signed in), each with its own fake
microphone, bridged through the service over WebRTC."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.e2e.browser import screenshot, wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER
from tests.e2e.test_pii_call import recording
from tests.e2e.test_webrtc_calls import (
    browser_with_microphone,
    captions,
    css,
    fake_microphone,
    peak_level,
    start_call,
    state_is,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AGENT_WORDS = re.compile(r"alex|brightline|how can i help")


def sign_in_to_the_desk(browser, base_url: str) -> None:
    browser.get(base_url + "/agent")
    wait_for(browser, lambda b: "/login" in b.current_url, message="no login page")
    css(browser, "[data-testid=username]").send_keys(ADMIN_USER)
    css(browser, "[data-testid=password]").send_keys(ADMIN_PASSWORD)
    css(browser, "[data-testid=login]").click()
    wait_for(browser, lambda b: b.current_url.endswith("/agent"), message="not back on /agent")
    wait_for(browser, lambda b: css(b, "[data-testid=connection]").text == "live",
             message="the desk did not connect")


def test_an_agent_answers_a_browser_call_in_the_browser(server, voices, tmp_path):
    from selenium.webdriver.common.by import By

    caller_wav = fake_microphone(voices, [(8.0, "I want to talk to a person."),
                                          (14.0, "Hi, my headphones are late.")],
                                 tmp_path / "caller.wav")
    agent_wav = fake_microphone(voices, [(5.0, "Hello, this is Alex from Brightline. "
                                               "How can I help?")],
                                tmp_path / "agent.wav", voice="espeak")
    with browser_with_microphone(agent_wav) as desk, \
            browser_with_microphone(caller_wav) as caller:
        sign_in_to_the_desk(desk, server.base_url)
        call_id = start_call(caller, server.base_url)

        mine = f'[data-testid=handoff][data-call-id="{call_id}"]'
        wait_for(desk, lambda b: b.find_elements(By.CSS_SELECTOR, mine), timeout=40,
                 message="no handoff for the browser call on the desk")[0].click()
        assert "person" in css(desk, "[data-testid=transcript]").text.lower()
        css(desk, "[data-testid=accept]").click()
        answer = wait_for(desk, lambda b: (lambda el: el if el.is_displayed() and el.is_enabled()
                                           else None)(css(b, "[data-testid=answer-in-browser]")),
                          message="no 'Answer in browser' after accepting")
        answer.click()
        wait_for(desk, lambda b: css(b, "[data-testid=agent-call-state]").text == "connected",
                 message="the agent's browser did not connect: "
                 + css(desk, "[data-testid=agent-call-error]").text)
        wait_for(desk, lambda b: "connected" in css(b, "[data-testid=status]").text,
                 message="the handoff did not become connected")

        # The caller hears the agent: the agent's words are captioned on the caller's page.
        wait_for(caller, lambda b: any(AGENT_WORDS.search(line.lower())
                                       for line in captions(b, "agent")),
                 timeout=40, message="no caption of the agent's words on the caller's page")
        assert "our team" in css(caller, "[data-testid=detail]").text
        # The caller's words after pick-up are still transcribed, as the caller's.
        wait_for(caller, lambda b: any("headphones" in line.lower() or "late" in line.lower()
                                       for line in captions(b, "caller")),
                 timeout=60, message="the caller's words after pick-up were not captioned")
        wait_for(desk, lambda b: "agent" in css(b, "[data-testid=transcript]").text,
                 message="the agent's turn is not in the desk's transcript")
        assert peak_level(desk, "caller-level") > 0.01  # the agent hears the caller
        screenshot(caller, "webrtc-transfer-caller")
        screenshot(desk, "webrtc-transfer-agent")

        css(desk, "[data-testid=agent-hangup]").click()  # the agent ends the call for both
        wait_for(caller, state_is("ended"), timeout=20,
                 message="the caller's page did not see the call end")

    record = server.call_record(call_id, wait_s=15)
    assert record["channel"] == "webrtc" and record["outcome"] == "transferred", record["outcome"]
    types = [e["type"] for e in record["events"]]
    assert {"escalation", "handoff", "handoff_accepted", "transfer"} <= set(types), types
    transfer_at = next(e["at_ms"] for e in record["events"] if e["type"] == "transfer")
    agent_turns = [t for t in record["turns"] if t["speaker"] == "agent"]
    assert any(AGENT_WORDS.search(t["text"].lower()) for t in agent_turns), agent_turns
    assert all(t.get("after_transfer") for t in agent_turns), agent_turns
    caller_words = " ".join(t["text"] for t in record["turns"] if t["speaker"] == "caller")
    assert "person" in caller_words.lower() and "headphones" in caller_words.lower(), caller_words
    # The assistant left the call: nothing it said started after the agent picked up.
    assert all(t["start_ms"] < transfer_at for t in record["turns"]
               if t["speaker"] == "assistant"), record["turns"]
    # The caller heard the agent: the agent's voice is on the recording's far-end track
    # (what the caller was sent), where the agent's turns are.
    frames = recording(server, call_id)
    for turn in agent_turns:
        part = frames[turn["start_ms"] * 8:turn["end_ms"] * 8, 1].astype(np.float64)
        assert np.sqrt(np.mean(part ** 2)) > 300, turn
    (handoff,) = [h for h in server.get_json("/api/handoffs")["handoffs"]  # type: ignore[index]
                  if h["call_id"] == call_id]
    assert handoff["status"] == "connected" and handoff["accepted_by"] == ADMIN_USER
    assert any(t["speaker"] == "agent" for t in handoff["transcript"])
