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
import logging
from typing import TYPE_CHECKING, Any

from ilf.config import RunConfig
from ilf.methods import Method
from ilf.records import Output, read_records
from ilf.registry import METHODS
from ilf.train.sft import finetune, training_pairs

if TYPE_CHECKING:
    from ilf.pipeline import Pipeline

log = logging.getLogger(__name__)

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

    def fingerprint_inputs(self, config: RunConfig) -> list[Any]:
        return ["sft"]

    def train(self, run: Pipeline) -> dict[str, Any]:
        pairs: list[dict[str, str]] = []
        counts: dict[str, int] = {}
        for source in [*run.earlier, run]:  # earlier rounds' targets too, when a round retrains from the base
            more, more_counts = self._pairs(source)
            pairs += more
            counts = {k: counts.get(k, 0) + v for k, v in more_counts.items()}
        if not pairs:
            return {**counts, **keep_policy(run)}
        metrics = finetune(run.policy, pairs, run.config.finetune, run.paths.model, run.config.seed)
        return {**counts, **metrics}

    def _pairs(self, run: Pipeline) -> tuple[list[dict[str, str]], dict[str, int]]:
        c = run.config
        samples = run.training_samples()
        ids = {s.id for s in samples}
        selections = [x for x in run.selections() if x.sample_id in ids] if c.finetune.target == "selected" else None
        if c.finetune.target == "initial":  # the outputs the round critiqued: the dataset's, or the policy's own
            initial = self.targets(run) or {}
            samples = [dataclasses.replace(s, initial_output=initial.get(s.id, s.initial_output)) for s in samples]
        return training_pairs(run.task, samples, c.finetune.target, selections)

    def feedback_cost(self, run: Pipeline) -> dict[str, int]:
        if run.config.finetune.target == "reference":  # a written reference is a demonstration somebody wrote
            return {"references": sum(1 for s in run.training_samples() if s.references)}
        return super().feedback_cost(run)

    def targets(self, run: Pipeline) -> dict[str, str] | None:
        target = run.config.finetune.target
        if target == "selected":
            return {s.sample_id: s.text for s in run.selections()}
        if target == "initial":
            return {o.sample_id: o.text for o in read_records(run.paths.outputs, Output)}
        return {s.id: s.references[0] for s in run.training_samples() if s.references}


def keep_policy(run: Pipeline) -> dict[str, Any]:
    """No sample has a target (a code round whose refinements all fail their tests, say): the
    "fine-tuned" model is the policy as it was, saved where training would have put it, so the
    run and its study still evaluate it; the metrics say that nothing was trained."""
    from ilf.files import atomic_directory, atomic_write_json
    from ilf.models import load_model, save_model

    log.warning("finetune: no sample has a %r target; the policy is kept unchanged as the fine-tuned model", run.config.finetune.target)
    loaded = load_model(run.policy)
    model = loaded.model.merge_and_unload() if hasattr(loaded.model, "merge_and_unload") else loaded.model
    metrics = {"pairs": 0, "steps": 0, "train_loss": None}
    with atomic_directory(run.paths.model) as tmp:
        save_model(model, loaded.tokenizer, tmp)
        atomic_write_json(tmp / "train_metrics.json", metrics)
    return metrics


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


@METHODS.register("before", help="No training: the policy as it is, for the starting point of every table.")
class Before(Method):
    trains = False

    def systems(self, run: Pipeline) -> dict[str, Any]:
        return {"base": run.policy}
