"""SLF5K (Scheurer et al. 2023): Reddit TL;DR posts with model summaries, free-text feedback,
human-written summaries and pairwise comparisons.

The hub dataset ships JSONL files per split (train, development, validation, test); its loading
script no longer runs under ``datasets`` >= 4, so the files are read directly. The 100 / 1K / 5K
training subsets of the study are the first rows of the train file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.data import Dropped, SplitData, resolve_split_file, samples_from_rows, text_field
from ilf.records import Comparison, Feedback, RecordError, Sample, iter_jsonl
from ilf.registry import LOADERS

if TYPE_CHECKING:
    from ilf.config import RunConfig

# Fields this loader maps to record fields; every other field is kept in the sample's extra.
INPUT_FIELDS = ("title", "post", "subreddit")
MAPPED = {
    "id",
    *INPUT_FIELDS,
    "generated_summary_for_feedback",
    "feedback",
    "feedback_class",
    "ideal_human_summary",
    "tldr_human_reference_summary",
    "generated_summary_for_comparison_A",
    "generated_summary_for_comparison_B",
    "comparison_preference",
    "time_spent_in_seconds_feedback",
}


def _text(row: dict[str, Any], key: str, path: Path, line: int, required: bool = False) -> str | None:
    return text_field(row, key, path, line, required)


def convert_row(row: Any, path: Path, line: int) -> tuple[Sample, Feedback | Dropped | None, Comparison | Dropped | None]:
    if not isinstance(row, dict):
        raise RecordError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    sample_id = row.get("id")
    if isinstance(sample_id, int) and not isinstance(sample_id, bool):
        sample_id = str(sample_id)
    if not isinstance(sample_id, str) or not sample_id:
        raise RecordError(path, line, "id", "is missing" if "id" not in row else "expected a non-empty string")
    inputs = {"title": _text(row, "title", path, line, required=True), "post": _text(row, "post", path, line, required=True)}
    subreddit = _text(row, "subreddit", path, line)
    if subreddit:
        inputs["subreddit"] = subreddit
    initial = _text(row, "generated_summary_for_feedback", path, line)
    references = [
        ref for ref in (_text(row, "ideal_human_summary", path, line), _text(row, "tldr_human_reference_summary", path, line)) if ref
    ]
    extra = {k: v for k, v in row.items() if k not in MAPPED}
    sample = Sample(id=sample_id, inputs=inputs, initial_output=initial, references=references, extra=extra)

    feedback: Feedback | Dropped | None = None
    text = _text(row, "feedback", path, line)
    if text and not initial:  # a critique of a summary the row does not hold cannot be refined
        feedback = Dropped("feedback without generated_summary_for_feedback")
    elif text and initial:
        lead = row.get("time_spent_in_seconds_feedback")
        feedback = Feedback(
            sample_id=sample_id,
            text=text,
            output=initial,
            annotator="slf5k",
            source="slf5k",
            feedback_class=_text(row, "feedback_class", path, line),
            lead_time=float(lead) if isinstance(lead, (int, float)) and not isinstance(lead, bool) else None,
        )

    comparison: Comparison | Dropped | None = None
    a = _text(row, "generated_summary_for_comparison_A", path, line)
    b = _text(row, "generated_summary_for_comparison_B", path, line)
    preference = _text(row, "comparison_preference", path, line)
    if (a or b or preference) and not (a and b and preference):
        comparison = Dropped("comparison without both summaries and a comparison_preference")
    elif a and b and preference:
        choice = {"summary a": "a", "summary b": "b"}.get(preference.lower())
        if choice is None:
            raise RecordError(path, line, "comparison_preference", f"expected 'Summary A' or 'Summary B', got {preference!r}")
        comparison = Comparison(sample_id=sample_id, a=a, b=b, preferred=choice, annotator="slf5k", source="slf5k")
    return sample, feedback, comparison


def load(path: Path, limit: int | None = None) -> SplitData:
    return samples_from_rows(iter_jsonl(path), lambda row, line: convert_row(row, path, line), path, limit, "id")


@LOADERS.register(
    "slf5k",
    help="SLF5K JSONL (hub id JeremyAlain/SLF5K, a folder of <split>.jsonl, or a file): posts, feedback, ideal summaries, A/B comparisons.",
)
def load_slf5k(config: RunConfig, split: str, path: str, limit: int | None) -> SplitData:
    return load(resolve_split_file(path, split), limit)
