"""Feedback people wrote in a Label Studio project, pulled on every run.

Only annotations not pulled before are fetched; the feedback stage reruns only when something new
arrived, since its fingerprint covers the pulled file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.feedback import FeedbackSource
from ilf.files import files_digest
from ilf.labelstudio.client import LabelStudio, resolve_connection
from ilf.labelstudio.sync import pull
from ilf.records import Feedback, read_records
from ilf.registry import FEEDBACK_SOURCES

FEEDBACK_FILE = "labelstudio_feedback.jsonl"  # the critiques pulled, in the run directory

if TYPE_CHECKING:
    from ilf.pipeline import Pipeline

log = logging.getLogger(__name__)


@FEEDBACK_SOURCES.register(
    "labelstudio", help="Critiques from a Label Studio project (feedback.project, feedback.url), pulled incrementally."
)
class LabelStudioFeedback(FeedbackSource):
    def prepare(self, run: Pipeline) -> None:
        fb = run.config.feedback
        if not fb.project:
            raise ValueError("feedback.project: required when feedback.source is 'labelstudio'")
        client = LabelStudio(resolve_connection(fb.url, fb.data_dir))
        result = pull(client, fb.project, run.paths.root / FEEDBACK_FILE, template="feedback")
        c = result.counts
        log.info("pulled %d new critiques from %r (%d kept, %d cancelled, %d empty)", c.new, fb.project, c.kept, c.cancelled, c.empty)

    def fingerprint_inputs(self, run: Pipeline) -> list[Any]:
        return [run.config.feedback, files_digest(str(run.paths.root / FEEDBACK_FILE))]

    def collect(self, run: Pipeline) -> tuple[list[Feedback], Path]:
        return read_records(run.paths.root / FEEDBACK_FILE, Feedback), run.paths.root / FEEDBACK_FILE
