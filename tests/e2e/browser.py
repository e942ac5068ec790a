"""Headless Chromium from Debian (``chromium`` + ``chromium-driver``), driven by selenium."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(f"none of {names} is installed (scripts/test installs chromium and chromium-driver)")


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A headless Chromium session; the driver is Debian's, never downloaded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900",
                     # WebRTC on the loopback only (the service offers 127.0.0.1 too).
                     "--allow-loopback-in-peer-connection", *extra_args):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(_binary("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], *, timeout: float = 30.0,
             message: str = "") -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def screenshot(driver: Any, name: str) -> None:
    """Keep a screenshot as a test artifact (tests/artifacts/NAME.png)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
