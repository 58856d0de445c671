"""Feedback from a JSONL file of Feedback records (feedback_options.file.path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ilf.config import option
from ilf.feedback import FeedbackSource
from ilf.records import Feedback, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.view import RunView


@dataclass
class FileOptions:
    path: str | None = option(None, "The feedback JSONL (sample_id, text, ...); required.", path=True)


@FEEDBACK_SOURCES.register("file", help="A JSONL file of feedback records (feedback_options.file.path), e.g. written by another tool.")
class FileFeedback(FeedbackSource):
    Options = FileOptions
    moved = {"feedback.path": "{options}.path"}

    def collect(self, run: RunView) -> tuple[list[Feedback], Path]:
        path = self.options(run.config).path
        if not path:
            raise ValueError("feedback_options.file.path: required when feedback.source is 'file'")
        origin = Path(path)
        return read_records(origin, Feedback), origin
