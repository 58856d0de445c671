"""An annotator's path through the real UI: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import REPO

from ilf.labelstudio.sync import build_tasks, pull, push
from ilf.records import Candidate, Comparison, Feedback, Output, Refinements, Sample, Selection, read_records


def logged_in(browser, label_studio):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{label_studio['url']}/user/login/")
    page.fill("#email", label_studio["creds"].username)
    page.fill("#password", label_studio["creds"].password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
    return page


SCREENSHOTS = REPO / "docs" / "assets" / "screenshots"
MAX_SCREENSHOT_BYTES = 300_000


def screenshot(page, name: str, folder: Path) -> Path:
    """The page as the annotator sees it, into ``folder``; with ``ILF_DOCS_SCREENSHOTS=1`` also into
    the docs, in 256 colours so that each stays small: ``docs/assets/screenshots/NAME.png`` and its
    labelling area, ``NAME-crop.png``, which the pages show (linked to the full one)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("ILF_DOCS_SCREENSHOTS") == "1":
        from PIL import Image
        from test_docs_screenshots import crop_path, crop_to_labelling_area

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        full = SCREENSHOTS / f"{name}.png"
        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=256).save(full, optimize=True)
        with Image.open(full) as image:
            crop_to_labelling_area(image, full.name).save(crop_path(full), optimize=True)
        assert full.stat().st_size < MAX_SCREENSHOT_BYTES
    return path


def wait_for_annotation(ls_client, project_id: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ls_client.export_tasks(project_id)[0]["annotations"]:
        time.sleep(0.5)


def test_annotator_writes_a_critique_and_rating_in_the_browser(browser, label_studio, ls_client, project_title, tmp_path) -> None:
    sample = Sample(
        id="b1",
        inputs={"title": "Lost keys", "post": "I lost my keys at the gym and found them in my bag."},
        initial_output="Someone lost something.",
    )
    result = push(ls_client, project_title, "feedback", build_tasks("feedback", [sample]))
    (task,) = ls_client.export_tasks(result.project_id)

    page = logged_in(browser, label_studio)
    page.goto(f"{label_studio['url']}/projects/{result.project_id}/data?task={task['id']}")
    critique = "Say that the keys were in the bag all along; 'something' is too vague."
    box = page.locator("textarea[name=feedback]")
    box.wait_for(timeout=60_000)
    # the annotator sees the model output (waited for: the interface may render it after the text box)
    page.get_by_text("Someone lost something.").first.wait_for(timeout=30_000)
    box.fill(critique)
    page.locator(".ant-rate-star").nth(3).click()  # four stars
    screenshot(page, "feedback", tmp_path)
    page.locator("[data-testid=bottombar-submit-button]").click()

    wait_for_annotation(ls_client, result.project_id)
    page.screenshot(path=str(tmp_path / "submitted.png"))
    page.close()

    pulled = pull(ls_client, project_title, tmp_path / "feedback.jsonl")
    assert pulled.counts.new == 1
    (feedback,) = read_records(tmp_path / "feedback.jsonl", Feedback)
    assert (feedback.sample_id, feedback.text, feedback.rating, feedback.annotator) == ("b1", critique, 4.0, label_studio["creds"].username)
    assert feedback.lead_time is not None and feedback.lead_time > 0


def test_round_two_ideal_task_opens_with_the_models_text_which_the_annotator_edits(
    browser, label_studio, ls_client, project_title, tmp_path
) -> None:
    sample = Sample(id="b2", inputs={"title": "Lost keys", "post": "I lost my keys at the gym and found them in my bag."})
    model_text = "Someone lost keys at the gym."
    outputs = [Output(sample_id="b2", text=model_text, system="policy")]
    result = push(ls_client, project_title, "ideal", build_tasks("ideal", [sample], outputs, model_version="demo round-2"))
    (task,) = ls_client.export_tasks(result.project_id)

    page = logged_in(browser, label_studio)
    page.goto(f"{label_studio['url']}/projects/{result.project_id}/data?task={task['id']}")
    prefilled = page.locator("[data-testid=htx-textbox-content]")
    prefilled.wait_for(timeout=60_000)
    assert prefilled.inner_text().strip() == model_text  # the editor opens with the round's policy's text
    assert page.get_by_text("demo round-2").count() >= 1  # and says which model wrote it
    page.locator("[data-testid=htx-textbox-edit-button]").click()
    ideal = "Someone lost their keys at the gym; they were in the bag all along."
    editor = page.locator("[data-testid=textarea-region] textarea").first
    editor.wait_for(timeout=10_000)
    editor.fill(ideal)
    editor.press("Enter")
    screenshot(page, "ideal", tmp_path)
    page.locator("[data-testid=bottombar-submit-button]").click()
    wait_for_annotation(ls_client, result.project_id)
    page.screenshot(path=str(tmp_path / "ideal-submitted.png"))
    page.close()

    pulled = pull(ls_client, project_title, tmp_path / "ideal.jsonl")
    assert pulled.counts.new == 1
    (record,) = read_records(tmp_path / "ideal.jsonl", Output)
    assert (record.sample_id, record.text, record.system) == ("b2", ideal, "human_ideal")


def test_annotator_picks_a_refinement_in_the_browser(browser, label_studio, ls_client, project_title, tmp_path) -> None:
    sample = Sample(id="b3", inputs={"post": "I lost my keys at the gym and found them in my bag."})
    candidates = ["Keys were lost.", "Keys lost at the gym turned up in the bag.", "A gym story."]
    refinements = [Refinements(sample_id="b3", candidates=[Candidate(text=t) for t in candidates], output="Someone lost something.")]
    feedback = [Feedback(sample_id="b3", text="Say where the keys turned up.")]
    result = push(ls_client, project_title, "select", build_tasks("select", [sample], feedback=feedback, refinements=refinements))
    (task,) = ls_client.export_tasks(result.project_id)

    page = logged_in(browser, label_studio)
    page.goto(f"{label_studio['url']}/projects/{result.project_id}/data?task={task['id']}")
    choice = page.locator('input[name="Candidate 2"]')
    choice.wait_for(timeout=60_000)
    for text in ("Someone lost something.", "Say where the keys turned up.", *candidates):
        # output, feedback and every candidate on one page; on a loaded machine the texts render after the choices
        page.get_by_text(text, exact=True).first.wait_for(timeout=30_000)
    choice.check()
    screenshot(page, "select", tmp_path)
    page.locator("[data-testid=bottombar-submit-button]").click()
    wait_for_annotation(ls_client, result.project_id)
    page.screenshot(path=str(tmp_path / "select-submitted.png"))
    page.close()

    pulled = pull(ls_client, project_title, tmp_path / "selected.jsonl")
    assert pulled.counts.new == 1
    (selection,) = read_records(tmp_path / "selected.jsonl", Selection)
    assert (selection.sample_id, selection.index, selection.text, selection.extra["edited"]) == ("b3", 1, candidates[1], False)
    assert selection.extra["annotator"] == label_studio["creds"].username and selection.extra["lead_time"] > 0


def test_annotator_picks_the_better_of_two_outputs_and_sees_a_ranking_in_the_browser(
    browser, label_studio, ls_client, project_title, tmp_path
) -> None:
    sample = Sample(id="b4", inputs={"title": "Lost keys", "post": "I lost my keys at the gym and found them in my bag."})
    texts = {
        "base": "Someone lost something.",
        "ilf": "Keys lost at the gym turned up in the bag.",
        "reference": "The keys were in the bag.",
    }
    outputs = [Output(sample_id="b4", text=text, system=system) for system, text in texts.items()]
    pairwise = push(ls_client, project_title, "pairwise", build_tasks("pairwise", [sample], outputs, ["base", "ilf"]))
    (task,) = ls_client.export_tasks(pairwise.project_id)

    page = logged_in(browser, label_studio)
    page.goto(f"{label_studio['url']}/projects/{pairwise.project_id}/data?task={task['id']}")
    page.locator("[data-testid=bottombar-submit-button]").wait_for(timeout=60_000)  # the labelling editor is open
    better = page.locator(".lsf-htx-richtext", has_text=texts["ilf"]).first
    better.wait_for(timeout=30_000)
    page.locator(".lsf-htx-richtext", has_text=texts["base"]).first.wait_for(timeout=30_000)  # both outputs on one page
    better.click()
    screenshot(page, "pairwise", tmp_path)
    page.locator("[data-testid=bottombar-submit-button]").click()
    wait_for_annotation(ls_client, pairwise.project_id)

    ranking = push(ls_client, project_title + "-rank", "ranking", build_tasks("ranking", [sample], outputs))
    (task,) = ls_client.export_tasks(ranking.project_id)
    page.goto(f"{label_studio['url']}/projects/{ranking.project_id}/data?task={task['id']}")
    page.locator("[data-testid=bottombar-submit-button]").wait_for(timeout=60_000)
    for text in texts.values():  # every system's output, to be put in order
        page.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
    screenshot(page, "ranking", tmp_path)
    page.close()

    pulled = pull(ls_client, project_title, tmp_path / "comparisons.jsonl")
    assert pulled.counts.new == 1
    (comparison,) = read_records(tmp_path / "comparisons.jsonl", Comparison)
    assert (comparison.chosen, comparison.rejected) == (texts["ilf"], texts["base"])
    assert {comparison.a_system, comparison.b_system} == {"base", "ilf"}
