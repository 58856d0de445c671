"""Direct preference optimisation on comparisons with TRL's DPOTrainer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ilf.config import ModelConfig
from ilf.models import load_model
from ilf.records import Comparison, Sample
from ilf.tasks import Task
from ilf.train import common_trainer_args, save_trained


@dataclass
class DPOTrainingConfig:
    learning_rate: float = 5e-6
    beta: float = 0.1
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 8
    max_length: int | None = 1024
    seed: int = 0


def dpo_pairs(task: Task, samples: list[Sample], comparisons: list[Comparison]) -> list[dict[str, str]]:
    """``{"prompt", "chosen", "rejected"}`` rows; ties carry no preference and are left out."""
    by_id = {s.id: s for s in samples}
    rows = []
    for c in comparisons:
        if c.preferred != "tie" and c.sample_id in by_id:
            rows.append(
                {
                    "prompt": task.initial_prompt(by_id[c.sample_id]),
                    "chosen": task.completion(c.chosen),
                    "rejected": task.completion(c.rejected),
                }
            )
    return rows


@torch.inference_mode()
def completion_logprob(model: Any, tokenizer: Any, prompt: str, completion: str) -> float:
    """Sum of the log-probabilities of the completion's tokens after the prompt."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(prompt + completion, add_special_tokens=False)["input_ids"]
    tensor = torch.tensor([ids], device=next(model.parameters()).device)
    logprobs = model(tensor).logits[0, :-1].float().log_softmax(-1)
    targets = tensor[0, 1:]
    picked = logprobs.gather(1, targets[:, None])[:, 0]
    return float(picked[len(prompt_ids) - 1 :].sum())


def preference_margin(model: Any, tokenizer: Any, rows: list[dict[str, str]]) -> float:
    """Mean of log p(chosen) - log p(rejected) over the rows: what DPO pushes up."""
    margins = [
        completion_logprob(model, tokenizer, r["prompt"], r["chosen"]) - completion_logprob(model, tokenizer, r["prompt"], r["rejected"])
        for r in rows
    ]
    return sum(margins) / len(margins)


def train_dpo(policy: ModelConfig, rows: list[dict[str, str]], config: DPOTrainingConfig, out_dir: str | Path) -> dict[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if not rows:
        raise ValueError("no preference pairs for DPO")
    out_dir = Path(out_dir)
    lm = load_model(policy, for_training=True)
    lm.tokenizer.padding_side = "right"
    work = out_dir.parent / f".{out_dir.name}.trainer"
    args = DPOConfig(
        **common_trainer_args(
            lm.device,
            work,
            config.seed,
            dtype=next(lm.model.parameters()).dtype,
            learning_rate=config.learning_rate,
            beta=config.beta,
            num_train_epochs=config.num_train_epochs,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_length=config.max_length,
            logging_steps=10,
        )
    )
    before = preference_margin(lm.model, lm.tokenizer, rows)
    # The frozen reference is loaded like the policy: TRL would look it up by the model's hub id,
    # which a local or tiny model does not have.
    reference = load_model(policy).model
    trainer = DPOTrainer(
        model=lm.model, ref_model=reference, args=args, train_dataset=Dataset.from_list(rows), processing_class=lm.tokenizer
    )
    result = trainer.train()
    after = preference_margin(trainer.model, lm.tokenizer, rows)
    metrics = {
        "pairs": len(rows),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "margin_before": before,
        "margin_after": after,
    }
    save_trained(trainer, trainer.model, lm.tokenizer, out_dir, "dpo_metrics.json", metrics, work)
    return metrics
