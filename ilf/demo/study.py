"""The controlled study: one ILF round against its baselines, on the same samples, over seeds.

For each seed: the policy writes a summary of each training post; the simulated annotator
critiques it; the refiner writes N refinements with the feedback (and N without, for the
ablation); MiniLM picks the refinement closest to the feedback (and a seeded random pick stands
beside it). Then, for each data size, the policy is fine-tuned on

    ilf_embedding      the embedding-selected refinements (ILF)
    ilf_random         randomly selected refinements
    refine_no_feedback refinements written without the feedback (random pick)
    sft_initial        its own initial summaries
    sft_reference      the reference summaries

and every model is evaluated on the same held-out posts by salient-fact recall, precision and
ROUGE-L. The selection hit rate says how often a selector picked a refinement that does what the
feedback asked; the refiner's incorporation rate says how often any one refinement does.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ilf.config import FinetuneConfig, ModelConfig, SamplingConfig, fingerprint
from ilf.demo import world
from ilf.demo.models import PretrainConfig, pretrain
from ilf.evaluation import rouge_l
from ilf.files import atomic_write_json, atomic_write_text
from ilf.generate import generate_outputs
from ilf.models import LoadedModel, load_model
from ilf.records import Sample
from ilf.selection import SelectionItem
from ilf.selection.embedding import EmbeddingSelector
from ilf.selection.random_choice import RandomSelector
from ilf.tasks.base import TemplateTask

log = logging.getLogger(__name__)

METHODS = ("before", "ilf_embedding", "ilf_random", "refine_no_feedback", "sft_initial", "sft_reference")
TRAINED = METHODS[1:]
# The world's text is already clean: keep generations as they are, up to the end-of-text token.
VERBATIM = TemplateTask(stop_at_newline=False, drop_unfinished_sentence=False)


@dataclass
class StudyConfig:
    seeds: int = 3
    sizes: tuple[int, ...] = (100, 300)
    test_posts: int = 500
    num_candidates: int = 5
    temperature: float = 0.7
    annotator_noise: float = 0.1
    finetune_epochs: float = 5.0
    finetune_learning_rate: float = 5e-4
    finetune_batch_size: int = 32
    max_new_tokens: int = 20  # three facts of six tokens, and the end
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)


def quick_config() -> StudyConfig:
    """A reduced study for CI and a first look: one seed, one size, fewer test posts, a short pretraining."""
    return StudyConfig(seeds=1, sizes=(100,), test_posts=100, finetune_epochs=2.0,
                       pretrain=PretrainConfig(steps=120, examples=4000))


def _sampling(config: StudyConfig, batch_size: int = 512) -> SamplingConfig:
    return SamplingConfig(do_sample=True, temperature=config.temperature, top_p=1.0,
                          max_new_tokens=config.max_new_tokens, batch_size=batch_size, max_resamples=0)


def world_model(cache_dir: Path, config: PretrainConfig) -> tuple[Path, dict[str, Any], bool]:
    """The pretrained policy/refiner, trained on first use and cached by its config."""
    path = cache_dir / f"world-model-{fingerprint(asdict(config))}"
    if (path / "config.json").exists():
        return path, json.loads((path / "pretrain_metrics.json").read_text()), True
    log.info("training the demo's policy and refiner from scratch (%d steps; cached for later runs)", config.steps)
    return path, pretrain(config, path), False


def _loaded(model: Any, tokenizer: Any) -> LoadedModel:
    import torch

    tokenizer.padding_side = "left"
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, is_seq2seq=False, device=torch.device("cpu"), name="world-model")


def evaluate(lm: LoadedModel, posts: list[world.Post], config: StudyConfig, seed: int) -> dict[str, float]:
    outputs, _ = generate_outputs(lm, VERBATIM, [world.policy_prompt(p) for p in posts], 1, _sampling(config), seed, desc="evaluate")
    scores = [world.score_summary(p, outputs[i][0]) for i, p in enumerate(posts)]
    return {
        "recall": statistics.fmean(s.recall for s in scores),
        "precision": statistics.fmean(s.precision for s in scores),
        "rougeL": statistics.fmean(rouge_l(outputs[i][0], [p.reference()]) for i, p in enumerate(posts)),
        "facts_stated": statistics.fmean(s.stated for s in scores),
    }


def finetune_world_policy(base: Path, pairs: list[dict[str, str]], config: StudyConfig, seed: int, work: Path) -> LoadedModel:
    """Fine-tune the world model on prompt/completion pairs with the study's settings."""
    from transformers.trainer_callback import PrinterCallback

    from ilf.train.sft import build_trainer

    finetune = FinetuneConfig(learning_rate=config.finetune_learning_rate, num_train_epochs=config.finetune_epochs,
                              per_device_train_batch_size=config.finetune_batch_size, max_length=None, logging_steps=10_000,
                              lr_scheduler_type="constant",
                              # every world example has about the same length: nothing to gain from grouping
                              trainer_args={"optim": "adamw_torch_fused", "train_sampling_strategy": "random"})
    trainer = build_trainer(ModelConfig(name_or_path=str(base), device="cpu"), pairs, finetune, work, seed=seed)
    trainer.remove_callback(PrinterCallback)  # many fine-tunes: the caller's own bar reports progress
    trainer.train()
    return _loaded(trainer.model, trainer.processing_class)


@dataclass
class FeedbackRound:
    initial: list[str]
    feedback: list[world.SimulatedFeedback]
    refinements: list[list[str]]
    embedding_pick: list[str]
    random_pick: list[str]


def feedback_round(lm: LoadedModel, posts: list[world.Post], config: StudyConfig, rng_seed: int,
                   embedder: EmbeddingSelector, seed: int) -> FeedbackRound:
    """Initial summaries, the annotator's critiques, N refinements each, and the MiniLM and random picks."""
    sampling = _sampling(config)
    initial, _ = generate_outputs(lm, VERBATIM, [world.policy_prompt(p) for p in posts], 1, sampling, rng_seed, desc="initial")
    initial_texts = [initial[i][0] for i in range(len(posts))]
    annotator = world.Annotator(noise=config.annotator_noise, seed=rng_seed)
    feedback = [annotator.critique(p, y) for p, y in zip(posts, initial_texts)]
    n = config.num_candidates
    refined, _ = generate_outputs(lm, VERBATIM, [world.refine_prompt(p, y, f.text) for p, y, f in zip(posts, initial_texts, feedback)],
                                  n, sampling, rng_seed + 1, desc="refine")
    with_fb = [refined[i] for i in range(len(posts))]
    items = [SelectionItem(sample=Sample(id=p.id, inputs={"post": p.text()}), output=y, feedback=f.text, candidates=with_fb[i])
             for i, (p, y, f) in enumerate(zip(posts, initial_texts, feedback))]
    emb_scores = embedder.score(items)
    random_scores = RandomSelector(seed).score(items)
    return FeedbackRound(
        initial=initial_texts, feedback=feedback, refinements=with_fb,
        embedding_pick=[with_fb[i][max(range(n), key=emb_scores[i].__getitem__)] for i in range(len(posts))],
        random_pick=[with_fb[i][max(range(n), key=random_scores[i].__getitem__)] for i in range(len(posts))],
    )


def run_seed(seed: int, base: Path, config: StudyConfig, test: list[world.Post], embedder: EmbeddingSelector,
             work: Path, bar: Any) -> dict[str, Any]:
    lm = load_model(ModelConfig(name_or_path=str(base), device="cpu"))
    rng_seed = 1000 + seed
    posts = world.generate_posts(max(config.sizes), seed=rng_seed, prefix="train")
    sampling = _sampling(config)

    r = feedback_round(lm, posts, config, rng_seed, embedder, seed)
    initial_texts, feedback, with_fb = r.initial, r.feedback, r.refinements
    # One sample stands for a random pick among N: the N are drawn independently, so the pick has
    # the same distribution as a single draw, for a fifth of the cost.
    without_fb, _ = generate_outputs(lm, VERBATIM, [world.refine_prompt(p, y, None) for p, y in zip(posts, initial_texts)],
                                     1, sampling, rng_seed + 2, desc="refine without feedback")
    pick = {
        "ilf_embedding": r.embedding_pick,
        "ilf_random": r.random_pick,
        "refine_no_feedback": [without_fb[i][0] for i in range(len(posts))],
        "sft_initial": initial_texts,
        "sft_reference": [p.reference() for p in posts],
    }

    actionable = [i for i, f in enumerate(feedback) if f.kind in ("missing", "wrong", "extra")]
    def hit_rate(texts: list[str]) -> float:
        return statistics.fmean(world.carries(feedback[i], texts[i]) for i in actionable) if actionable else float("nan")
    selection = {
        "embedding": hit_rate(pick["ilf_embedding"]),
        "random": hit_rate(pick["ilf_random"]),
        "any_candidate": statistics.fmean(any(world.carries(feedback[i], c) for c in with_fb[i]) for i in actionable),
        "refiner_incorporation": statistics.fmean(world.carries(feedback[i], c) for i in actionable for c in with_fb[i]),
        "without_feedback": hit_rate(pick["refine_no_feedback"]),
        "actionable_feedback": len(actionable) / len(posts),
        "feedback_kinds": {k: sum(f.kind == k for f in feedback) for k in sorted({f.kind for f in feedback})},
        "by_kind": {},
    }
    for kind in ("missing", "wrong", "extra", "misleading"):
        rows = [i for i, f in enumerate(feedback) if f.kind == kind]
        if rows:  # misleading feedback asks for a fact the post lacks: "doing it" invents that fact
            selection["by_kind"][kind] = {
                "n": len(rows),
                "embedding": statistics.fmean(world.carries(feedback[i], pick["ilf_embedding"][i]) for i in rows),
                "random": statistics.fmean(world.carries(feedback[i], pick["ilf_random"][i]) for i in rows),
                "any_candidate": statistics.fmean(any(world.carries(feedback[i], c) for c in with_fb[i]) for i in rows),
            }

    # What each method trains on, scored like the outputs: the quality of the imitation targets.
    selection["targets"] = {
        method: {"recall": statistics.fmean(world.score_summary(p, pick[method][i]).recall for i, p in enumerate(posts)),
                 "precision": statistics.fmean(world.score_summary(p, pick[method][i]).precision for i, p in enumerate(posts))}
        for method in TRAINED
    }
    results: dict[str, Any] = {"seed": seed, "selection": selection, "sizes": {}}
    before = evaluate(lm, test, config, rng_seed)
    bar.update(1)
    for size in config.sizes:
        rows = {"before": before}
        for method in TRAINED:
            pairs = [{"prompt": world.policy_prompt(p), "completion": " " + pick[method][i]}
                     for i, p in enumerate(posts[:size]) if pick[method][i].strip()]
            tuned = finetune_world_policy(base, pairs, config, rng_seed, work / f"seed{seed}-{size}-{method}")
            rows[method] = evaluate(tuned, test, config, seed)
            bar.update(1)
        results["sizes"][str(size)] = rows
    return results


def aggregate(per_seed: list[dict[str, Any]], config: StudyConfig) -> dict[str, Any]:
    """Mean and standard deviation over seeds of every metric, per size and method."""
    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

    table: dict[str, Any] = {}
    for size in config.sizes:
        table[str(size)] = {
            method: {metric: stats([r["sizes"][str(size)][method][metric] for r in per_seed])
                     for metric in ("recall", "precision", "rougeL", "facts_stated")}
            for method in METHODS
        }
    selection_keys = ("embedding", "random", "any_candidate", "refiner_incorporation", "without_feedback", "actionable_feedback")
    selection = {k: stats([r["selection"][k] for r in per_seed]) for k in selection_keys}
    kinds = sorted({k for r in per_seed for k in r["selection"]["by_kind"]})
    selection["by_kind"] = {
        kind: {key: stats([r["selection"]["by_kind"][kind][key] for r in per_seed if kind in r["selection"]["by_kind"]])
               for key in ("n", "embedding", "random", "any_candidate")}
        for kind in kinds
    }
    selection["targets"] = {
        method: {m: stats([r["selection"]["targets"][method][m] for r in per_seed]) for m in ("recall", "precision")}
        for method in TRAINED
    }
    return {"table": table, "selection": selection}


def format_report(summary: dict[str, Any], config: StudyConfig, timings: dict[str, float]) -> str:
    lines = [f"# ILF on the controlled world ({config.seeds} seed{'s' if config.seeds > 1 else ''}, "
             f"{config.test_posts} held-out posts, N={config.num_candidates}, T={config.temperature})", ""]
    for size, rows in summary["table"].items():
        lines += [f"## {size} feedback samples", "", "| method | recall | precision | ROUGE-L | facts stated |", "|---|---|---|---|---|"]
        for method, metrics in rows.items():
            cells = [f"{metrics[m]['mean']:.3f} ± {metrics[m]['sd']:.3f}" for m in ("recall", "precision", "rougeL")]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {metrics['facts_stated']['mean']:.2f} |")
        lines.append("")
    sel = summary["selection"]
    lines += [
        "## Selection and the refiner (over actionable feedback: missing, wrong or superfluous facts)", "",
        "| measure | share |", "|---|---|",
        f"| refiner incorporation rate (one refinement does what the feedback asks) | {sel['refiner_incorporation']['mean']:.3f} ± {sel['refiner_incorporation']['sd']:.3f} |",
        f"| embedding pick does it | {sel['embedding']['mean']:.3f} ± {sel['embedding']['sd']:.3f} |",
        f"| random pick does it | {sel['random']['mean']:.3f} ± {sel['random']['sd']:.3f} |",
        f"| at least one of the N does it | {sel['any_candidate']['mean']:.3f} ± {sel['any_candidate']['sd']:.3f} |",
        f"| refinement without feedback does it | {sel['without_feedback']['mean']:.3f} ± {sel['without_feedback']['sd']:.3f} |",
        f"| share of feedback that is actionable | {sel['actionable_feedback']['mean']:.3f} |",
        "",
        "| feedback kind | samples per seed | embedding pick does it | random pick does it | any of the N does it |",
        "|---|---|---|---|---|",
        *[f"| {kind} | {v['n']['mean']:.0f} | {v['embedding']['mean']:.3f} | {v['random']['mean']:.3f} | {v['any_candidate']['mean']:.3f} |"
          for kind, v in sel["by_kind"].items()],
        "",
        "For misleading feedback (it names a fact the post does not contain), doing what it asks means inventing that fact.",
        "",
        "What each method fine-tunes on (the imitation targets), scored like the outputs:",
        "",
        "| targets of | recall | precision |",
        "|---|---|---|",
        *[f"| {method} | {v['recall']['mean']:.3f} ± {v['recall']['sd']:.3f} | {v['precision']['mean']:.3f} ± {v['precision']['sd']:.3f} |"
          for method, v in sel["targets"].items()],
        "",
        "Recall: share of the post's salient facts stated exactly. Precision: share of stated facts that are true facts "
        "of the post. Mean ± standard deviation over seeds; one sampled summary per held-out post.",
        "",
        "Timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()),
        "",
        "![recall by method](report.png)",
    ]
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(summary["table"])
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        rows = summary["table"][size]
        means = [rows[m]["recall"]["mean"] for m in METHODS]
        sds = [rows[m]["recall"]["sd"] for m in METHODS]
        colors = ["#999999", "#1f5fbf", "#7fa7e0", "#b0b0d0", "#d9a441", "#4f9a55"]
        ax.bar(range(len(METHODS)), means, yerr=sds, color=colors, capsize=3)
        ax.set_xticks(range(len(METHODS)), [m.replace("_", "\n") for m in METHODS], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("salient-fact recall")
        ax.set_title(f"{size} feedback samples")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def run_study(run_dir: str | Path, config: StudyConfig) -> dict[str, Any]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    base, pretrain_metrics, cached = world_model(run_dir / "cache", config.pretrain)
    timings["pretraining (cached)" if cached else "pretraining"] = time.perf_counter() - started

    started = time.perf_counter()
    logging.getLogger("ilf.models").setLevel(logging.WARNING)  # a model is loaded per fine-tune
    test = world.generate_posts(config.test_posts, seed=99, prefix="test")
    embedder = EmbeddingSelector()
    work = run_dir / ".work"
    units = config.seeds * (1 + len(config.sizes) * len(TRAINED))
    per_seed = []
    with tqdm(total=units, desc="study", unit="model", disable=None) as bar:
        for seed in range(config.seeds):
            per_seed.append(run_seed(seed, base, config, test, embedder, work, bar))
    timings["study"] = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)

    summary = aggregate(per_seed, config)
    result = {"config": asdict(config), "pretrain": pretrain_metrics, "summary": summary, "per_seed": per_seed, "timings": timings}
    atomic_write_json(run_dir / "results.json", result)
    plot(summary, run_dir / "report.png")
    report = format_report(summary, config, timings)
    atomic_write_text(run_dir / "report.md", report)
    result["report"] = report
    return result
