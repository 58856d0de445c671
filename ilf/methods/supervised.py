"""Supervised fine-tuning on one text per sample: ILF and its baselines.

    ilf                 the selected refinements (finetune.target: selected)
    refine_no_feedback  refinements written without seeing the feedback (the ablation)
    sft_initial         the policy's own initial outputs
    sft_reference       the references (human summaries): supervision ILF is compared with

All four train alike (TRL SFTTrainer, loss on the completion) and differ only in their targets,
so a study's cells share whatever stages their targets have in common.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ilf.config import RunConfig, option
from ilf.methods import Method, keep_policy
from ilf.records import Output, Sample, read_records
from ilf.registry import METHODS, SELECTORS
from ilf.train.sft import finetune, training_pairs

if TYPE_CHECKING:
    from ilf.costs import Asked
    from ilf.view import RunView


READS = {"selected": ("outputs", "feedback", "refine", "select"), "initial": ("outputs",), "reference": ()}


class SupervisedMethod(Method):
    target: str | None = None  # None: finetune.target as configured

    def configure(self, config: RunConfig) -> RunConfig:
        if self.target is None or config.finetune.target == self.target:
            return config
        return dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, target=self.target))

    def stages(self, config: RunConfig) -> tuple[str, ...]:
        if config.finetune.target not in READS:
            raise ValueError(f"finetune.target: unknown target {config.finetune.target!r} (selected, initial or reference)")
        return READS[config.finetune.target]

    def train(self, run: RunView) -> dict[str, Any]:
        pairs: list[dict[str, str]] = []
        counts: dict[str, int] = {}
        for source in [*run.earlier, run]:  # earlier rounds' targets too, when a round retrains from the base
            more, more_counts = self._pairs(source)
            pairs += more
            counts = {k: counts.get(k, 0) + v for k, v in more_counts.items()}
        if not pairs:
            return {**counts, **keep_policy(run, f"no sample has a {run.config.finetune.target!r} target")}
        metrics = finetune(run.policy, pairs, run.config.finetune, run.paths.model, run.config.seed)
        return {**counts, **metrics}

    def _pairs(self, run: RunView) -> tuple[list[dict[str, str]], dict[str, int]]:
        c = run.config
        samples = run.training_samples()
        ids = {s.id for s in samples}
        selections = [x for x in run.selections() if x.sample_id in ids] if c.finetune.target == "selected" else None
        if c.finetune.target == "initial":  # the outputs the round critiqued: the dataset's, or the policy's own
            initial = self.targets(run) or {}
            samples = [dataclasses.replace(s, initial_output=initial.get(s.id, s.initial_output)) for s in samples]
        return training_pairs(run.task, samples, c.finetune.target, selections)

    def seconds_per_sample(self, config: RunConfig) -> float:
        from ilf.costs import price

        config = self.configure(config)
        if config.finetune.target == "reference":
            return price(config.cost, "references")
        if config.finetune.target == "initial":
            return 0.0
        if not config.refine.use_feedback and not SELECTORS.get(config.selection.method).reads_feedback:
            return SELECTORS.get(config.selection.method).seconds_per_sample(config)
        return super().seconds_per_sample(config)

    def feedback_asked(self, run: RunView, samples: list[Sample]) -> list[Asked]:
        from ilf.costs import asked

        c = self.configure(run.config)
        if c.finetune.target == "reference":  # a written reference is a demonstration somebody wrote
            return [asked(s.id, "references", c.cost) for s in samples if s.references]
        if c.finetune.target == "initial":
            return []
        if not c.refine.use_feedback and not SELECTORS.get(c.selection.method).reads_feedback:
            return self.selection_asked(run, samples)  # neither the refiner nor the selector read a critique; executions still count
        return super().feedback_asked(run, samples)

    def targets(self, run: RunView) -> dict[str, str] | None:
        target = run.config.finetune.target
        if target == "selected":
            return {s.sample_id: s.text for s in run.selections()}
        if target == "initial":
            return {o.sample_id: o.text for o in read_records(run.paths.outputs, Output)}
        return {s.id: s.references[0] for s in run.training_samples() if s.references}


@METHODS.register("ilf", help="ILF: fine-tune on the refinement the selector picked (finetune.target selected, or as configured).")
class ILF(SupervisedMethod):
    pass


@METHODS.register("refine_no_feedback", help="Ablation: ILF with refinements written without seeing the feedback.")
class RefineWithoutFeedback(SupervisedMethod):
    target = "selected"

    def configure(self, config: RunConfig) -> RunConfig:
        config = super().configure(config)
        return dataclasses.replace(config, refine=dataclasses.replace(config.refine, use_feedback=False))


@METHODS.register("sft_initial", help="Baseline: fine-tune on the policy's own initial outputs.")
class SFTInitial(SupervisedMethod):
    target = "initial"


@METHODS.register("sft_reference", help="Baseline: fine-tune on the references (human-written outputs).")
class SFTReference(SupervisedMethod):
    target = "reference"


@dataclass
class BeforeOptions:
    system: str = option("base", "The name of the policy's row in the table.")


@METHODS.register("before", help="No training: the policy as it is, for the starting point of every table.")
class Before(Method):
    Options = BeforeOptions
    trains = False

    def systems(self, run: RunView) -> dict[str, Any]:
        return {self.options(run.config).system: run.policy}
