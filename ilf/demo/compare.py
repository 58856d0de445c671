"""``ilf compare``: ILF and the ranking-RLHF baselines side by side on the controlled world.

Every method starts from the same pretrained policy, sees the same training posts and is scored
on the same held-out posts:

    ilf             fine-tuned on MiniLM-selected refinements of its own summaries (one ILF round)
    sft_initial     fine-tuned on its own summaries
    sft_reference   fine-tuned on the reference summaries
    best_of_n       the base policy, keeping the reward model's favourite of N samples
    dpo             DPO on the annotator's comparisons
    rloo            online RL (RLOO) against the reward model
    ilf_best_of_n   the ILF policy with reward-model best-of-N (the published best combination)

The reward model is trained on comparisons the simulated annotator makes between pairs of the
policy's samples, the same kind of data people give in a pairwise Label Studio project. Besides
the fact metrics and ROUGE-L, each method gets a win rate against the reference summaries as the
reward model judges them (a tie counts one half), and the outputs are written as a Label Studio
ranking import for a human evaluation of the same systems.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ilf.config import ModelConfig, SamplingConfig
from ilf.demo import world
from ilf.demo.models import PretrainConfig
from ilf.demo.study import VERBATIM, StudyConfig, _sampling, feedback_round, finetune_world_policy, world_model
from ilf.compare import win_rate
from ilf.evaluation import format_table, mean_and_sem, rouge_l
from ilf.files import atomic_write_json, atomic_write_text
from ilf.generate import generate_outputs
from ilf.models import LoadedModel, load_model
from ilf.records import Comparison, Output, Sample, write_records
from ilf.schema import build
from ilf.selection.embedding import EmbeddingSelector

log = logging.getLogger(__name__)

ALL_METHODS = ("before", "ilf", "sft_initial", "sft_reference", "best_of_n", "dpo", "rloo", "ilf_best_of_n")


@dataclass
class CompareConfig:
    name: str = "compare_offline"
    seed: int = 0
    train_posts: int = 100
    test_posts: int = 300
    methods: list[str] = field(default_factory=lambda: list(ALL_METHODS))
    samples_per_post: int = 4  # policy samples compared pairwise by the annotator for the reward model
    best_of_n: int = 8
    reward_learning_rate: float = 1e-3
    reward_epochs: float = 2.0
    dpo_learning_rate: float = 1e-4
    dpo_beta: float = 0.1
    rloo_steps: int = 40
    rloo_learning_rate: float = 1e-4
    cache_dir: str | None = None  # reuse a pretrained world model (e.g. runs/demo/cache)
    pretrain_steps: int = 1500
    study: dict[str, Any] = field(default_factory=dict)  # overrides of the study's fine-tuning settings


def load_compare_config(path: str | Path, raw: dict[str, Any] | None = None) -> CompareConfig:
    from ilf.config import ConfigError

    if raw is None:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    config = build(CompareConfig, raw, ConfigError, path)
    unknown = [m for m in config.methods if m not in ALL_METHODS]
    if unknown:
        raise ConfigError(path, None, "methods", f"unknown method(s) {', '.join(unknown)} (choose from {', '.join(ALL_METHODS)})")
    return config


def _texts(lm: LoadedModel, prompts: list[str], n: int, sampling: SamplingConfig, seed: int, desc: str) -> list[list[str]]:
    outputs, _ = generate_outputs(lm, VERBATIM, prompts, n, sampling, seed, desc=desc)
    return [outputs[i] for i in range(len(prompts))]


def annotator_comparisons(lm: LoadedModel, posts: list[world.Post], per_post: int, sampling: SamplingConfig,
                          annotator: world.Annotator, seed: int) -> list[Comparison]:
    """The annotator's preference between every pair of ``per_post`` policy samples per post."""
    samples = _texts(lm, [world.policy_prompt(p) for p in posts], per_post, sampling, seed, "samples to compare")
    comparisons = []
    for post, texts in zip(posts, samples):
        for a, b in itertools.combinations(dict.fromkeys(texts), 2):
            comparisons.append(Comparison(sample_id=post.id, a=a, b=b, preferred=annotator.prefers(post, a, b),
                                          annotator="simulated", source="facts-world"))
    return comparisons


def run_compare(config: CompareConfig, run_dir: str | Path) -> dict[str, Any]:
    from ilf.labelstudio.sync import build_tasks
    from ilf.train.online import RLOOTrainingConfig, train_rloo
    from ilf.train.preference import DPOTrainingConfig, dpo_pairs, train_dpo
    from ilf.train.reward import RewardModel, RewardTrainingConfig, preference_pairs, train_reward_model

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("ilf.models").setLevel(logging.WARNING)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    study = StudyConfig(**{**{"seeds": 1}, **config.study}, pretrain=PretrainConfig(steps=config.pretrain_steps))
    cache = Path(config.cache_dir) if config.cache_dir else run_dir / "cache"
    base, _, _ = world_model(cache, study.pretrain)
    timings["world model"] = time.perf_counter() - clock
    base_model = ModelConfig(name_or_path=str(base), device="cpu")
    lm = load_model(base_model)
    sampling = _sampling(study)
    rng_seed = 5000 + config.seed
    posts = world.generate_posts(config.train_posts, seed=rng_seed, prefix="train")
    test = world.generate_posts(config.test_posts, seed=99, prefix="test")
    held = world.generate_posts(60, seed=rng_seed + 1, prefix="heldcomp")
    task = dataclasses.replace(VERBATIM, initial_template=world.POLICY_PROMPT)  # the world's prompts as a Task
    samples = {p.id: Sample(id=p.id, inputs={"post": p.text()}, references=[p.reference()]) for p in [*posts, *test, *held]}
    annotator = world.Annotator(noise=study.annotator_noise, seed=rng_seed)

    # Comparisons and the reward model
    clock = time.perf_counter()
    comparisons = annotator_comparisons(lm, posts, config.samples_per_post, sampling, annotator, rng_seed)
    held_comparisons = annotator_comparisons(lm, held, config.samples_per_post, sampling, annotator, rng_seed + 1)
    write_records(run_dir / "comparisons.jsonl", comparisons)
    reward_dir = run_dir / "reward_model"
    reward_metrics = train_reward_model(
        base_model, preference_pairs(task, list(samples.values()), comparisons),
        RewardTrainingConfig(learning_rate=config.reward_learning_rate, num_train_epochs=config.reward_epochs,
                             per_device_train_batch_size=16, max_length=None, seed=config.seed),
        reward_dir, eval_pairs=preference_pairs(task, list(samples.values()), held_comparisons),
    )
    reward = RewardModel.load(reward_dir, batch_size=64)
    timings["reward model"] = time.perf_counter() - clock

    test_samples = [samples[p.id] for p in test]
    refs = [row[0] for row in reward.score_completions(task, test_samples, [[p.reference()] for p in test])]

    def evaluate_texts(texts: list[str]) -> dict[str, float]:
        scores = [world.score_summary(p, t) for p, t in zip(test, texts)]
        win, win_sem = win_rate([row[0] for row in reward.score_completions(task, test_samples, [[t] for t in texts])], refs)
        recall, recall_sem = mean_and_sem([s.recall for s in scores])
        precision, precision_sem = mean_and_sem([s.precision for s in scores])
        rouge, rouge_sem = mean_and_sem([rouge_l(t, [p.reference()]) for p, t in zip(test, texts)])
        return {"win_rate": win, "win_rate_sem": win_sem, "recall": recall, "recall_sem": recall_sem,
                "precision": precision, "precision_sem": precision_sem, "rougeL": rouge, "rougeL_sem": rouge_sem}

    def generate_test(model: LoadedModel, n: int = 1, desc: str = "evaluate") -> list[str]:
        if n == 1:
            return [t[0] for t in _texts(model, [world.policy_prompt(p) for p in test], 1, sampling, rng_seed + 7, desc)]
        candidates = _texts(model, [world.policy_prompt(p) for p in test], n, sampling, rng_seed + 8, desc)
        scores = reward.score_completions(task, test_samples, candidates)
        return [cs[max(range(n), key=row.__getitem__)] for cs, row in zip(candidates, scores)]

    rows: dict[str, dict[str, float]] = {}
    outputs: list[Output] = []

    def record(method: str, texts: list[str]) -> None:
        rows[method] = evaluate_texts(texts)
        outputs.extend(Output(sample_id=p.id, text=t, system=method) for p, t in zip(test, texts))
        log.info("%s: recall %.3f, win rate %.3f", method, rows[method]["recall"], rows[method]["win_rate"])

    def sft(targets: list[str], name: str) -> LoadedModel:
        pairs = [{"prompt": world.policy_prompt(p), "completion": " " + t} for p, t in zip(posts, targets) if t.strip()]
        return finetune_world_policy(base, pairs, study, rng_seed, run_dir / ".work" / name)

    clock = time.perf_counter()
    methods = [m for m in ALL_METHODS if m in config.methods]
    if "before" in methods:
        record("before", generate_test(lm))
    if "best_of_n" in methods:
        record("best_of_n", generate_test(lm, config.best_of_n, "best-of-n"))
    round_ = None
    if {"ilf", "ilf_best_of_n"} & set(methods):
        round_ = feedback_round(lm, posts, study, rng_seed, EmbeddingSelector(), config.seed)
        ilf_policy = sft(round_.embedding_pick, "ilf")
        if "ilf" in methods:
            record("ilf", generate_test(ilf_policy))
        if "ilf_best_of_n" in methods:
            record("ilf_best_of_n", generate_test(ilf_policy, config.best_of_n, "ilf best-of-n"))
    if "sft_initial" in methods:
        # the feedback round's initial summaries when it ran: same model, prompts, sampling and seed
        initial = round_.initial if round_ is not None else [
            t[0] for t in _texts(lm, [world.policy_prompt(p) for p in posts], 1, sampling, rng_seed, "initial")]
        record("sft_initial", generate_test(sft(initial, "sft_initial")))
    if "sft_reference" in methods:
        record("sft_reference", generate_test(sft([p.reference() for p in posts], "sft_reference")))
    if "dpo" in methods:
        dpo_dir = run_dir / ".work" / "dpo"
        train_dpo(base_model, dpo_pairs(task, list(samples.values()), comparisons),
                  DPOTrainingConfig(learning_rate=config.dpo_learning_rate, beta=config.dpo_beta, num_train_epochs=1,
                                    per_device_train_batch_size=16, max_length=None, seed=config.seed), dpo_dir)
        record("dpo", generate_test(load_model(ModelConfig(name_or_path=str(dpo_dir), device="cpu"))))
    if "rloo" in methods:
        rloo_dir = run_dir / ".work" / "rloo"
        train_rloo(base_model,
                   [world.policy_prompt(p) for p in posts], reward_dir,
                   RLOOTrainingConfig(learning_rate=config.rloo_learning_rate, num_generations=4, max_completion_length=study.max_new_tokens,
                                      per_device_train_batch_size=16, max_steps=config.rloo_steps, temperature=study.temperature,
                                      seed=config.seed), rloo_dir)
        record("rloo", generate_test(load_model(ModelConfig(name_or_path=str(rloo_dir), device="cpu"))))
    timings["methods"] = time.perf_counter() - clock

    shutil.rmtree(run_dir / ".work", ignore_errors=True)
    rows = {m: rows[m] for m in ALL_METHODS if m in rows}  # the table in a fixed order
    columns = ("win_rate", "recall", "precision", "rougeL")
    table = format_table(rows, columns=columns)
    write_records(run_dir / "outputs.jsonl", outputs)
    ranking = build_tasks("ranking", [samples[p.id] for p in test],
                          outputs + [Output(sample_id=p.id, text=p.reference(), system="reference") for p in test], seed=config.seed)
    atomic_write_text(run_dir / "labelstudio_ranking.json", json.dumps(ranking, ensure_ascii=False))
    result = {"config": asdict(config), "reward_model": reward_metrics, "systems": rows, "table": table, "timings": timings}
    atomic_write_json(run_dir / "compare.json", result)
    _plot(rows, run_dir / "compare.png")
    report = (f"# {config.name}: {len(rows)} methods, {config.train_posts} training posts, {config.test_posts} held-out posts\n\n"
              f"{table}\n\nreward model: validation accuracy {reward_metrics['eval_accuracy']:.3f} on {reward_metrics['eval_pairs']} "
              f"held-out comparisons (train {reward_metrics['train_accuracy']:.3f}, {reward_metrics['pairs']} pairs)\n\n"
              "win_rate: share of held-out posts where the reward model scores the method's summary above the reference "
              "(a tie counts one half). recall / precision: salient facts stated / stated facts that are true. ± standard errors "
              "over posts.\n\nFor a human evaluation of the same outputs: import labelstudio_ranking.json into a Label Studio "
              "project with the ranking template (`ilf labelstudio push` builds the same tasks).\n\n"
              "Timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + "\n\n![methods](compare.png)\n")
    atomic_write_text(run_dir / "compare.md", report)
    result["report"] = report
    return result


def _plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric in zip(axes, ("recall", "win_rate")):
        ax.bar(range(len(names)), [rows[n][metric] for n in names], yerr=[rows[n][f"{metric}_sem"] for n in names],
               color="#1f5fbf", capsize=3)
        ax.set_xticks(range(len(names)), [n.replace("_", "\n") for n in names], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(metric.replace("_", " ") + (" against the references (reward model)" if metric == "win_rate" else ""))
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


__all__ = ["CompareConfig", "ALL_METHODS", "load_compare_config", "run_compare", "annotator_comparisons"]
