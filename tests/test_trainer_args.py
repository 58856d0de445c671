"""The TRL arguments every ilf trainer shares (``common_trainer_args``), and the reward model's
length-grouped batches in training and scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ilf.config import FinetuneConfig, ModelConfig
from ilf.train import common_trainer_args
from ilf.train.reward import RewardTrainingConfig, build_reward_trainer, load_classifier, pair_lengths, reward_args
from ilf.train.sft import build_trainer

TINY = ModelConfig(name_or_path="tiny:gpt2", device="cpu", seed=1)
PAIRS = [{"prompt": f"Title: case {i}\n\nTL;DR:", "completion": f" case {i}."} for i in range(4)]


def test_cpu_turns_off_trls_gpu_defaults() -> None:
    args = common_trainer_args(torch.device("cpu"), Path("/tmp/work"), 7)
    assert args["bf16"] is False and args["gradient_checkpointing"] is False and args["use_cpu"] is True
    assert args["output_dir"] == "/tmp/work" and args["seed"] == 7
    assert args["save_strategy"] == "no" and args["report_to"] == "none" and args["disable_tqdm"] is True


def test_bf16_only_on_a_cuda_device_that_supports_it_with_floating_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    on_gpu = common_trainer_args("cuda", "w", 0, dtype=torch.float32)
    assert on_gpu["bf16"] is True and on_gpu["use_cpu"] is False and on_gpu["gradient_checkpointing"] is False
    assert common_trainer_args("cuda:1", "w", 0)["bf16"] is True  # weight dtype unknown: floating assumed
    assert common_trainer_args("cuda", "w", 0, dtype=torch.int8)["bf16"] is False  # quantized weights
    assert common_trainer_args("cpu", "w", 0, dtype=torch.float32)["bf16"] is False
    assert common_trainer_args("mps", "w", 0)["bf16"] is False and common_trainer_args("mps", "w", 0)["use_cpu"] is False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert common_trainer_args("cuda", "w", 0, dtype=torch.float32)["bf16"] is False


def test_method_arguments_add_to_the_shared_ones_and_overrides_win() -> None:
    args = common_trainer_args(
        "cpu", "w", 0, overrides={"gradient_checkpointing": True, "learning_rate": 0.5, "bf16": True}, learning_rate=1e-3, beta=0.2
    )
    assert args["gradient_checkpointing"] is True and args["bf16"] is True
    assert args["learning_rate"] == 0.5  # the user's trainer_args beat the method's own setting
    assert args["beta"] == 0.2 and args["use_cpu"] is True


def test_sft_config_takes_the_shared_settings_and_the_users_trainer_args(tmp_path: Path) -> None:
    trainer = build_trainer(TINY, PAIRS, FinetuneConfig(per_device_train_batch_size=2, logging_steps=3), tmp_path / "a")
    args = trainer.args
    assert (args.bf16, args.gradient_checkpointing, args.use_cpu) == (False, False, True)  # TRL would default to True, True
    assert args.train_sampling_strategy == "group_by_length" and args.logging_steps == 3 and args.report_to == []
    custom = FinetuneConfig(
        per_device_train_batch_size=2, trainer_args={"gradient_checkpointing": True, "seed": 11, "train_sampling_strategy": "random"}
    )
    args = build_trainer(TINY, PAIRS, custom, tmp_path / "b", seed=3).args
    assert args.gradient_checkpointing is True and args.seed == 11 and args.train_sampling_strategy == "random"


def test_reward_args_turn_off_trls_gpu_defaults_and_take_overrides(tmp_path: Path) -> None:
    config = RewardTrainingConfig(learning_rate=2e-4, per_device_train_batch_size=4, max_length=64, seed=5)
    args = reward_args(config, torch.device("cpu"), tmp_path)
    assert (args.bf16, args.gradient_checkpointing, args.use_cpu) == (False, False, True)
    assert (args.learning_rate, args.per_device_train_batch_size, args.max_length, args.seed) == (2e-4, 4, 64, 5)
    assert args.save_strategy == "no"
    args = reward_args(config, torch.device("cpu"), tmp_path, gradient_checkpointing=True, seed=9)
    assert args.gradient_checkpointing is True and args.seed == 9


class _Stop(Exception):
    """Raised by a stand-in config class, so that a trainer stops once it has built its arguments."""


def _capture(monkeypatch: pytest.MonkeyPatch, name: str) -> dict[str, Any]:
    import trl

    captured: dict[str, Any] = {}

    def config(**kwargs: Any) -> None:
        captured.update(kwargs)
        raise _Stop

    monkeypatch.setattr(trl, name, config)
    return captured


def test_dpo_and_rloo_build_their_configs_with_the_shared_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ilf.train.online import RLOOTrainingConfig, train_rloo
    from ilf.train.preference import DPOTrainingConfig, train_dpo

    dpo = _capture(monkeypatch, "DPOConfig")
    with pytest.raises(_Stop):
        train_dpo(TINY, [{"prompt": "p", "chosen": " a", "rejected": " b"}], DPOTrainingConfig(beta=0.3, seed=4), tmp_path / "dpo")
    assert (dpo["bf16"], dpo["gradient_checkpointing"], dpo["use_cpu"], dpo["save_strategy"]) == (False, False, True, "no")
    assert dpo["beta"] == 0.3 and dpo["seed"] == 4 and dpo["output_dir"] == str(tmp_path / ".dpo.trainer")

    classifier, tokenizer = load_classifier(TINY)
    classifier.save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    rloo = _capture(monkeypatch, "RLOOConfig")
    with pytest.raises(_Stop):
        train_rloo(TINY, ["p"], tmp_path / "rm", RLOOTrainingConfig(max_steps=2, seed=6), tmp_path / "rloo")
    assert (rloo["bf16"], rloo["gradient_checkpointing"], rloo["use_cpu"], rloo["report_to"]) == (False, False, True, "none")
    assert rloo["max_steps"] == 2 and rloo["seed"] == 6 and rloo["logging_steps"] == 1


def _mixed_pairs() -> list[dict[str, str]]:
    """32 short and 32 long pairs, interleaved, and one too long for max_length."""
    short = [{"chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(32)]
    long = [{"chosen": f"a long answer {i} " * 12, "rejected": f"a long wrong answer {i} " * 10} for i in range(32)]
    pairs = [p for two in zip(short, long) for p in two]
    return pairs + [{"chosen": "far too long " * 200, "rejected": "no"}]


def _batches(trainer: Any) -> tuple[int, int]:
    """Padded tokens over one epoch, and how many batches mix short and long pairs."""
    padded = mixed = 0
    for batch in trainer.get_train_dataloader():
        texts = batch["attention_mask"].sum(1)
        padded += batch["input_ids"].numel()
        mixed += bool((texts < 10).any() and (texts > 30).any())
    return padded, mixed


def test_reward_trainer_batches_pairs_of_similar_length(tmp_path: Path) -> None:
    config = RewardTrainingConfig(per_device_train_batch_size=4, max_length=200)
    trainer = build_reward_trainer(TINY, _mixed_pairs(), config, tmp_path / "rm")
    assert (trainer.args.bf16, trainer.args.gradient_checkpointing) == (False, False)
    assert len(trainer.train_dataset) == 64  # the overlong pair was filtered out, and the lengths follow
    lengths = pair_lengths(trainer.train_dataset)
    assert lengths == [max(len(c), len(r)) for c, r in zip(trainer.train_dataset["chosen_ids"], trainer.train_dataset["rejected_ids"])]
    grouped, grouped_mixed = _batches(trainer)
    # transformers sorts mega-batches of 16 pairs (a quarter of the data) by length, so at most the
    # batch on the short/long boundary of each mixes the two.
    assert grouped_mixed <= 4

    plain = build_reward_trainer(TINY, _mixed_pairs(), config, tmp_path / "rm", train_sampling_strategy="random", seed=0)
    padded, mixed = _batches(plain)
    assert mixed > 8 and grouped < 0.8 * padded, (grouped, padded)


def test_reward_model_scores_in_length_order_but_returns_them_in_input_order() -> None:
    from ilf.train.reward import RewardModel

    scorer = RewardModel(*load_classifier(TINY), device=torch.device("cpu"), batch_size=2)
    texts = ["short", "a much much longer text than the others " * 3, "mid length text", "x", "another long one " * 4]
    alone = [scorer.score([text])[0] for text in texts]
    assert scorer.score(texts) == pytest.approx(alone, abs=1e-5)
    assert len(set(alone)) == len(alone)  # distinct scores, so a permutation would show
