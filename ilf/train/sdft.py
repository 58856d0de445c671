"""Self-distillation fine-tuning (SDFT) with TRL's experimental SDFTTrainer.

The student writes completions for its own prompts (on-policy); the same model, reading the
privileged context as well (the earlier output and its critique), scores those tokens, and the
student is distilled towards that teacher. Tested with TRL 1.16 (``trl.experimental.sdft``); the
experimental API moves between minor versions, so it is imported here and nowhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ilf.config import ModelConfig
from ilf.models import load_model
from ilf.train import common_trainer_args, policy_with_path, prompt_room, save_trained, training_summary, warn_if_untested

# Importing trl.experimental warns that its API may change: the pinned TRL range and this module's
# docstring say so once, instead of every run's log.
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
TESTED_TRL = ">=1.16,<1.17"


@dataclass
class SDFTTrainingConfig:
    learning_rate: float = 1e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1
    per_device_train_batch_size: int = 8
    max_completion_length: int = 64
    temperature: float = 1.0
    max_prompt_length: int | None = None  # the student's prompt: its last tokens are kept (None: what fits)
    teacher_prompt_template: str = "{prompt}\n\n{privileged_context}"
    teacher_model_kind: str = "base"
    seed: int = 0
    trainer_args: dict[str, Any] = field(default_factory=dict)


def train_sdft(policy: ModelConfig, rows: list[dict[str, str]], config: SDFTTrainingConfig, out_dir: str | Path) -> dict[str, Any]:
    """Distil the policy towards itself conditioned on each row's ``privileged_context``; save it atomically."""
    from datasets import Dataset
    from trl.experimental.sdft import SDFTConfig, SDFTTrainer

    warn_if_untested("trl", TESTED_TRL)

    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.trainer"
    policy = policy_with_path(policy, work)  # the base teacher is rebuilt from the student's path
    lm = load_model(policy, for_training=True)
    # TRL's sampler only yields full batches: with fewer rows than a batch an epoch would be empty
    batch = min(config.per_device_train_batch_size, len(rows))
    room = prompt_room(lm.model, config.max_completion_length)  # the teacher's prompt is the longer one
    lengths = {"max_prompt_length": min(x for x in (room, config.max_prompt_length) if x)} if room or config.max_prompt_length else {}
    args = SDFTConfig(
        **common_trainer_args(
            lm.device,
            work,
            config.seed,
            dtype=next(lm.model.parameters()).dtype,
            overrides=config.trainer_args,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_train_epochs,
            max_steps=config.max_steps,
            per_device_train_batch_size=batch,
            max_completion_length=config.max_completion_length,
            temperature=config.temperature,
            num_generations=1,  # SDFT distils each rollout on its own: no group is needed
            teacher_prompt_template=config.teacher_prompt_template,
            teacher_model_kind=config.teacher_model_kind,
            remove_unused_columns=False,
            logging_steps=1,
            **lengths,
        )
    )
    trainer = SDFTTrainer(model=lm.model, args=args, train_dataset=Dataset.from_list(rows), processing_class=lm.tokenizer)
    result = trainer.train()
    metrics: dict[str, Any] = {
        "rows": len(rows),
        **training_summary(trainer, result),
        "rollouts": trainer.state.global_step * batch * trainer.args.gradient_accumulation_steps,
    }
    save_trained(trainer, trainer.model, lm.tokenizer, out_dir, "sdft_metrics.json", metrics, work)
    return metrics
