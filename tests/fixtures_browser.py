"""A real Chromium (Debian's, driven by Playwright) and a logged-in page (a pytest plugin: see conftest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures_live_server import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TIMEOUT = 3000  # ms: "within a second" plus slack for a loaded 2-core CI machine


# Uncaught script errors of every page the tests open: a test fails on one, whatever it asserts itself.
SCRIPT_ERRORS: list[str] = []


def watch_script_errors(page):
    page.on("pageerror", lambda error: SCRIPT_ERRORS.append(f"{page.url}: {error}"))
    return page


@pytest.fixture(autouse=True)
def no_script_errors():
    SCRIPT_ERRORS.clear()
    yield
    errors, SCRIPT_ERRORS[:] = list(SCRIPT_ERRORS), []
    assert not errors, "uncaught script errors:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


def logged_in_page(browser, server, username="moderator", viewport=(1400, 900), scheme="light"):
    """A new browser context (its own cookies) logged in through the real login form."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=scheme)
    page = watch_script_errors(context.new_page())
    page.set_default_timeout(TIMEOUT * 3)
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    return page
