"""Self-distilled policy optimisation (SDPO) with TRL's experimental SDPOTrainer.

Online, like GRPO: the policy samples a group of completions per prompt and a reward function
scores each; the model itself, re-prompted with a successful completion of the group or with the
critique of an earlier output (the row's ``privileged_context``), is the teacher the rollouts are
distilled towards. Tested with TRL 1.16 (``trl.experimental.sdpo``); the experimental API moves
between minor versions, so it is imported here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ilf.config import ModelConfig
from ilf.models import load_model
from ilf.train import common_trainer_args, policy_with_path, prompt_room, save_trained, training_summary, warn_if_untested

# Importing trl.experimental warns that its API may change: the pinned TRL range and this module's
# docstring say so once, instead of every run's log.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
TESTED_TRL = ">=1.16,<1.17"

# (sample ids, completions) -> (one reward per completion, the unit a reward costs: judgements, executions)
RewardFunction = Callable[[list[str], list[str]], tuple[list[float], str]]


@dataclass
class SDPOTrainingConfig:
    learning_rate: float = 1e-5
    max_steps: int = 50
    num_generations: int = 4
    per_device_train_batch_size: int = 16
    max_completion_length: int = 64
    temperature: float = 1.0
    max_prompt_length: int | None = None  # the student's prompt: its last tokens are kept (None: what fits)
    success_reward_threshold: float = 1.0
    reprompt_template: str = "{prompt}{solution}{feedback}\n\nCorrectly solve the original question.\n"
    solution_template: str | None = None  # None: TRL's
    feedback_template: str = "{feedback_raw}"
    seed: int = 0
    trainer_args: dict[str, Any] = field(default_factory=dict)


def train_sdpo(
    policy: ModelConfig, rows: list[dict[str, str]], reward: RewardFunction, config: SDPOTrainingConfig, out_dir: str | Path
) -> dict[str, Any]:
    """Train the policy online on ``rows`` (prompt, privileged_context, sample_id) with ``reward``; save it atomically."""
    from datasets import Dataset
    from trl.experimental.sdpo import SDPOConfig, SDPOTrainer

    warn_if_untested("trl", TESTED_TRL)

    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.trainer"
    policy = policy_with_path(policy, work)  # the EMA teacher is rebuilt from the student's path
    lm = load_model(policy, for_training=True)
    prompts_per_batch = config.per_device_train_batch_size // config.num_generations
    if prompts_per_batch > len(rows):  # TRL's sampler only yields full batches: none would come
        raise ValueError(
            f"sdpo: a batch of {config.per_device_train_batch_size} rollouts is {prompts_per_batch} prompts of "
            f"{config.num_generations}, more than the {len(rows)} critiqued samples; lower per_device_train_batch_size"
        )
    room = prompt_room(lm.model, config.max_completion_length)
    lengths: dict[str, int] = {"max_reprompt_len": room} if room else {}  # the teacher's prompt: input, attempt or critique
    if room or config.max_prompt_length:
        lengths["max_prompt_length"] = min(x for x in (room, config.max_prompt_length) if x)
    scored: list[float] = []
    asked: set[tuple[str, str]] = set()
    units: set[str] = set()

    def reward_func(prompts: list[str], completions: list[str], sample_id: list[str], **_: Any) -> list[float]:
        rewards, unit = reward(sample_id, completions)
        scored.extend(rewards)
        asked.update(zip(sample_id, completions))
        units.add(unit)
        return rewards

    reward_func.__name__ = "feedback_reward"  # TRL logs each reward function by its name
    templates = {"solution_template": config.solution_template} if config.solution_template is not None else {}
    args = SDPOConfig(
        **common_trainer_args(
            lm.device,
            work,
            config.seed,
            dtype=next(lm.model.parameters()).dtype,
            overrides=config.trainer_args,
            learning_rate=config.learning_rate,
            max_steps=config.max_steps,
            num_generations=config.num_generations,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_completion_length=config.max_completion_length,
            temperature=config.temperature,
            success_reward_threshold=config.success_reward_threshold,
            include_environment_feedback=True,
            # a successful attempt of the group, else the critique: a teacher prompt holds one of them,
            # as the two are about different outputs
            environment_feedback_only_without_solution=True,
            reprompt_template=config.reprompt_template,
            feedback_template=config.feedback_template,
            remove_unused_columns=False,
            logging_steps=1,
            **templates,
            **lengths,
        )
    )
    trainer = SDPOTrainer(
        model=lm.model, reward_funcs=[reward_func], args=args, train_dataset=Dataset.from_list(rows), processing_class=lm.tokenizer
    )
    result = trainer.train()
    batch = trainer.args.generation_batch_size
    metrics: dict[str, Any] = {
        "rows": len(rows),
        **training_summary(trainer, result),
        "rewards_scored": len(scored),
        "rewards_distinct": len(asked),  # distinct (sample, rollout) pairs: the questions a person was asked
        "reward_unit": ",".join(sorted(units)) or None,
        "mean_reward": _mean(scored),
        # the mean reward of the first and the last generation batch: did the policy get better at what the source scores?
        "first_batch_reward": _mean(scored[:batch]),
        "last_batch_reward": _mean(scored[-batch:]),
        "success_share": sum(1 for r in scored if r >= config.success_reward_threshold) / len(scored) if scored else None,
    }
    save_trained(trainer, trainer.model, lm.tokenizer, out_dir, "sdpo_metrics.json", metrics, work)
    return metrics


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
