"""SDPO: online self-distillation from the environment's feedback (TRL's experimental SDPOTrainer).

The policy samples a group of outputs per training prompt; the feedback source scores each (the
facts world's annotator's noisy yes/no judgement, a code task's unit tests; ``reward: oracle`` swaps in
the world's noise-free score for ablations); the model re-prompted with a successful output
of the group, or else with the critique of the earlier output (the feedback record ILF uses), is
the teacher the group is distilled towards. TRL's SDPO takes feedback per prompt from the dataset,
not per rollout, which is why the critique is of the earlier output. Its cost is the critiques
plus every rollout the source scored, and the report says both.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ilf.config import RunConfig, option
from ilf.methods import keep_policy, warn_if_lora_unused
from ilf.methods._privileged import SelfDistillationMethod, solution_context
from ilf.methods.sdft import CONTEXT_TEXT
from ilf.registry import METHODS

if TYPE_CHECKING:
    from ilf.records import Sample
    from ilf.view import RunView


@dataclass
class SDPOOptions:
    learning_rate: float = option(1e-5, "Peak learning rate.")
    max_steps: int = option(50, "Optimizer steps (each scores per_device_train_batch_size rollouts).")
    num_generations: int = option(4, "Rollouts per prompt: a group, whose successful members teach the others.")
    per_device_train_batch_size: int = option(16, "Rollouts per batch (a multiple of num_generations).")
    judged_rollouts_per_sample: float | None = option(
        None,
        "With a study budget (study.budgets): max_steps is set so that this many rollouts per training sample are judged, "
        "and the judgements are priced in what one training sample costs; None: max_steps as set.",
    )
    success_reward_threshold: float = option(1.0, "A rollout scoring at least this is a success the group distils from.")
    reward: Literal["feedback", "oracle"] = option(
        "feedback",
        "What scores a rollout: feedback, the feedback source's judgement as its annotator gives it, noise included (the "
        "facts world's yes/no 'is it fine?', a code task's unit tests); oracle, the simulated world's noise-free score of "
        "the reported metric (an ablation: no person gives it).",
    )
    teacher: Literal["auto", "refine", "context"] = option(
        "auto", "How the critique reaches the teacher: refine, context or auto (see method_options.sdft.teacher)."
    )
    context_text: str = option(CONTEXT_TEXT, "The privileged context of the context teacher ({output}, {feedback}).")
    trainer_args: dict[str, Any] = option(help="Any further trl.experimental.sdpo.SDPOConfig argument, passed through.", factory=dict)

    def __post_init__(self) -> None:
        from ilf.schema import SchemaError

        if self.num_generations < 2:
            raise SchemaError(None, None, "num_generations", f"must be at least 2 (a group), got {self.num_generations}")
        if self.per_device_train_batch_size % self.num_generations:
            raise SchemaError(
                None,
                None,
                "per_device_train_batch_size",
                f"must be a multiple of num_generations ({self.num_generations}), got {self.per_device_train_batch_size}",
            )


@METHODS.register(
    "sdpo",
    help="Online self-distillation (TRL SDPO): rollouts scored by the feedback source, the model re-prompted with a "
    "success or the critique teaches itself (method_options.sdpo).",
)
class SDPO(SelfDistillationMethod):
    Options = SDPOOptions

    def trained_feedback(self, run: RunView) -> dict[str, int]:
        path = run.paths.model / "sdpo_metrics.json"
        if not path.exists():
            return {}
        trained = json.loads(path.read_text())
        # each distinct (sample, rollout) is one question: the annotator answers a repeat as before
        return {trained.get("reward_unit") or "judgements": int(trained.get("rewards_distinct", trained.get("rewards_scored", 0)))}

    def _judgements_per_sample(self, config: RunConfig) -> tuple[float, str]:
        options: SDPOOptions = self.options(config)
        per = options.judged_rollouts_per_sample
        if per is None:  # the steps are fixed: their judgements spread over the samples there are
            per = options.max_steps * options.per_device_train_batch_size / max(1, config.data.limit or 1)
        return per, "oracle_scores" if options.reward == "oracle" else "judgements"

    def seconds_per_sample(self, config: RunConfig) -> float:
        from ilf.costs import price

        per, unit = self._judgements_per_sample(config)
        return super().seconds_per_sample(config) + per * price(config.cost, unit)

    def sample_seconds(self, run: RunView, samples: list[Sample]) -> list[float]:
        from ilf.costs import price

        per, unit = self._judgements_per_sample(run.config)  # judged while training: priced as planned
        return [s + per * price(run.config.cost, unit) for s in super().sample_seconds(run, samples)]

    def at_budget(self, config: RunConfig, seconds: float) -> RunConfig:
        """The budget, and the steps that judge ``judged_rollouts_per_sample`` rollouts of each sample it pays for."""
        import math

        config = super().at_budget(config, seconds)
        options: SDPOOptions = self.options(config)
        if options.judged_rollouts_per_sample is None:
            return config
        samples = int(seconds // self.seconds_per_sample(config))
        steps = max(1, math.ceil(samples * options.judged_rollouts_per_sample / options.per_device_train_batch_size))
        method_options = {**config.method_options, self.name: {**config.method_options.get(self.name, {}), "max_steps": steps}}
        return dataclasses.replace(config, method_options=method_options)

    def train(self, run: RunView) -> dict[str, Any]:
        from ilf.train.sdpo import SDPOTrainingConfig, train_sdpo

        options: SDPOOptions = self.options(run.config)
        warn_if_lora_unused(run.config, self.name)
        prepared = self.rows(run)
        if prepared is None:
            return keep_policy(run, "no training sample has a critique")

        def reward(sample_ids: list[str], completions: list[str]) -> tuple[list[float], str]:
            pairs = [(prepared.samples[i], run.task.postprocess(text)) for i, text in zip(sample_ids, completions)]
            score = run.feedback_source.oracle_reward if options.reward == "oracle" else run.feedback_source.reward
            return score(run, pairs)

        if prepared.form == "refine":
            reprompt = "{prompt}{solution}{feedback}" if prepared.prompt_first else "{solution}{feedback}{prompt}"
            solution = solution_context(run.task, list(prepared.samples.values()), prepared.prompt_first)
        else:
            reprompt, solution = "{solution}{feedback}\n\n{prompt}", None
        sampling = run.config.outputs.sampling
        metrics = train_sdpo(
            run.policy,
            prepared.rows,
            reward,
            SDPOTrainingConfig(
                learning_rate=options.learning_rate,
                max_steps=options.max_steps,
                num_generations=options.num_generations,
                per_device_train_batch_size=options.per_device_train_batch_size,
                max_completion_length=sampling.max_new_tokens,
                temperature=sampling.temperature,
                max_prompt_length=sampling.max_prompt_tokens,
                success_reward_threshold=options.success_reward_threshold,
                reprompt_template=reprompt,
                solution_template=solution,
                seed=run.config.seed,
                trainer_args=options.trainer_args,
            ),
            run.paths.model,
        )
        return {**metrics, "teacher": prepared.form}
