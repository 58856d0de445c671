"""The code_feedback template: a program highlighted with its test results, on the real server and in Chromium."""

from __future__ import annotations

import html
import re
import sys
import time
from pathlib import Path

from test_labelstudio_browser import logged_in, screenshot

from ilf.cli import main
from ilf.labelstudio.client import template_config
from ilf.labelstudio.code import highlight_python
from ilf.labelstudio.sync import build_tasks, pull, push
from ilf.records import Feedback, Output, Sample, read_records, write_records

PROMPT = 'def double(x):\n    """Twice x, for x < 10 & x > -10."""\n'
TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"
DOUBLE = Sample(
    id="HumanEval/900", inputs={"prompt": PROMPT}, references=["    return 2 * x\n"], extra={"test": TEST, "entry_point": "double"}
)
WRONG = "    # add instead of multiply\n    return x + 2\n"


def test_the_highlighter_escapes_everything_and_marks_tokens() -> None:
    source = '\ndef f(s):\n    """a <b> & \'c\'."""\n    return len(s) + 0x1F  # say "<hi>"\nx = "unclosed <\n'
    marked = highlight_python(source)
    assert html.unescape(re.sub(r"</?span[^>]*>", "", marked)) == source  # every character kept, blank first line too
    assert "<b>" not in marked and "&lt;hi&gt;" in marked
    assert '<span class="tok-k">def</span>' in marked and '<span class="tok-nf">f</span>' in marked
    assert '<span class="tok-nb">len</span>' in marked and '<span class="tok-mh">0x1F</span>' in marked
    assert '<span class="tok-c1"># say "&lt;hi&gt;"</span>' in marked
    assert '<span class="tok-s2">"unclosed &lt;</span>' in marked  # broken code still highlights
    for token in ("tok-k", "tok-nf", "tok-nb", "tok-mh", "tok-c1", "tok-s2", "tok-sd"):
        assert f".ilf-code .{token}" in template_config("code_feedback")  # the template colours it


def test_tasks_carry_the_program_and_the_sandbox_s_verdict_or_the_recorded_one() -> None:
    outputs = [
        Output(DOUBLE.id, WRONG, system="policy"),
        Output(DOUBLE.id, "    return 2 * x\n", system="good"),
        Output(
            DOUBLE.id, "    return 2 * x\n", system="scored", extra={"execution": {"status": "timeout", "error": "timed out after 5 s"}}
        ),
    ]
    tasks = {t["data"]["system"]: t["data"] for t in build_tasks("code_feedback", [DOUBLE], outputs, model_version="m1")}
    wrong = tasks["policy"]
    assert wrong["ilf_key"] == "HumanEval/900::policy" and wrong["output"] == WRONG
    assert (wrong["test_status"], wrong["test_error"], wrong["failing_test"]) == ("failed", "AssertionError", "assert candidate(-1) == -2")
    assert '<pre class="ilf-code"><code class="language-python">' in wrong["program_html"]
    assert "x &lt; 10 &amp; x &gt; -10" in wrong["program_html"]  # the prompt is part of the program, escaped
    assert "<b>FAILED</b>: AssertionError" in wrong["tests_html"]
    assert "First failing test:assert candidate(-1) == -2" in re.sub(r"<[^>]+>", "", wrong["tests_html"])
    assert tasks["good"]["test_status"] == "passed" and "PASSED" in tasks["good"]["tests_html"]
    assert tasks["scored"]["test_status"] == "timeout" and "TIMED OUT" in tasks["scored"]["tests_html"]  # not run again
    assert '<TextArea name="feedback" toName="program"' in template_config("code_feedback")


def test_code_feedback_round_trip_on_the_server(ls_client, project_title, tmp_path: Path, label_studio) -> None:
    samples, outputs = tmp_path / "samples.jsonl", tmp_path / "outputs.jsonl"
    write_records(samples, [DOUBLE])
    write_records(outputs, [Output(DOUBLE.id, WRONG, system="policy")])
    url = ["--url", label_studio["url"], "--data-dir", str(label_studio["data_dir"])]
    push_cli = ["labelstudio", "push", str(samples), "--outputs", str(outputs), "--template", "code_feedback", "--project", project_title]
    assert main([*push_cli, *url]) == 0
    assert main([*push_cli, *url]) == 0  # idempotent
    project = ls_client.find_project(project_title)
    assert ls_client.project_template(project) == "code_feedback"
    (task,) = ls_client.export_tasks(project.id)
    assert task["data"]["failing_test"] == "assert candidate(-1) == -2"
    critique = "It adds 2 instead of doubling: return 2 * x."
    ls_client.sdk.annotations.create(
        id=task["id"],
        result=[
            {"from_name": "feedback", "to_name": "program", "type": "textarea", "value": {"text": [critique]}},
            {"from_name": "feedback_class", "to_name": "program", "type": "choices", "value": {"choices": ["wrong logic"]}},
        ],
    )
    out = tmp_path / "feedback.jsonl"
    assert main(["labelstudio", "pull", "--project", project_title, "--out", str(out), *url]) == 0
    (feedback,) = read_records(out, Feedback)
    assert (feedback.sample_id, feedback.text, feedback.output, feedback.feedback_class) == (DOUBLE.id, critique, WRONG, "wrong logic")
    assert feedback.source == f"labelstudio:{project_title}" and feedback.extra["system"] == "policy"


def test_annotator_critiques_a_highlighted_program_in_the_browser(browser, label_studio, ls_client, project_title, tmp_path) -> None:  # noqa: F811
    result = push(ls_client, project_title, "code_feedback", build_tasks("code_feedback", [DOUBLE], [Output(DOUBLE.id, WRONG)]))
    (task,) = ls_client.export_tasks(result.project_id)

    page = logged_in(browser, label_studio)

    page.goto(f"{label_studio['url']}/projects/{result.project_id}/data?task={task['id']}")
    box = page.locator("textarea[name=feedback]")
    box.wait_for(timeout=60_000)
    # The program is in a code block, monospaced, its keywords coloured by the template's style.
    block = page.locator("pre.ilf-code").first
    block.wait_for(timeout=30_000)
    assert "return x + 2" in block.inner_text() and "# add instead of multiply" in block.inner_text()
    style = block.evaluate("e => { const s = getComputedStyle(e); return [s.fontFamily, s.whiteSpace] }")
    assert "mono" in style[0].lower() and style[1] == "pre"
    problem = page.locator("pre.ilf-problem").first
    assert '    """Twice x, for x < 10 & x > -10."""' in problem.inner_text()  # indentation kept, escaped text shown as text
    keyword = page.locator("pre.ilf-code .tok-k", has_text="return").first
    assert keyword.evaluate("e => getComputedStyle(e).color") == "rgb(207, 34, 46)"
    # The test results: failed, and the failing assertion.
    assert page.locator(".ilf-failed").first.inner_text().startswith("FAILED")
    assert "assert candidate(-1) == -2" in page.locator("pre.ilf-code").nth(1).inner_text()
    assert page.locator(".ilf-tests").count() == 1
    page.screenshot(path=str(tmp_path / "code_feedback.png"), full_page=True)

    critique = "Adding 2 is not doubling; return 2 * x."
    box.fill(critique)
    screenshot(page, "code_feedback", tmp_path)
    page.locator("[data-testid=bottombar-submit-button]").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ls_client.export_tasks(result.project_id)[0]["annotations"]:
        time.sleep(0.5)
    page.close()

    pulled = pull(ls_client, project_title, tmp_path / "feedback.jsonl")
    assert pulled.counts.new == 1 and pulled.template == "code_feedback"
    (feedback,) = read_records(tmp_path / "feedback.jsonl", Feedback)
    assert (feedback.sample_id, feedback.text, feedback.output, feedback.annotator) == (
        DOUBLE.id,
        critique,
        WRONG,
        label_studio["creds"].username,
    )


def test_a_code_feedback_push_runs_programs_in_the_configs_sandbox(
    ls_client, project_title, tmp_path: Path, label_studio, monkeypatch, capsys
) -> None:
    samples, outputs = tmp_path / "samples.jsonl", tmp_path / "outputs.jsonl"
    write_records(samples, [DOUBLE])
    write_records(outputs, [Output(DOUBLE.id, "    while True:\n        pass\n", system="policy")])
    url = ["--url", label_studio["url"], "--data-dir", str(label_studio["data_dir"])]
    push_cli = ["labelstudio", "push", str(samples), "--outputs", str(outputs), "--template", "code_feedback", "--project", project_title]
    with monkeypatch.context() as without_bwrap:
        without_bwrap.setenv("PATH", str(Path(sys.executable).parent))
        assert main([*push_cli, *url, "--set", "task.name=code"]) == 2
    assert "apt-get install bubblewrap" in capsys.readouterr().err
    assert ls_client.find_project(project_title) is None  # refused before anything was pushed
    assert main([*push_cli, *url, "--set", "task.name=code", "--set", "task.options={timeout: 1}"]) == 0
    (task,) = ls_client.export_tasks(ls_client.find_project(project_title).id)
    assert (task["data"]["test_status"], task["data"]["test_error"]) == ("timeout", "timed out after 1 s")  # the config's limit, not 10 s
