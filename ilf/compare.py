"""``ilf compare`` on any dataset: ILF and the ranking-RLHF baselines on one evaluation.

The config names a run config (data, task, policy, refiner, selection, fine-tuning: the ILF round)
and the methods to compare. Every method starts from the same policy and is evaluated on the same
held-out samples: ROUGE against the references, and a win rate against the references as judged
by a reward model trained on the dataset's comparisons (SLF5K's A/B fields, a Label Studio
pairwise or ranking export). The controlled world has its own richer version in
``ilf.demo.compare`` (``world: facts``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ilf.config import ConfigError, LoraConfig, ModelConfig, RunConfig, load_config
from ilf.evaluation import format_table, mean_and_sem, summarize_outputs
from ilf.files import atomic_write_json, atomic_write_text
from ilf.records import Comparison, Output, Sample, read_records, write_records
from ilf.schema import build

log = logging.getLogger(__name__)

METHODS = ("before", "ilf", "sft_initial", "sft_reference", "best_of_n", "dpo", "rloo", "ilf_best_of_n")


@dataclass
class DataCompareConfig:
    name: str = "compare"
    run_config: str = "experiments/slf5k_100.yaml"
    overrides: list[str] = field(default_factory=list)  # --set style, applied to run_config
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    reward_model: ModelConfig | None = None  # default: the policy with a one-logit head
    reward_lora: LoraConfig | None = None  # train the reward model as a LoRA adapter (merged when saved)
    reward_learning_rate: float = 1e-5
    reward_epochs: float = 1.0
    reward_batch_size: int = 8
    reward_validation_share: float = 0.1
    best_of_n: int = 16
    dpo_learning_rate: float = 5e-7
    dpo_beta: float = 0.1
    rloo_steps: int = 200
    rloo_learning_rate: float = 1e-6
    batch_size: int = 8


def win_rate(scores: list[float], references: list[float]) -> tuple[float, float]:
    """Share (and its standard error) of samples whose score beats the reference's; a tie counts half."""
    return mean_and_sem([1.0 if m > r else 0.5 if m == r else 0.0 for m, r in zip(scores, references)])


def load_any_compare_config(path: str | Path) -> Any:
    """A controlled-world compare config (``world: facts``, the default) or a dataset one (``run_config``)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ConfigError(path, None, None, "the top level must be a mapping")
    if "run_config" in raw:
        config = build(DataCompareConfig, raw, ConfigError, path)
        unknown = [m for m in config.methods if m not in METHODS]
        if unknown:
            raise ConfigError(path, None, "methods", f"unknown method(s) {', '.join(unknown)} (choose from {', '.join(METHODS)})")
        return config
    from ilf.demo.compare import load_compare_config

    raw.pop("world", None)
    return load_compare_config(path, raw)


def run_data_compare(config: DataCompareConfig, run_dir: str | Path) -> dict[str, Any]:
    from ilf.best_of_n import best_of_n
    from ilf.labelstudio.sync import build_tasks
    from ilf.pipeline import Pipeline
    from ilf.steps import evaluate_model
    from ilf.train.online import RLOOTrainingConfig, train_rloo
    from ilf.train.preference import DPOTrainingConfig, dpo_pairs, train_dpo
    from ilf.train.reward import RewardModel, RewardTrainingConfig, preference_pairs, train_reward_model
    from ilf.train.sft import finetune, training_pairs

    run_dir = Path(run_dir)
    run: RunConfig = load_config(config.run_config, config.overrides)
    methods = [m for m in METHODS if m in config.methods]

    # The ILF round itself, resumable like any `ilf run`; its data stage also gives the comparisons.
    pipeline = Pipeline(run, run_dir / "ilf")
    pipeline.run(until="finetune" if {"ilf", "ilf_best_of_n"} & set(methods) else "data")
    paths = pipeline.paths
    task = pipeline.task
    samples = read_records(paths.samples, Sample)
    held_out = read_records(paths.eval_samples, Sample)
    held_out = [s for s in held_out if s.references]
    if not held_out:
        raise ValueError(f"{paths.eval_samples}: no evaluation samples with references")
    comparisons = read_records(paths.comparisons, Comparison)
    all_samples = samples + held_out

    # The reward model, on the dataset's comparisons (a share held out for its accuracy).
    pairs = preference_pairs(task, all_samples, comparisons)
    random.Random(run.seed).shuffle(pairs)
    cut = int(len(pairs) * (1 - config.reward_validation_share))
    reward_dir = run_dir / "reward_model"
    reward_metrics = train_reward_model(
        config.reward_model or run.policy, pairs[:cut],
        RewardTrainingConfig(learning_rate=config.reward_learning_rate, num_train_epochs=config.reward_epochs,
                             per_device_train_batch_size=config.reward_batch_size, max_length=run.finetune.max_length,
                             lora=config.reward_lora, seed=run.seed),
        reward_dir, eval_pairs=pairs[cut:] or None,
    )
    reward = RewardModel.load(reward_dir, batch_size=config.batch_size)
    references = [row[0] for row in reward.score_completions(task, held_out, [[s.references[0]] for s in held_out])]

    rows: dict[str, dict[str, Any]] = {}
    outputs: list[Output] = []
    sampling = run.evaluation.sampling

    def record(method: str, produced: list[Output]) -> None:
        texts = [o.text for o in produced]
        metrics = summarize_outputs(texts, [s.references for s in held_out])
        mine = [row[0] for row in reward.score_completions(task, held_out, [[t] for t in texts])]
        win, sem = win_rate(mine, references)
        rows[method] = {"win_rate": win, "win_rate_sem": sem, **metrics}
        outputs.extend(dataclasses.replace(o, system=method) for o in produced)

    def evaluate(model: ModelConfig, method: str) -> None:
        produced, _ = evaluate_model(model, held_out, task, sampling, run.seed, method)
        record(method, produced)

    tuned = dataclasses.replace(run.policy, name_or_path=str(paths.model), adapter=None, backend="local")
    if "before" in methods:
        evaluate(run.policy, "before")
    if "ilf" in methods:
        evaluate(tuned, "ilf")
    for target in ("initial", "reference"):
        method = f"sft_{target}"
        if method in methods:
            target_pairs, _ = training_pairs(task, samples, target)
            finetune(run.policy, target_pairs, run.finetune, run_dir / method, run.seed)
            evaluate(dataclasses.replace(run.policy, name_or_path=str(run_dir / method), adapter=None, backend="local"), method)
    for method, policy in (("best_of_n", run.policy), ("ilf_best_of_n", tuned)):
        if method in methods:
            record(method, best_of_n(policy, reward, task, held_out, config.best_of_n, run.refine.sampling, run.seed, method).outputs)
    if "dpo" in methods:
        train_dpo(run.policy, dpo_pairs(task, all_samples, comparisons),
                  DPOTrainingConfig(learning_rate=config.dpo_learning_rate, beta=config.dpo_beta, per_device_train_batch_size=config.batch_size,
                                    max_length=run.finetune.max_length, seed=run.seed), run_dir / "dpo")
        evaluate(dataclasses.replace(run.policy, name_or_path=str(run_dir / "dpo"), adapter=None, backend="local"), "dpo")
    if "rloo" in methods:
        train_rloo(run.policy, [task.initial_prompt(s) for s in samples], reward_dir,
                   RLOOTrainingConfig(learning_rate=config.rloo_learning_rate, max_completion_length=run.refine.sampling.max_new_tokens,
                                      per_device_train_batch_size=config.batch_size, max_steps=config.rloo_steps, seed=run.seed),
                   run_dir / "rloo")
        evaluate(dataclasses.replace(run.policy, name_or_path=str(run_dir / "rloo"), adapter=None, backend="local"), "rloo")

    rows = {m: rows[m] for m in METHODS if m in rows}  # the table in a fixed order
    columns = ("win_rate", "rouge1", "rouge2", "rougeL", "mean_words")
    table = format_table(rows, columns=columns)
    write_records(run_dir / "outputs.jsonl", outputs)
    ranking = build_tasks("ranking", held_out, outputs + [Output(s.id, s.references[0], "reference") for s in held_out], seed=run.seed)
    atomic_write_text(run_dir / "labelstudio_ranking.json", json.dumps(ranking, ensure_ascii=False))
    result = {"config": dataclasses.asdict(config), "reward_model": reward_metrics, "systems": rows, "table": table}
    atomic_write_json(run_dir / "compare.json", result)
    accuracy = reward_metrics["eval_accuracy"]
    report = (f"# {config.name}: {len(rows)} methods on {len(held_out)} held-out samples\n\n{table}\n\n"
              f"reward model: {reward_metrics['pairs']} training pairs, validation accuracy "
              f"{'n/a' if accuracy is None else f'{accuracy:.3f}'} on {reward_metrics['eval_pairs']} pairs\n\n"
              "win_rate: share of held-out samples where the reward model scores the method's output above the first "
              "reference (a tie counts one half); ± standard errors over samples.\n")
    atomic_write_text(run_dir / "compare.md", report)
    for leftover in run_dir.glob(".*.trainer"):
        shutil.rmtree(leftover, ignore_errors=True)
    result["report"] = report
    return result
