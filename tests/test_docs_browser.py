"""The docs page as a person sees it: headless Chromium opens /api/docs from a real gunicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.processes import REPO_ROOT, gunicorn_server, migrated_sqlite_environment
from tests.services import service_missing

pytestmark = pytest.mark.slow

ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The flags the CI machine needs: no sandbox as root, no GPU, and no calls home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--window-size=1280,2000",
)
RENDER_DEADLINE_S = 30


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[str]:
    environment = migrated_sqlite_environment(tmp_path)
    with gunicorn_server(environment, tmp_path / "gunicorn.log", ready_path="/api/docs") as server:
        yield server.base_url


@pytest.fixture
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        service_missing("Chromium", FileNotFoundError(f"{CHROMIUM} or {CHROMEDRIVER}"))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(RENDER_DEADLINE_S)
    try:
        yield driver
    finally:
        driver.quit()


def documented_operations(base_url: str) -> set[tuple[str, str]]:
    document = requests.get(f"{base_url}/api/openapi.json", timeout=10).json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


def test_docs_page_shows_every_operation_offline_under_its_own_csp(docs_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = documented_operations(docs_server)
    browser.get(f"{docs_server}/api/docs")

    def rendered_operations(driver) -> set[tuple[str, str]] | bool:
        blocks = driver.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary")
        shown = {
            (
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip(),
                block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
                    "data-path"
                ),
            )
            for block in blocks
        }
        return shown if shown >= expected else False

    shown = WebDriverWait(browser, RENDER_DEADLINE_S, poll_frequency=0.2).until(rendered_operations)
    # Open every operation, so the detailed views (schemas, examples) are rendered under the CSP.
    for summary in browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary"):
        summary.click()
    WebDriverWait(browser, RENDER_DEADLINE_S, poll_frequency=0.2).until(
        lambda driver: (
            len(driver.find_elements(By.CSS_SELECTOR, ".opblock .opblock-body")) == len(expected)
        )
    )
    browser.execute_script("window.scrollTo(0, 0)")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS_DIR / "api-docs.png"))

    assert shown == expected
    assert "Steadfast" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    # No Content-Security-Policy violation and no script error in the console.
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]
    assert problems == []
    # Every resource came from the app itself (or is inline data): it works with no internet.
    origin = urlsplit(docs_server).netloc
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    fetched = [url for url in loaded if not url.startswith("data:")]
    assert fetched and all(urlsplit(url).netloc == origin for url in fetched), fetched
