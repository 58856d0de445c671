"""Code generation from language feedback (Chen et al. 2023, "Improving Code Generation by
Training with Natural Language Feedback", arXiv 2303.16749).

The prompt is the problem: its text and the function's signature (HumanEval's and the ILF/MBPP
prompts end right after ``def ...:`` and the docstring). A completion is the body that follows
it; generation is cut where the function ends. A refinement prompt shows the old program, the
feedback on it and, when ``include_test_output`` is set, how it failed its tests, then repeats the
prompt, so a refinement is again a body. The layout (OLD CODE / FEEDBACK / REFINEMENT) follows
the paper's refinement prompts. Programs run in the sandbox of ``ilf.execution``; the task's
options set its limits, and the execution feedback source, the unit_tests selector and the
pass_at_k metric use the task's sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ilf.config import option
from ilf.execution.programs import PROMPT_KEY, run_training_tests
from ilf.execution.sandbox import DEFAULT_MAX_ERROR_SHARE, ExecutionResult, Limits, Sandbox, check_isolation
from ilf.records import Sample
from ilf.registry import TASKS
from ilf.tasks.base import TemplateTask

# Tokens and fences that end a model's answer in text it decodes past its end.
END_MARKERS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<|EOT|>", "</s>", "<eos>", "<|file_separator|>")

_JUDGE_CONTEXT = "OLD CODE:\n{prompt}{output}\n\nFEEDBACK:\n{feedback}\n\nNEW CODE:\n{prompt}{candidate}\n\n"


def cut_at_end_markers(text: str) -> str:
    for marker in END_MARKERS:
        found = text.find(marker)
        if found != -1:
            text = text[:found]
    return text


def function_body(text: str) -> str:
    """The body a generation continues the prompt with: up to the first line that starts a new
    top-level statement (a non-indented, non-empty line: ``def``, ``class``, ``if __name__``,
    ``print(``, a comment, a code fence) or an end-of-text marker. The first line counts as a
    line of its own, as prompts end with a newline. '' when no body is left."""
    kept = []
    for line in cut_at_end_markers(text).splitlines():
        if line.strip() and not line[0].isspace():
            break
        kept.append(line)
    body = "\n".join(kept).rstrip()
    return body if body.strip() else ""


@dataclass
class CodeTask(TemplateTask):
    initial_template: str = option(
        "{prompt}", "Prompt for a program: the input fields by name; {prompt} is the problem up to the function's signature and docstring."
    )
    refine_template: str = option(
        "OLD CODE:\n{old_code}\n\nFEEDBACK:\n{feedback}{test_output}\n\nREFINEMENT:\n{prompt}",
        "Prompt for a refinement: {old_code} (the prompt and the program critiqued), {feedback}, {test_output} (how it "
        "failed, with include_test_output), {output} (the body alone), and {prompt} last, so a refinement is again a body.",
    )
    refine_without_feedback_template: str = option(
        "OLD CODE:\n{old_code}{test_output}\n\nREFINEMENT:\n{prompt}",
        "The same without feedback (refine.use_feedback: false): {old_code}, {test_output}, {output} and {prompt}.",
    )
    include_test_output: bool = option(False, "Show in the refinement prompt how the old program failed its tests (it is run first).")
    timeout: float = option(10.0, "Wall-clock seconds one program may run; then its whole process group is killed.")
    memory_mb: int = option(1024, "Memory one program may use, in MiB.")
    processes: int = option(16, "Processes one program may have at once (a fork bomb stops there).")
    isolation: str = option(
        "bwrap",
        "bwrap: every program inside bubblewrap, and no run where that cannot be had; unsafe_process: plain limited "
        "processes, which can read your files and reach the network.",
    )
    workers: int | None = option(None, "Programs run at once; null: one per CPU core.")
    cache_dir: str | None = option(
        None, "Folder keeping each program's verdict (by hash of program, limits and tests), so it runs once across runs; null: none."
    )
    executor: str = option(
        "warm", "warm: pre-started sandboxed interpreters fork a child per program; spawn: a sandbox and interpreter per program (slower)."
    )
    max_sandbox_errors: float = option(
        DEFAULT_MAX_ERROR_SHARE,
        "Share of programs that may end in a sandbox error before the run stops (a broken sandbox must not read as failing programs).",
    )
    stop_at_newline: bool = False
    drop_unfinished_sentence: bool = False
    training_tests: str = option(
        "all",
        "all: execution feedback, the unit_tests selector and online rewards run every test of a sample; visible: only its "
        "extra.visible_test (pass@k runs all).",
    )

    def __post_init__(self) -> None:
        self.isolation = check_isolation(self.isolation)
        if self.training_tests not in ("all", "visible"):
            raise ValueError(f"task.options.training_tests: all or visible, got {self.training_tests!r}")
        if not 0 <= self.max_sandbox_errors <= 1:
            raise ValueError(f"task.options.max_sandbox_errors: a share of the programs in [0, 1], got {self.max_sandbox_errors}")
        self.limits = Limits(timeout=self.timeout, memory_mb=self.memory_mb, processes=self.processes)
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(
                self.limits,
                isolation=self.isolation,
                workers=self.workers,
                cache_dir=self.cache_dir,
                executor=self.executor,
                max_error_share=self.max_sandbox_errors,
            )
        return self._sandbox

    def run_tests(self, pairs: list[tuple[Sample, str]]) -> list[ExecutionResult]:
        """Each (sample, completion) run against the tests the training side may see (``training_tests``)."""
        return run_training_tests(self, pairs)

    def reward(self, pairs: list[tuple[Sample, str]]) -> tuple[list[float], str]:
        """1.0 for a program that passes its sample's tests, else 0.0 (online methods' reward)."""
        return [1.0 if r.passed else 0.0 for r in self.run_tests(pairs)], "executions"

    def refine_prompt(self, sample: Sample, output: str, feedback: str | None) -> str:
        old_code = sample.inputs.get(PROMPT_KEY, "") + output
        test_output = ""
        if self.include_test_output:
            (result,) = self.run_tests([(sample, output)])
            test_output = f"\n\nTEST RESULT:\n{result.summary()}"
        template, name = (
            (self.refine_template, "refine_template")
            if feedback is not None
            else (self.refine_without_feedback_template, "refine_without_feedback_template")
        )
        more: dict[str, Any] = {"old_code": old_code.rstrip(), "output": output, "test_output": test_output}
        if feedback is not None:
            more["feedback"] = feedback
        return self._fill(template, name, sample, **more)

    def judge_variants(self) -> list[tuple[str, str, str]]:
        return [
            (_JUDGE_CONTEXT + "Question: Does the new code fix what the feedback points out? Answer Yes or No.\nAnswer:", " Yes", " No"),
            (_JUDGE_CONTEXT + "Statement: the new code does what the feedback asks. True or False?\nAnswer:", " True", " False"),
            (_JUDGE_CONTEXT + "Question: Is the new code correct where the old code was wrong? Answer Yes or No.\nAnswer:", " Yes", " No"),
        ]

    def postprocess(self, text: str) -> str:
        return function_body(text)

    def fallback(self, text: str) -> str:
        return cut_at_end_markers(text).rstrip()

    def completion(self, text: str) -> str:
        """The body as it follows the prompt: its indentation kept, leading blank lines dropped."""
        lines = text.replace("\r\n", "\n").split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        return "\n".join(lines).rstrip() + "\n"


TASKS.register(
    "code",
    help="Python functions from a prompt ending in a signature (HumanEval, MBPP, ILF-for-code): bodies cut at the "
    "function's end, refinement prompts with the old code and feedback; options set the sandbox's limits.",
)(CodeTask.from_options)
