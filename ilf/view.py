"""What a plug-in's hooks see of the run they serve: ``RunView``.

Feedback sources, selectors, metrics and methods are handed a ``RunView``, not the ``Pipeline``
that runs the stages: its records (samples, the training subset, selections, comparisons), its
task, its config (where a plug-in reads its options, and every read is recorded as the stage's
input, ``ilf.reads``), its folder (``paths``), its models and the other plug-ins a hook may ask
(the feedback source that scores rollouts, the method whose targets a metric measures). Deciding
what is up to date, running stages and sharing them between a study's cells stay the engine's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ilf.config import ModelConfig, RunConfig
    from ilf.layout import RunPaths
    from ilf.pipeline import Pipeline
    from ilf.records import Comparison, Sample, Selection


class RunView:
    __slots__ = ("_run",)

    def __init__(self, run: Pipeline) -> None:
        self._run = run

    # ----- the run's settings, folder and task ---------------------------------------------------

    @property
    def config(self) -> RunConfig:
        return self._run.config

    @property
    def paths(self) -> RunPaths:
        """The run's folder: the files its stages wrote, and files a plug-in keeps there of its own."""
        return self._run.paths

    @property
    def task(self) -> Any:
        return self._run.task

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this run has (``comparisons`` only for the methods that read them, say)."""
        return self._run.stages

    # ----- records -------------------------------------------------------------------------------

    def samples(self) -> list[Sample]:
        return self._run.samples()

    def training_samples(self) -> list[Sample]:
        """The samples this run trains on: the first ``finetune.train_samples``, and of those, with
        ``finetune.budget``, the first whose feedback the budget pays for."""
        return self._run.training_samples()

    def selections(self) -> list[Selection]:
        return self._run.selections()

    def comparisons(self) -> list[Comparison]:
        """The comparisons of the training samples."""
        return self._run.comparisons()

    @property
    def earlier(self) -> list[RunView]:
        """Earlier rounds whose targets a round that restarts from the base also trains on."""
        return [run.view for run in self._run.earlier]

    # ----- models --------------------------------------------------------------------------------

    @property
    def policy(self) -> ModelConfig:
        return self._run.policy

    @property
    def refiner(self) -> ModelConfig:
        return self._run.refiner

    @property
    def outputs_model(self) -> ModelConfig:
        return self._run.outputs_model

    def resolve(self, model: ModelConfig) -> ModelConfig:
        """``pretrained`` resolved to the world model (trained, or found cached)."""
        return self._run.resolve(model)

    def trained(self, path: Path) -> ModelConfig:
        """A model this run trained, at ``path``, with the policy's settings."""
        return self._run.trained(path)

    # ----- the other plug-ins of the run ---------------------------------------------------------

    @property
    def method(self) -> Any:
        return self._run.method

    @property
    def feedback_source(self) -> Any:
        return self._run.feedback_source

    @property
    def metrics(self) -> list[Any]:
        return self._run.metrics


__all__ = ["RunView"]
