"""Feedback sources: who critiques the policy's outputs, and who compares two of them.

A source is a plug-in: a module in this package registers a ``FeedbackSource`` subclass with
``@FEEDBACK_SOURCES.register(name, help=...)``; ``feedback.source: mypkg.sources:MySource`` loads
one from outside the package. The feedback stage calls ``collect``; the comparisons stage (the
ranking methods' data) calls ``compare``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.records import Comparison, Feedback, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.pipeline import Pipeline


class FeedbackSource:
    """Gives a critique per sample, and optionally comparisons for the ranking methods."""

    def prepare(self, run: Pipeline) -> None:
        """Called when a run starts, before fingerprints are taken (to pull new annotations, say)."""

    def fingerprint_inputs(self, run: Pipeline) -> list[Any]:
        """Config values and file digests the feedback depends on, besides the source's name."""
        return [run.config.feedback]

    def status_note(self, run: Pipeline) -> str | None:
        """What an unfinished feedback stage is doing, for `ilf status` (waiting for people, say)."""
        return None

    def collect(self, run: Pipeline) -> tuple[list[Feedback], Path | str]:
        """The feedback records, and where they came from (named in errors)."""
        raise NotImplementedError

    def comparison_inputs(self, run: Pipeline) -> list[Any]:
        return []

    def compare(self, run: Pipeline, fp: str) -> list[Comparison]:
        """Pairwise judgements for the reward model and DPO; by default the dataset's own."""
        return read_records(run.paths.dataset_comparisons, Comparison)


def get_source(name: str) -> FeedbackSource:
    return FEEDBACK_SOURCES.get(name)()


__all__ = ["FeedbackSource", "get_source"]
