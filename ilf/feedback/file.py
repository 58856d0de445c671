"""Feedback from a JSONL file of Feedback records (feedback.path)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.feedback import FeedbackSource
from ilf.files import files_digest
from ilf.records import Feedback, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.pipeline import Pipeline


@FEEDBACK_SOURCES.register("file", help="A JSONL file of feedback records (feedback.path), e.g. written by another tool.")
class FileFeedback(FeedbackSource):
    def fingerprint_inputs(self, run: Pipeline) -> list[Any]:
        return [run.config.feedback, files_digest(run.config.feedback.path)]

    def collect(self, run: Pipeline) -> tuple[list[Feedback], Path]:
        if not run.config.feedback.path:
            raise ValueError("feedback.path: required when feedback.source is 'file'")
        origin = Path(run.config.feedback.path)
        return read_records(origin, Feedback), origin
