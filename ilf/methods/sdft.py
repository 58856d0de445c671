"""SDFT: self-distillation fine-tuning from the critiques ILF uses (TRL's experimental SDFTTrainer).

The student reads the sample's input only; the teacher is the same model at the start of training
reading the earlier output and its critique as well (the task's refinement prompt where it fits,
see ``_privileged``), and the student's own completions are distilled towards it. Where ILF writes
N refinements, picks one and imitates it, SDFT learns from the refiner's distribution over every
token the student writes, with no selection step. The same feedback records, the same evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ilf.config import option
from ilf.methods import keep_policy, warn_if_lora_unused
from ilf.methods._privileged import SelfDistillationMethod
from ilf.registry import METHODS

if TYPE_CHECKING:
    from ilf.view import RunView

CONTEXT_TEXT = "An earlier output: {output}\nFeedback on it: {feedback}"


@dataclass
class SDFTOptions:
    learning_rate: float = option(1e-5, "Peak learning rate.")
    num_train_epochs: float = option(1.0, "Passes over the critiqued samples (one on-policy rollout per sample and pass).")
    max_steps: int = option(-1, "Optimizer steps; above 0 it replaces num_train_epochs.")
    per_device_train_batch_size: int = option(8, "Prompts per batch.")
    teacher: Literal["auto", "refine", "context"] = option(
        "auto",
        "refine: the teacher reads the task's refinement prompt (it must begin or end with the initial prompt); "
        "context: context_text before the student's prompt; auto: refine where it fits, else context.",
    )
    context_text: str = option(CONTEXT_TEXT, "The privileged context of the context teacher ({output}, {feedback}).")
    teacher_model_kind: Literal["base", "ema", "live"] = option(
        "base", "base: the policy as it was (frozen); ema: a moving average of the student; live: the student."
    )
    trainer_args: dict[str, Any] = option(help="Any further trl.experimental.sdft.SDFTConfig argument, passed through.", factory=dict)


@METHODS.register(
    "sdft",
    help="Self-distillation (TRL SDFT): the policy reading the critique of its earlier output teaches itself without it "
    "(method_options.sdft).",
)
class SDFT(SelfDistillationMethod):
    Options = SDFTOptions

    def train(self, run: RunView) -> dict[str, Any]:
        from ilf.train.sdft import SDFTTrainingConfig, train_sdft

        options: SDFTOptions = self.options(run.config)
        warn_if_lora_unused(run.config, self.name)
        prepared = self.rows(run)
        if prepared is None:
            return keep_policy(run, "no training sample has a critique")
        sampling = run.config.outputs.sampling
        metrics = train_sdft(
            run.policy,
            prepared.rows,
            SDFTTrainingConfig(
                learning_rate=options.learning_rate,
                num_train_epochs=options.num_train_epochs,
                max_steps=options.max_steps,
                per_device_train_batch_size=options.per_device_train_batch_size,
                max_completion_length=sampling.max_new_tokens,
                temperature=sampling.temperature,
                max_prompt_length=sampling.max_prompt_tokens,
                teacher_prompt_template=prepared.template,
                teacher_model_kind=options.teacher_model_kind,
                seed=run.config.seed,
                trainer_args=options.trainer_args,
            ),
            run.paths.model,
        )
        return {**metrics, "teacher": prepared.form}
