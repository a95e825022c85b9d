"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium against pytest-django's live
server. Without the browser these tests skip locally — and fail in CI (``CI=true``), where .ci/run installs it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW_WIDTH, WINDOW_HEIGHT = 1400, 1000
SCREENSHOT_MAXIMUM_HEIGHT = 3000  # a long page (Redoc's) is cut there rather than rendered whole


def browser_missing() -> str:
    """Why no browser can run here (empty when both programs are present)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (Path(path).is_file() and os.access(path, os.X_OK))]
    if not missing:
        return ""
    return f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver (apt-get install)"


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    """Where each page's screenshot goes: ``BROWSER_SCREENSHOTS_DIR`` (a CI artefact), else a fresh temporary dir."""
    configured = os.environ.get("BROWSER_SCREENSHOTS_DIR")
    directory = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="itdo-erp-screenshots-"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser(screenshots_dir: Path) -> Iterator[WebDriver]:
    reason = browser_missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"The browser tests must run in CI: {reason}.")
        pytest.skip(reason)
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW_WIDTH},{WINDOW_HEIGHT}",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations, failed loads
    user_data = tempfile.mkdtemp(prefix="itdo-erp-chromium-")
    options.add_argument(f"--user-data-dir={user_data}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(WINDOW_WIDTH, WINDOW_HEIGHT)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(user_data, ignore_errors=True)


def screenshot(browser: WebDriver, directory: Path, name: str) -> Path:
    """The page (as tall as its content, up to ``SCREENSHOT_MAXIMUM_HEIGHT``) saved as ``<name>.png``."""
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(WINDOW_WIDTH, min(max(WINDOW_HEIGHT, height + 120), SCREENSHOT_MAXIMUM_HEIGHT))
    path = directory / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(WINDOW_WIDTH, WINDOW_HEIGHT)
    return path


def console_errors(browser: WebDriver) -> list[str]:
    """The console's errors since the last call (a blocked image, a 404, a script error)."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
