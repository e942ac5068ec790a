"""The review pages in headless Chromium: sign in, filter and search, open a call, play it
(the transcript follows), label a turn; a screenshot is kept as an artifact."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.browser import chromium, screenshot, wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USER
from voice.caller import CallerTurn, place_call

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_a_supervisor_finds_plays_and_labels_a_call(server, voices):
    from selenium.webdriver.common.by import By

    result = await place_call(server.ws_url, [
        CallerTurn(wav=voices.say("How much does express shipping cost?")),
    ], final_listen_s=8.0)
    await asyncio.sleep(2.0)  # the recording is written just after the call

    def css(browser, selector):
        return browser.find_element(By.CSS_SELECTOR, selector)

    with chromium("--autoplay-policy=no-user-gesture-required") as browser:
        browser.get(server.base_url + "/review")
        wait_for(browser, lambda b: "/login" in b.current_url, message="no login page")
        css(browser, "[data-testid=username]").send_keys(ADMIN_USER)
        css(browser, "[data-testid=password]").send_keys(ADMIN_PASSWORD)
        css(browser, "[data-testid=login]").click()
        wait_for(browser, lambda b: b.current_url.rstrip("/").endswith("/review"),
                 message="a supervisor lands on /review")

        css(browser, "[data-testid=search]").send_keys("express")
        css(browser, "[data-testid=apply]").click()
        mine = f'[data-testid=call-row] a[href="/review/calls/{result.call_sid}"]'
        wait_for(browser, lambda b: "q=express" in b.current_url
                 and b.find_elements(By.CSS_SELECTOR, mine), message="the search missed the call")
        assert all("express" in row.text.lower() or row.text for row in
                   browser.find_elements(By.CSS_SELECTOR, "[data-testid=call-row]"))
        css(browser, mine).click()

        wait_for(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "[data-testid=turn]"),
                 message="no transcript")
        text = css(browser, "[data-testid=transcript]").text.lower()
        assert "express" in text and "12.99" in text, text
        assert css(browser, "[data-testid=latency-chart]") is not None
        assert css(browser, "[data-testid=sentiment-chart]") is not None

        # Play: the audio loads, and the transcript follows where it plays.
        wait_for(browser, lambda b: b.execute_script(
            "return document.querySelector('[data-testid=player]').readyState >= 1"),
            message="the recording did not load")
        caller_row = browser.find_element(By.CSS_SELECTOR, "[data-testid=turn].caller")
        start = int(caller_row.get_attribute("data-start"))
        browser.execute_script(
            "const p = document.querySelector('[data-testid=player]');"
            "p.currentTime = arguments[0]; p.play().catch(() => {});", start / 1000 + 0.2)
        wait_for(browser, lambda b: "playing" in b.find_element(
            By.CSS_SELECTOR, "[data-testid=turn].caller").get_attribute("class"),
            message="the transcript did not follow the audio")

        # Label: the caller turn's intent, and the answer marked right.
        intent = caller_row.find_element(By.CSS_SELECTOR, "[data-testid=intent-label]")
        intent.send_keys("shipping")
        wait_for(browser, lambda b: "saved" in caller_row.find_element(
            By.CSS_SELECTOR, "[data-testid=label-status]").text, message="intent label not saved")
        answer = browser.find_elements(By.CSS_SELECTOR, "[data-testid=turn].assistant")[-1]
        answer.find_element(By.CSS_SELECTOR, "[data-testid=answer-right]").click()
        wait_for(browser, lambda b: "saved" in answer.find_element(
            By.CSS_SELECTOR, "[data-testid=label-status]").text, message="answer label not saved")
        screenshot(browser, "review-call")

    labels = server.get_json(f"/api/labels?call_id={result.call_sid}")["labels"]  # type: ignore[index]
    assert {(label["kind"], label["value"], label["by"]) for label in labels} == {
        ("intent", "shipping", ADMIN_USER), ("answer", "right", ADMIN_USER)}
