"""Online RL against a reward model with TRL's RLOOTrainer (REINFORCE leave-one-out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ilf.config import ModelConfig
from ilf.models import load_model
from ilf.train import common_trainer_args, policy_with_path, save_trained


@dataclass
class RLOOTrainingConfig:
    learning_rate: float = 1e-6
    num_generations: int = 4
    max_completion_length: int = 48
    per_device_train_batch_size: int = 8
    max_steps: int = 100
    temperature: float = 1.0
    seed: int = 0


def train_rloo(
    policy: ModelConfig, prompts: list[str], reward_model: str | Path, config: RLOOTrainingConfig, out_dir: str | Path
) -> dict[str, Any]:
    """Sample completions for ``prompts``, reward them with the reward model at ``reward_model``,
    and update the policy; save it atomically."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.trainer"
    policy = policy_with_path(policy, work)  # RLOOTrainer rebuilds its frozen reference from the path
    lm = load_model(policy, for_training=True)
    from ilf import reads

    reads.note_file(reward_model)
    reward = AutoModelForSequenceClassification.from_pretrained(str(reward_model))
    reward_tokenizer = AutoTokenizer.from_pretrained(str(reward_model))
    args = RLOOConfig(
        **common_trainer_args(
            lm.device,
            work,
            config.seed,
            dtype=next(lm.model.parameters()).dtype,
            learning_rate=config.learning_rate,
            num_generations=config.num_generations,
            max_completion_length=config.max_completion_length,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_steps=config.max_steps,
            temperature=config.temperature,
            logging_steps=1,
        )
    )
    trainer = RLOOTrainer(
        model=lm.model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=lm.tokenizer,
        reward_processing_classes=[reward_tokenizer],
    )
    result = trainer.train()
    rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    metrics = {"steps": trainer.state.global_step, "train_loss": result.training_loss, "rewards": rewards}
    save_trained(trainer, trainer.model, lm.tokenizer, out_dir, "rloo_metrics.json", metrics, work)
    return metrics
