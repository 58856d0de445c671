"""Reward models from comparisons: TRL's RewardTrainer (Bradley-Terry) on a sequence classifier.

A comparison of two outputs for one sample becomes a chosen/rejected pair of full texts (the
task's prompt followed by each output). Ties carry no preference and are left out. The trained
model scores any prompt + output; ``RewardModel.score`` batches that for best-of-N sampling, the
``reward_model`` selector and evaluation by win rate.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ilf.config import LoraConfig, ModelConfig
from ilf.models import SHAPE_PREFIX, TINY_PREFIX, resolve_device, resolve_dtype, shape_config, tiny_model
from ilf.records import Comparison, Sample
from ilf.tasks import Task
from ilf.train import common_trainer_args, save_trained

log = logging.getLogger(__name__)


@dataclass
class RewardTrainingConfig:
    learning_rate: float = 1e-4
    num_train_epochs: float = 1.0
    per_device_train_batch_size: int = 8
    max_length: int | None = 1024
    lora: LoraConfig | None = None
    seed: int = 0


def preference_pairs(task: Task, samples: list[Sample], comparisons: list[Comparison]) -> list[dict[str, str]]:
    """``{"chosen", "rejected"}`` texts (prompt + output) for every comparison that is not a tie."""
    by_id = {s.id: s for s in samples}
    pairs = []
    for number, comparison in enumerate(comparisons, start=1):
        if comparison.preferred == "tie":
            continue
        sample = by_id.get(comparison.sample_id)
        if sample is None:
            raise ValueError(f"comparison {number}: sample_id {comparison.sample_id!r} is not among the samples")
        prompt = task.initial_prompt(sample)
        pairs.append({"chosen": prompt + task.completion(comparison.chosen), "rejected": prompt + task.completion(comparison.rejected)})
    return pairs


def load_classifier(config: ModelConfig) -> tuple[Any, Any]:
    """A one-logit sequence classifier and its tokenizer (built from config for tiny:* and shape:*)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if config.name_or_path.startswith(SHAPE_PREFIX):
        model_config, tokenizer = shape_config(config.name_or_path[len(SHAPE_PREFIX) :])
        model_config.num_labels = 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            dtype = resolve_dtype(config.dtype, resolve_device(config.device), for_training=True)
            model = AutoModelForSequenceClassification.from_config(model_config, dtype=dtype)
    elif config.name_or_path.startswith(TINY_PREFIX):
        base, tokenizer = tiny_model(config.name_or_path[len(TINY_PREFIX) :], config.seed)
        import transformers

        model_cls = {"gpt2": transformers.GPT2ForSequenceClassification, "llama": transformers.LlamaForSequenceClassification}
        arch = config.name_or_path[len(TINY_PREFIX) :]
        if arch not in model_cls:
            raise ValueError(f"no tiny reward model for {config.name_or_path} (use tiny:gpt2 or tiny:llama)")
        base.config.num_labels = 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = model_cls[arch](base.config)
    else:
        from ilf import reads

        reads.note_local(config.name_or_path)
        model = AutoModelForSequenceClassification.from_pretrained(
            config.name_or_path, num_labels=1, trust_remote_code=config.trust_remote_code
        )
        tokenizer = AutoTokenizer.from_pretrained(config.name_or_path, trust_remote_code=config.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id  # the classifier reads the last non-pad token
    return model, tokenizer


class RewardModel:
    """Scores texts with a trained classifier; higher is better."""

    def __init__(self, model: Any, tokenizer: Any, device: torch.device | None = None, batch_size: int = 16) -> None:
        self.device = device or resolve_device("auto")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "right"
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 16) -> RewardModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ilf import reads

        reads.note_file(path)
        reads.note("probe", ["device", "auto"], str(resolve_device("auto")))

        return cls(
            AutoModelForSequenceClassification.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path)), batch_size=batch_size
        )

    @torch.inference_mode()
    def score(self, texts: list[str]) -> list[float]:
        # TRL's RewardTrainer appends the end-of-sequence token to every text it trains on, and the
        # score is read at the last token: a text scored without it is read at another position.
        eos = self.tokenizer.eos_token
        if eos:
            texts = [t if t.endswith(eos) else t + eos for t in texts]
        # Batches of similar length: each batch is padded to its longest text, and prompts of mixed
        # length would otherwise spend much of the forward pass on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        scores = [0.0] * len(texts)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in indices],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.tokenizer.model_max_length if self.tokenizer.model_max_length < 100_000 else 2048,
            )
            logits = self.model(**batch.to(self.device)).logits
            for i, value in zip(indices, logits[:, 0].float().cpu().tolist()):
                scores[i] = value
        return scores

    def score_completions(self, task: Task, samples: list[Sample], completions: list[list[str]]) -> list[list[float]]:
        """Scores of each sample's completions, each judged after the sample's prompt, as in training."""
        flat = self.score([task.initial_prompt(s) + task.completion(c) for s, cs in zip(samples, completions) for c in cs])
        scores, start = [], 0
        for cs in completions:
            scores.append(flat[start : start + len(cs)])
            start += len(cs)
        return scores

    def accuracy(self, pairs: list[dict[str, str]]) -> float:
        """Share of pairs whose chosen text scores above the rejected one."""
        if not pairs:
            return float("nan")
        chosen = self.score([p["chosen"] for p in pairs])
        rejected = self.score([p["rejected"] for p in pairs])
        return sum(c > r for c, r in zip(chosen, rejected)) / len(pairs)


def reward_args(config: RewardTrainingConfig, device: torch.device, output_dir: Path, **overrides: Any) -> Any:
    """TRL's RewardConfig with ilf's device settings (``common_trainer_args``); ``overrides`` win."""
    from trl import RewardConfig

    return RewardConfig(
        **common_trainer_args(
            device,
            output_dir,
            config.seed,
            overrides=overrides,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_train_epochs,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_length=config.max_length,
            logging_steps=10,
        )
    )


def pair_lengths(dataset: Any) -> list[int]:
    """The padded length each tokenized pair brings to a batch: the reward collator pads chosen and
    rejected texts together, so the longer of the two counts."""
    import pyarrow.compute as pc

    # Through Arrow: a Python loop over the token lists would copy every id of a large dataset.
    table = dataset.select_columns(["chosen_ids", "rejected_ids"]).with_format("arrow")[:]
    return pc.max_element_wise(pc.list_value_length(table["chosen_ids"]), pc.list_value_length(table["rejected_ids"])).to_pylist()


@functools.cache
def _length_grouped_reward_trainer() -> type:
    from datasets import Dataset
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl import RewardTrainer

    class LengthGroupedRewardTrainer(RewardTrainer):
        """TRL's RewardTrainer that can group pairs of similar length into a batch.

        transformers' ``group_by_length`` measures an ``input_ids`` column, which a tokenized
        preference dataset lacks (it has ``chosen_ids`` and ``rejected_ids``), so TRL's trainer
        refuses the setting: here the lengths come from the pairs themselves."""

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if (
                self.args.train_sampling_strategy != "group_by_length"
                or not isinstance(dataset, Dataset)
                or not {"chosen_ids", "rejected_ids"} <= set(dataset.column_names)
            ):
                return super()._get_train_sampler(train_dataset)
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=pair_lengths(dataset))

    return LengthGroupedRewardTrainer


def build_reward_trainer(
    model_config: ModelConfig,
    train_pairs: list[dict[str, str]],
    config: RewardTrainingConfig,
    work_dir: str | Path,
    **overrides: Any,
) -> Any:
    """A RewardTrainer over chosen/rejected pairs, not yet trained; ``overrides`` are RewardConfig
    arguments that replace ilf's.

    Pairs of similar length share a batch: a batch is padded to its longest text, and preference
    data mixes short and long prompts, so random batches spend much of their compute on padding."""
    from datasets import Dataset

    if not train_pairs:
        raise ValueError("no preference pairs to train a reward model on (every comparison was a tie?)")
    from transformers import set_seed

    # The one-logit head is new: seeding here makes it (and so the reward model) the same whatever
    # ran before in this process, e.g. in whichever cell of a study trains it first.
    set_seed(config.seed)
    model, tokenizer = load_classifier(model_config)
    device = resolve_device(model_config.device)
    args = reward_args(config, device, Path(work_dir), **{"train_sampling_strategy": "group_by_length", **overrides})
    peft_config = None
    if config.lora is not None:
        from peft import LoraConfig as PeftLoraConfig

        peft_config = PeftLoraConfig(
            r=config.lora.r,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=config.lora.target_modules,
            task_type="SEQ_CLS",
        )
    return _length_grouped_reward_trainer()(
        model=model, args=args, train_dataset=Dataset.from_list(train_pairs), processing_class=tokenizer, peft_config=peft_config
    )


def train_reward_model(
    model_config: ModelConfig,
    train_pairs: list[dict[str, str]],
    config: RewardTrainingConfig,
    out_dir: str | Path,
    eval_pairs: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Train with TRL's RewardTrainer, save the model (LoRA merged) atomically, report accuracies."""
    out_dir = Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.trainer"
    trainer = build_reward_trainer(model_config, train_pairs, config, work)
    tokenizer = trainer.processing_class
    result = trainer.train()
    scorer = RewardModel(trainer.model, tokenizer, resolve_device(model_config.device))  # a LoRA model scores as its merged form would
    metrics = {
        "pairs": len(train_pairs),
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "train_accuracy": scorer.accuracy(train_pairs),
        "eval_accuracy": scorer.accuracy(eval_pairs) if eval_pairs else None,
        "eval_pairs": len(eval_pairs or []),
    }
    save_trained(trainer, trainer.model, tokenizer, out_dir, "reward_metrics.json", metrics, work)
    return metrics
