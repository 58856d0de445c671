"""Feedback that ships with the data: each sample's feedback field (SLF5K's critiques)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ilf.feedback import FeedbackSource
from ilf.records import Feedback, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.view import RunView


@FEEDBACK_SOURCES.register(
    "dataset", help="Each sample's own feedback field (SLF5K's critiques); comparisons from the dataset's A/B fields."
)
class DatasetFeedback(FeedbackSource):
    def collect(self, run: RunView) -> tuple[list[Feedback], Path]:
        return read_records(run.paths.dataset_feedback, Feedback), run.paths.dataset_feedback
