"""An annotator's path through the real UI: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import time

import pytest
from conftest import _loud

from ilf.labelstudio.sync import build_tasks, pull, push
from ilf.records import Feedback, Sample, read_records

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        _loud(f"PLAYWRIGHT IS NOT INSTALLED; the browser test is SKIPPED: {err}")
        pytest.skip("playwright is not installed")
    if not shutil.which("chromium"):
        _loud("CHROMIUM IS NOT INSTALLED (apt-get install chromium); the browser test is SKIPPED")
        pytest.skip("chromium is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def test_annotator_writes_a_critique_and_rating_in_the_browser(browser, label_studio, ls_client, project_title, tmp_path) -> None:
    sample = Sample(
        id="b1",
        inputs={"title": "Lost keys", "post": "I lost my keys at the gym and found them in my bag."},
        initial_output="Someone lost something.",
    )
    result = push(ls_client, project_title, "feedback", build_tasks("feedback", [sample]))
    (task,) = ls_client.export_tasks(result.project_id)

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{label_studio['url']}/user/login/")
    page.fill("#email", label_studio["creds"].username)
    page.fill("#password", label_studio["creds"].password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)

    page.goto(f"{label_studio['url']}/projects/{result.project_id}/data?task={task['id']}")
    critique = "Say that the keys were in the bag all along; 'something' is too vague."
    box = page.locator("textarea[name=feedback]")
    box.wait_for(timeout=60_000)
    assert "Someone lost something." in page.content()  # the annotator sees the model output
    box.fill(critique)
    page.locator(".ant-rate-star").nth(3).click()  # four stars
    page.locator("[data-testid=bottombar-submit-button]").click()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ls_client.export_tasks(result.project_id)[0]["annotations"]:
        time.sleep(0.5)
    page.screenshot(path=str(tmp_path / "submitted.png"))
    page.close()

    pulled = pull(ls_client, project_title, tmp_path / "feedback.jsonl")
    assert pulled.counts.new == 1
    (feedback,) = read_records(tmp_path / "feedback.jsonl", Feedback)
    assert (feedback.sample_id, feedback.text, feedback.rating, feedback.annotator) == ("b1", critique, 4.0, label_studio["creds"].username)
    assert feedback.lead_time is not None and feedback.lead_time > 0
