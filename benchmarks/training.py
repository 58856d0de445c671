"""Training throughput: ilf's SFT and reward-model training against TRL's trainers with defaults.

Same tiny model, same data, same number of steps, measured in one process. Tokens per second
counts the non-padding tokens of the examples trained on. TRL's defaults target a GPU (bf16
autocast, gradient checkpointing); ilf's trainers (``build_trainer``, ``build_reward_trainer``)
turn those off on a CPU and group examples (pairs) of similar length into a batch.

Each trainer is timed ``--repeats`` times, TRL's and ilf's in turn, each time on a freshly built
model, and the fastest run of each counts: on a shared machine a single run mostly measures what
else is running.

    python benchmarks/training.py [--steps 40] [--batch-size 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

from ilf.config import FinetuneConfig, ModelConfig  # noqa: E402
from ilf.demo import world  # noqa: E402
from ilf.models import load_model  # noqa: E402


def sft_rows(count: int) -> list[dict[str, str]]:
    """Prompt/completion pairs of mixed length, like a feedback round's refinements."""
    rng = random.Random(0)
    rows = []
    for post in world.generate_posts(count, seed=3, prefix="bench"):
        summary, _ = world.flawed_summary(post, rng)
        feedback = world.Annotator(seed=rng.randrange(10**6)).critique(post, summary)
        prompt = world.refine_prompt(post, summary, feedback.text) if rng.random() < 0.5 else world.policy_prompt(post)
        rows.append({"prompt": prompt, "completion": " " + post.reference()})
    return rows


def tokens_in(rows: list[dict[str, str]], tokenizer, keys: tuple[str, ...]) -> int:
    return sum(len(tokenizer("".join(row[k] for k in keys))["input_ids"]) for row in rows)


def timed(trainer) -> float:
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def fastest(repeats: int, build_baseline: Callable[[], Any], build_ours: Callable[[], Any]) -> tuple[float, float]:
    """Best training time of each, alternating so that both see the same background load."""
    baseline, ours = [], []
    for _ in range(repeats):
        baseline.append(timed(build_baseline()))
        ours.append(timed(build_ours()))
    return min(baseline), min(ours)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each trainer; the fastest counts")
    args = parser.parse_args()

    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

    from ilf.train.reward import RewardTrainingConfig, build_reward_trainer, load_classifier
    from ilf.train.sft import build_trainer

    model = ModelConfig(name_or_path="tiny:gpt2", device="cpu")
    rows = sft_rows(args.steps * args.batch_size)
    work = Path(tempfile.mkdtemp(prefix="ilf-train-bench-"))
    results = []

    # SFT: TRL's defaults against ilf's trainer
    tokens = tokens_in(rows, load_model(model).tokenizer, ("prompt", "completion"))

    def trl_sft() -> Any:
        lm = load_model(model, for_training=True)
        lm.tokenizer.padding_side = "right"
        trl_args = SFTConfig(
            output_dir=str(work / "trl-sft"),
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            logging_steps=10_000,
        )
        return SFTTrainer(model=lm.model, args=trl_args, train_dataset=Dataset.from_list(rows), processing_class=lm.tokenizer)

    ours_config = FinetuneConfig(per_device_train_batch_size=args.batch_size, logging_steps=10_000, trainer_args={"max_steps": args.steps})
    baseline, ours = fastest(args.repeats, trl_sft, lambda: build_trainer(model, rows, ours_config, work / "ilf-sft"))
    results.append(("SFT (prompt/completion)", tokens, baseline, ours))

    # Reward model: TRL's defaults against ilf's trainer
    pairs = [{"chosen": r["prompt"] + r["completion"], "rejected": r["prompt"] + " " + "dog " * 6} for r in rows]
    tokenizer = load_classifier(model)[1]
    tokens = tokens_in(pairs, tokenizer, ("chosen",)) + tokens_in(pairs, tokenizer, ("rejected",))

    def trl_reward() -> Any:
        classifier, tokenizer = load_classifier(model)
        trl_args = RewardConfig(
            output_dir=str(work / "trl-rm"),
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            logging_steps=10_000,
        )
        return RewardTrainer(model=classifier, args=trl_args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer)

    def ilf_reward() -> Any:
        return build_reward_trainer(
            model,
            pairs,
            RewardTrainingConfig(per_device_train_batch_size=args.batch_size),
            work / "ilf-rm",
            max_steps=args.steps,
            logging_steps=10_000,
        )

    baseline, ours = fastest(args.repeats, trl_reward, ilf_reward)
    results.append(("reward model (pairs)", tokens, baseline, ours))

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nTraining throughput, tiny:gpt2 on CPU, {args.steps} steps of {args.batch_size}, fastest of {args.repeats}; "
        f"peak RSS {rss_mb:.0f} MB"
    )
    print("| trainer | tokens | TRL defaults tok/s | ilf tok/s | ilf / TRL |")
    print("|---|---|---|---|---|")
    for name, count, base_s, ours_s in results:
        print(f"| {name} | {count} | {count / base_s:.0f} | {count / ours_s:.0f} | {base_s / ours_s:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
