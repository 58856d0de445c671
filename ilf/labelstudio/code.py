"""Tasks of the ``code_feedback`` template: a program to critique, highlighted, with its test results.

Label Studio's ``<Text>`` shows plain text, so the program travels as HTML for a ``<HyperText>``:
the prompt and the completion, escaped, in a ``<pre><code>`` block whose tokens Pygments wraps in
``<span class="tok-...">`` (``tok-k`` keywords, ``tok-s2`` strings, ``tok-c1`` comments, ...),
coloured by the template's ``<Style>``.

The test results come from each output's ``extra["execution"]`` when the outputs were already
scored (``ilf evaluate --outputs-out``, a run's ``eval_outputs.jsonl``), else from running the
program in the sandbox when the tasks are built: passed or not, the error, and the assertion
that failed. The problem (the prompt) is shown as it is, monospaced, above the program. The
plain fields (``input_text``, ``output``, ``test_status``, ``test_error``, ``failing_test``) ride
along for the Data Manager's columns and filters; the pull reads the ``feedback`` text area into
Feedback records as for the ``feedback`` template.
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

from ilf.execution.programs import PROMPT_KEY, has_tests, result_record, run_completions
from ilf.execution.sandbox import Sandbox
from ilf.records import Output, Sample, format_inputs


def highlight_python(source: str) -> str:
    """``source`` as escaped HTML, its tokens in Pygments' ``<span class="tok-...">`` (no ``<pre>``).

    Pygments' lexer never fails on broken code (a model's unfinished string or bracket), and the
    leading and trailing newlines are kept, so the block shows the program as it runs."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(stripnl=False, ensurenl=False), HtmlFormatter(nowrap=True, classprefix="tok-"))


def code_block(source: str) -> str:
    return f'<pre class="ilf-code"><code class="language-python">{highlight_python(source)}</code></pre>'


def results_html(execution: dict[str, Any]) -> str:
    """The verdict as HTML: PASSED, or what failed, the failing assertion and where it failed."""
    status = execution.get("status") or "unknown"
    if status == "passed":
        return '<div class="ilf-tests ilf-passed"><b>PASSED</b>: the program passes all of its unit tests.</div>'
    label = {"failed": "FAILED", "timeout": "TIMED OUT", "memory_error": "OUT OF MEMORY"}.get(status, status.upper())
    rows = [f'<div class="ilf-tests ilf-failed"><b>{html.escape(label)}</b>: {html.escape(execution.get("error") or "")}</div>']
    failing = failing_test(execution)
    if failing:
        rows.append(f'<div class="ilf-label">First failing test:</div>{code_block(failing)}')
    line = execution.get("line") or ""
    if line and line != failing:
        rows.append(f'<div class="ilf-label">Raised at:</div>{code_block(line)}')
    return "".join(rows)


def failing_test(execution: dict[str, Any]) -> str:
    """The test statement that failed: ``test`` when the error came from inside the function,
    else the failing line itself when it is an assertion of the tests."""
    if execution.get("test"):
        return execution["test"]
    line = execution.get("line") or ""
    return line if line.startswith("assert") else ""


def code_feedback_tasks(
    samples: list[Sample],
    outputs: list[Output] | None,
    systems: list[str] | None,
    model_version: str | None,
    sandbox: Sandbox | None = None,
) -> list[dict[str, Any]]:
    """One task per (sample, system) with a program to critique; outputs default to each sample's initial output."""
    by_sample: dict[str, dict[str, Output]] = defaultdict(dict)
    if outputs is None:
        for sample in samples:
            if sample.initial_output:
                by_sample[sample.id]["initial"] = Output(sample_id=sample.id, text=sample.initial_output, system="initial")
    else:
        for output in outputs:
            by_sample[output.sample_id][output.system] = output
    chosen: list[tuple[Sample, Output]] = []
    for sample in samples:
        if not has_tests(sample):
            raise ValueError(
                f"sample {sample.id}: the code_feedback template shows test results, so a sample needs inputs.{PROMPT_KEY}, "
                "extra.test and extra.entry_point (the humaneval, mbpp and ilf_code loaders give them)"
            )
        available = by_sample.get(sample.id, {})
        for system in [s for s in (systems or sorted(available)) if s in available]:
            chosen.append((sample, available[system]))
    verdicts = _verdicts(chosen, sandbox)
    tasks = []
    for (sample, output), execution in zip(chosen, verdicts):
        several = systems or len(by_sample[sample.id]) > 1
        prompt = sample.inputs[PROMPT_KEY]
        task: dict[str, Any] = {
            "data": {
                "ilf_key": f"{sample.id}::{output.system}" if several else sample.id,
                "sample_id": sample.id,
                "input_text": format_inputs(sample.inputs),
                "output": output.text,
                "system": output.system,
                "problem_html": f'<pre class="ilf-problem">{html.escape(prompt)}</pre>',
                "program_html": code_block(prompt + output.text),
                "tests_html": results_html(execution),
                "test_status": execution.get("status"),
                "test_error": execution.get("error") or "",
                "failing_test": failing_test(execution),
            }
        }
        if model_version:
            task["predictions"] = [{"model_version": model_version, "result": []}]
        tasks.append(task)
    return tasks


def _verdicts(chosen: list[tuple[Sample, Output]], sandbox: Sandbox | None) -> list[dict[str, Any]]:
    """Each output's recorded verdict, else a fresh run of its program (all of them at once)."""
    from ilf.execution.programs import default_sandbox

    verdicts: list[dict[str, Any] | None] = [
        output.extra["execution"] if isinstance(output.extra.get("execution"), dict) else None for _, output in chosen
    ]
    missing = [i for i, v in enumerate(verdicts) if v is None]
    if missing:
        results = run_completions(sandbox or default_sandbox(), [(chosen[i][0], chosen[i][1].text) for i in missing])
        for i, result in zip(missing, results):
            verdicts[i] = result_record(result)
    return [v or {} for v in verdicts]
