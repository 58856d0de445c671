"""Supervised fine-tuning on (prompt -> target) pairs with TRL's SFTTrainer.

The loss covers the completion only: TRL masks the prompt tokens of prompt/completion data. The
target is what distinguishes the methods of the study: the selected refinements (ILF), the
initial outputs, or the human references. Everything runs through a ``transformers.Trainer``, so
``accelerate launch -m ilf finetune ...`` distributes it without changes here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ilf.config import FinetuneConfig, ModelConfig
from ilf.records import Sample, Selection
from ilf.tasks import Task
from ilf.train import common_trainer_args, save_trained, training_summary

if TYPE_CHECKING:
    from ilf.models import LoadedModel

log = logging.getLogger(__name__)

TARGETS = ("selected", "initial", "reference")


def training_pairs(
    task: Task, samples: list[Sample], target: str, selections: list[Selection] | None = None
) -> tuple[list[dict[str, str]], dict[str, int]]:
    """``{"prompt", "completion"}`` rows for the chosen target, and how many samples had none."""
    if target not in TARGETS:
        raise ValueError(f"finetune.target: expected one of {', '.join(TARGETS)}, got {target!r}")
    by_id = {s.id: s for s in samples}
    pairs: list[dict[str, str]] = []
    missing = 0
    if target == "selected":
        if selections is None:
            raise ValueError("finetune.target 'selected' needs the selection stage's output")
        for selection in selections:
            sample = by_id.get(selection.sample_id)
            if sample is None:
                raise ValueError(f"selection for unknown sample id {selection.sample_id!r}")
            if selection.text.strip():
                pairs.append({"prompt": task.initial_prompt(sample), "completion": task.completion(selection.text)})
            else:
                missing += 1
    else:
        for sample in samples:
            text = sample.initial_output if target == "initial" else (sample.references[0] if sample.references else None)
            if text and text.strip():
                pairs.append({"prompt": task.initial_prompt(sample), "completion": task.completion(text)})
            else:
                missing += 1
    return pairs, {"pairs": len(pairs), "skipped_without_target": missing}


def _sft_args(config: FinetuneConfig, lm: LoadedModel, output_dir: Path, seed: int) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        **common_trainer_args(
            lm.device,
            output_dir,
            seed,
            dtype=next(lm.model.parameters()).dtype,
            overrides=config.trainer_args,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_train_epochs,
            per_device_train_batch_size=config.per_device_train_batch_size,
            per_device_eval_batch_size=config.per_device_train_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            lr_scheduler_type=config.lr_scheduler_type,
            warmup_steps=config.warmup_steps,
            weight_decay=config.weight_decay,
            logging_steps=config.logging_steps,
            max_length=config.max_length,
            train_sampling_strategy="group_by_length",  # batches of similar length: less padding, same examples per epoch
        )
    )


def _peft_config(config: FinetuneConfig) -> Any:
    if config.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def build_trainer(
    model_config: ModelConfig,
    pairs: list[dict[str, str]],
    config: FinetuneConfig,
    work_dir: str | Path,
    seed: int = 0,
    eval_pairs: list[dict[str, str]] | None = None,
) -> Any:
    """An SFTTrainer over prompt/completion pairs (completion-only loss), not yet trained."""
    from datasets import Dataset
    from trl import SFTTrainer

    if not pairs:
        raise ValueError("no training pairs: every sample lacks the fine-tuning target")
    from ilf.models import load_model  # torch: only when it trains

    lm = load_model(model_config, for_training=True)
    if lm.is_seq2seq:
        raise ValueError(
            f"{model_config.name_or_path} is an encoder-decoder model; fine-tuning supports decoder-only "
            "models (TRL's SFTTrainer). Use a causal policy, or fine-tune the seq2seq model with transformers' Seq2SeqTrainer."
        )
    lm.tokenizer.padding_side = "right"  # training pads on the right; generation set it to the left
    return SFTTrainer(
        model=lm.model,
        args=_sft_args(config, lm, Path(work_dir), seed),
        train_dataset=Dataset.from_list(pairs),
        eval_dataset=Dataset.from_list(eval_pairs) if eval_pairs else None,
        processing_class=lm.tokenizer,
        peft_config=_peft_config(config),
    )


def finetune(
    model_config: ModelConfig,
    pairs: list[dict[str, str]],
    config: FinetuneConfig,
    out_dir: str | Path,
    seed: int = 0,
) -> dict[str, Any]:
    """Train and save the model (LoRA merged into the weights) and tokenizer to ``out_dir``."""
    out_dir = Path(out_dir)
    work_dir = out_dir.parent / f".{out_dir.name}.trainer"
    trainer = build_trainer(model_config, pairs, config, work_dir, seed)
    result = trainer.train()
    metrics: dict[str, Any] = {
        "pairs": len(pairs),
        **training_summary(trainer, result),
        "loss_history": [{"step": r["step"], "loss": r["loss"]} for r in trainer.state.log_history if "loss" in r],
    }
    save_trained(
        trainer,
        trainer.model,
        trainer.processing_class,
        out_dir,
        "train_metrics.json",
        metrics,
        work_dir,
    )
    return metrics


__all__ = ["TARGETS", "training_pairs", "build_trainer", "finetune"]
