"""Feedback people wrote in a Label Studio project, pulled on every run.

Only annotations not pulled before are fetched; the feedback stage reruns only when something new
arrived, since it reads the pulled file by content."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ilf.config import option
from ilf.feedback import FeedbackSource
from ilf.labelstudio.client import LabelStudio, resolve_connection
from ilf.labelstudio.sync import pull
from ilf.records import Feedback, read_records
from ilf.registry import FEEDBACK_SOURCES

FEEDBACK_FILE = "labelstudio_feedback.jsonl"  # the critiques pulled, in the run directory

if TYPE_CHECKING:
    from ilf.view import RunView

log = logging.getLogger(__name__)


@dataclass
class LabelStudioFeedbackOptions:
    project: str | None = option(None, "Title of the Label Studio project whose critiques are pulled (on every run); required.")


@FEEDBACK_SOURCES.register(
    "labelstudio",
    help="Critiques from a Label Studio project (feedback_options.labelstudio.project; the server labelstudio.url), pulled incrementally.",
)
class LabelStudioFeedback(FeedbackSource):
    Options = LabelStudioFeedbackOptions
    moved = {"feedback.project": "{options}.project", "feedback.url": "labelstudio.url", "feedback.data_dir": "labelstudio.data_dir"}

    def prepare(self, run: RunView) -> None:
        project = self.options(run.config).project
        if not project:
            raise ValueError("feedback_options.labelstudio.project: required when feedback.source is 'labelstudio'")
        ls = run.config.labelstudio
        client = LabelStudio(resolve_connection(ls.url, ls.data_dir))
        result = pull(client, project, run.paths.root / FEEDBACK_FILE, template="feedback")
        c = result.counts
        log.info("pulled %d new critiques from %r (%d kept, %d cancelled, %d empty)", c.new, project, c.kept, c.cancelled, c.empty)

    def collect(self, run: RunView) -> tuple[list[Feedback], Path]:
        return read_records(run.paths.root / FEEDBACK_FILE, Feedback), run.paths.root / FEEDBACK_FILE
