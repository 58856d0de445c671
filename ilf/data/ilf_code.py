"""The ILF-for-code annotations (Chen et al. 2023, "Improving Code Generation by Training with
Natural Language Feedback"): MBPP problems, a CodeGen program that failed, a person's feedback on
it and that person's refinement, published as JSONL in the paper's repository
(nyu-mll/ILF-for-code-generation, ``surge_annotations.jsonl``).

Columns: ``task_id`` (the MBPP id), ``prompt`` (problem text and the code up to the signature),
``test`` (``def check(candidate): assert ...``, some with ``from pytest import approx``),
``Feedback``, ``original_model_completion`` (the prompt followed by the critiqued body),
``completion`` (the refined body), and more that is kept in the sample's extra fields
(``unedited_annotator_completion``, ``passed``, ``worker_id``, ...). A sample's id is the
``task_id``, its initial output the original completion with the prompt removed, its reference
the refinement, its entry point the prompt's last top-level ``def``. Windows line endings in the
published text become plain newlines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.data import Dropped, SplitData, resolve_split_file, samples_from_rows, text_field
from ilf.execution.programs import last_top_level_def
from ilf.records import Feedback, RecordError, Sample, iter_jsonl
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig

MAPPED = {"task_id", "prompt", "test", "Feedback", "original_model_completion", "completion"}


def _text(row: dict[str, Any], key: str, path: Path, line: int, required: bool = False) -> str | None:
    return text_field(row, key, path, line, required, strip=False)


def convert_row(row: Any, path: Path, line: int) -> tuple[Sample, Feedback | Dropped | None]:
    if not isinstance(row, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    task_id = row.get("task_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id.strip():
        raise RecordError(path, line, "task_id", "is missing" if "task_id" not in row else "expected an integer or a non-empty string")
    prompt = _text(row, "prompt", path, line, required=True) or ""
    test = _text(row, "test", path, line, required=True) or ""
    if "def check(" not in test:
        raise RecordError(path, line, "test", "defines no check(candidate) function")
    entry_point = last_top_level_def(prompt)
    if entry_point is None:
        raise RecordError(path, line, "prompt", "defines no top-level function (def name(...):) to complete")
    original = _text(row, "original_model_completion", path, line)
    initial = None
    if original is not None:
        if not original.startswith(prompt):
            raise RecordError(path, line, "original_model_completion", "does not start with the prompt")
        initial = original[len(prompt) :].rstrip() or None
    reference = _text(row, "completion", path, line)
    extra = {k: v for k, v in row.items() if k not in MAPPED}
    extra.update(test=test, entry_point=entry_point)
    sample = Sample(id=task_id, inputs={"prompt": prompt}, initial_output=initial, references=[reference] if reference else [], extra=extra)
    text = _text(row, "Feedback", path, line)
    feedback: Feedback | Dropped | None = None
    if text and not initial:  # a critique of a program the row does not hold cannot be refined
        feedback = Dropped("Feedback without original_model_completion")
    elif text and initial:
        worker = row.get("worker_id")
        feedback = Feedback(
            sample_id=task_id,
            text=text.strip(),
            output=initial,
            annotator=str(worker) if worker not in (None, "") else "ilf_code",
            source="ilf_code",
        )
    return sample, feedback


def load(path: Path, limit: int | None = None) -> SplitData:
    return samples_from_rows(iter_jsonl(path), lambda row, line: convert_row(row, path, line), path, limit, "task_id")


@LOADERS.register(
    "ilf_code",
    help="ILF-for-code annotations (JSONL, or a folder of <split>.jsonl): MBPP prompts, tests, the critiqued program, "
    "human feedback and the human refinement as reference.",
)
def load_ilf_code(config: RunConfig, split: str, path: str, limit: int | None) -> SplitData:
    return load(resolve_split_file(path, split), limit)
