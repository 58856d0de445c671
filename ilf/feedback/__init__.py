"""Feedback sources: who critiques the policy's outputs, and who compares two of them.

A source is a plug-in: a module in this package registers a ``FeedbackSource`` subclass with
``@FEEDBACK_SOURCES.register(name, help=...)``; ``feedback.source: mypkg.sources:MySource`` loads
one from outside the package. Its own settings are an ``Options`` dataclass, set under
``feedback_options.<name>`` (see ``ilf.plugin``). The feedback stage calls ``collect``; the comparisons stage (the
ranking methods' data) calls ``compare``; online methods (sdpo) call ``reward`` on their rollouts (``oracle_reward`` for
ablations that bypass the annotator).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.plugin import Plugin
from ilf.records import Comparison, Feedback, Sample, read_records
from ilf.registry import FEEDBACK_SOURCES

if TYPE_CHECKING:
    from ilf.config import RunConfig
    from ilf.view import RunView


class FeedbackSource(Plugin):
    """Gives a critique per sample, and optionally comparisons for the ranking methods."""

    critique_unit = "critiques"  # what one feedback record costs, as a study's cost columns name it

    def prepare(self, run: RunView) -> None:
        """Called when a run starts, before any stage is checked (to pull new annotations into the
        run directory, say: a stage that reads the pulled file reruns when its content changed)."""

    def round_config(self, config: RunConfig, k: int) -> RunConfig:
        """Round ``k``'s config in a run of several rounds: by default ``config`` as it is (a source
        that asks people names each round's project, say)."""
        return config

    def status_note(self, run: RunView) -> str | None:
        """What an unfinished feedback stage is doing, for `ilf status` (waiting for people, say)."""
        return None

    def collect(self, run: RunView) -> tuple[list[Feedback], Path | str]:
        """The feedback records, and where they came from (named in errors)."""
        raise NotImplementedError

    @classmethod
    def comparison_seconds(cls, config: RunConfig) -> float:
        """Annotator-seconds the comparisons of one training sample cost, before they are asked (what a
        budget buys): by default one comparison (a dataset's own, one per sample)."""
        from ilf.costs import price

        return price(config.cost, "comparisons")

    def compare(self, run: RunView, journal_key: str) -> list[Comparison]:
        """Pairwise judgements for the reward model and DPO; by default the dataset's own."""
        return read_records(run.paths.dataset_comparisons, Comparison)

    def reward(self, run: RunView, pairs: list[tuple[Sample, str]]) -> tuple[list[float], str]:
        """A score in [0, 1] of each (sample, output) for online methods, 1.0 meaning nothing left to
        fix, and the unit it costs (judgements, executions). By default the task's own check (the
        code task runs the unit tests); a source whose critic can score any output says so here."""
        from ilf.tasks import ScoresOutputs

        if not isinstance(run.task, ScoresOutputs):
            raise ValueError(
                f"feedback.source {run.config.feedback.source!r} cannot score new outputs, nor can task {run.config.task.name!r}: "
                "online methods (sdpo) need one that can (simulated in the facts world, a code task's unit tests)"
            )
        return run.task.reward(pairs)

    def oracle_reward(self, run: RunView, pairs: list[tuple[Sample, str]]) -> tuple[list[float], str]:
        """A noise-free score of each (sample, output) from the world's ground truth, for ablations
        (an online method's ``reward: oracle``); only a simulated world can give one."""
        raise ValueError(
            f"feedback.source {run.config.feedback.source!r} has no oracle score: reward: oracle needs a simulated world "
            "whose ground truth is known (feedback.source: simulated); reward: feedback asks the source itself"
        )


def get_source(name: str, config: RunConfig, task: Any = None) -> FeedbackSource:
    """The source ``name`` names, built for ``config``."""
    source: FeedbackSource = FEEDBACK_SOURCES.get(name).from_config(config, task)
    return source


__all__ = ["FeedbackSource", "get_source"]
