"""A rehearsal of the SLF5K study at a real model's shape, on CPU: peak memory of every stage.

Runs ``ilf study experiments/slf5k_study.yaml`` on a handful of samples with every model (policy,
refiner, reward model, judge) built as ``shape:qwen2.5-0.5b``: Qwen2.5-0.5B's architecture (24
layers, hidden 896, 14 query and 2 key-value heads, a 151,936-token vocabulary) with random weights
and the tokenizer ilf trains on its shipped text. Every trainer runs two optimizer steps: SFT (ilf,
sft_initial, sft_reference), the reward model, DPO, RLOO and sdft; the judge scores every system.
Posts are lengthened to about ``--prompt-tokens`` tokens, the SLF5K average. sdpo scores its
rollouts with the feedback source, which SLF5K's critiques (a file) cannot do for new outputs: it
runs at the same shape in the facts world (``ilf/studies/demo.yaml``), whose simulated annotator
does, on that world's short prompts.

Each stage records its own peak resident memory (``peak_memory`` in its marker, ``ilf.memory``);
this script reads them back and prints them beside the arithmetic the docs plan with (bytes per
parameter of weights, gradients and AdamW), at the same dtype a GPU would use (bfloat16), so the
bytes above the interpreter's baseline are the bytes a GPU would hold, give or take the CUDA
context and kernels' workspace.

    python benchmarks/rehearsal.py                          # about an hour on 2 cores; peaks near 14 GB
    python benchmarks/rehearsal.py --prompt-tokens 300      # the same at half the length
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STUDY = REPO / "experiments" / "slf5k_study.yaml"
DATA = REPO / "data" / "offline"
WORLD_STUDY = REPO / "ilf" / "studies" / "demo.yaml"
METHODS = ["ilf", "sft_initial", "sft_reference", "sdft", "sdpo", "dpo", "rloo"]
ONLINE = {"sdpo"}  # rewards from a source that scores new outputs: the facts world's annotator
GIB = 2**30


def lengthened(rows: list[dict], tokenizer, tokens: int) -> list[dict]:
    """Rows whose post runs on with the next posts until its summary prompt reaches ``tokens``."""
    out = []
    for index, row in enumerate(rows):
        post, step = row["post"], 1
        while True:
            prompt = f"Title: {row['title']}\n\nText: {post}\n\nTL;DR:"
            if len(tokenizer(prompt)["input_ids"]) >= tokens:
                break
            post += "\n\n" + rows[(index + step) % len(rows)]["post"]
            step += 1
        out.append({**row, "post": post, "summary_prompt": prompt})
    return out


def write_data(folder: Path, samples: int, eval_samples: int, tokens: int) -> None:
    from ilf.files import atomic_write_text
    from ilf.models import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", samples), ("test", eval_samples)):
        rows = [json.loads(line) for line in (DATA / f"{split}.jsonl").read_text().splitlines()[: count + 8]]
        text = "".join(json.dumps(row) + "\n" for row in lengthened(rows, tokenizer, tokens)[:count])
        path = folder / f"{split}.jsonl"
        if not path.exists() or path.read_text() != text:  # rewritten, it would look new: every stage would rerun
            atomic_write_text(path, text)


def overrides(data: Path, shape: str, samples: int, eval_samples: int, dtype: str, methods: list[str]) -> list[str]:
    model = f"shape:{shape}"
    two_steps = samples // 2  # a batch of half the samples: two optimizer steps an epoch
    sets = [
        f"data.path={data}",
        f"data.eval_limit={eval_samples}",
        f"study.sizes=[{samples}]",
        "study.seeds=[0]",
        f"study.methods=[{', '.join(methods)}]",
        "study.workers=1",
        "study.executor=local",
        f"policy.name_or_path={model}",
        f"policy.dtype={dtype}",
        f"refiner.name_or_path={model}",
        "refiner.seed=1",
        f"refiner.dtype={dtype}",
        f"metric_options.judge_win_rate.model.name_or_path={model}",
        "metric_options.judge_win_rate.model.seed=2",
        f"metric_options.judge_win_rate.model.dtype={dtype}",
        f"finetune.per_device_train_batch_size={two_steps}",
        "finetune.gradient_accumulation_steps=1",
        f"reward.per_device_train_batch_size={two_steps}",
        "reward.best_of_n=2",
        f"method_options.dpo.per_device_train_batch_size={two_steps}",
        "method_options.rloo.max_steps=2",
        "method_options.rloo.num_generations=2",
        f"method_options.rloo.per_device_train_batch_size={two_steps}",
        f"method_options.sdft.per_device_train_batch_size={two_steps}",
        "method_options.sdft.max_steps=2",
        "method_options.sdpo.max_steps=2",
        "method_options.sdpo.num_generations=2",
        # a multiple of num_generations, or the config is refused when it loads (even with sdpo not run)
        f"method_options.sdpo.per_device_train_batch_size={max(2, two_steps - two_steps % 2)}",
    ]
    return [arg for item in sets for arg in ("--set", item)]


def world_overrides(shape: str, samples: int, eval_samples: int, dtype: str, methods: list[str], run_dir: Path) -> list[str]:
    """The online methods in the facts world, whose simulated annotator scores new outputs (SLF5K's
    critiques are a file and cannot): the same shape as policy, the world's short prompts."""
    model = f"shape:{shape}"
    sets = [
        f"data.limit={samples}",
        f"data.eval_limit={eval_samples}",
        f"study.sizes=[{samples}]",
        "study.seeds=[0]",
        f"study.methods=[{', '.join(methods)}]",
        "study.axes={}",
        "study.variants={}",
        "study.contrasts=[]",
        "study.gates=[]",
        "study.report_metrics=[recall, precision]",
        "study.workers=1",
        "study.executor=local",
        f"policy.name_or_path={model}",
        f"policy.dtype={dtype}",
        "policy.device=auto",
        "evaluation.metrics=[facts]",
        f"pretraining.cache_dir={run_dir / 'world-cache'}",
        "method_options.sdpo.max_steps=2",
        "method_options.sdpo.num_generations=2",
        f"method_options.sdpo.per_device_train_batch_size={samples}",  # rollouts: a multiple of num_generations
    ]
    return [arg for item in sets for arg in ("--set", item)]


def stage_peaks(run_dirs: list[Path]) -> list[dict]:
    """Every stage computed in the studies, in the order they ran, with its peak memory."""
    from ilf.study.status import computed_stages

    rows = []
    for record in sorted((r for run_dir in run_dirs for r in computed_stages(run_dir)), key=lambda r: r["started"]):
        if "peak_memory" in record:
            judged = "judge_win_rate" in (record["cell"] / "config.yaml").read_text()  # the evaluate stage loads a judge too
            row = {"cell": record["cell"].name, "stage": record["stage"], "seconds": record["seconds"], "judged": judged}
            rows.append({**row, **record["peak_memory"]})
    return rows


def estimates(shape: str) -> dict[str, float]:
    """The docs' arithmetic in GiB at bfloat16: weights 2 bytes a parameter; full fine-tuning 8
    (weights, gradients, AdamW's two moments); a frozen copy (reference, teacher) 2 more."""
    from ilf.models import shape_config

    c = shape_config(shape)[0]
    h, layers, vocab = c.hidden_size, c.num_hidden_layers, c.vocab_size
    kv = h // c.num_attention_heads * c.num_key_value_heads
    per_layer = h * (h + 2 * kv) + (h + 2 * kv) + h * h + 3 * h * c.intermediate_size + 2 * h
    params = vocab * h * (1 if c.tie_word_embeddings else 2) + layers * per_layer + h
    weights = 2 * params / GIB
    return {"params_b": params / 1e9, "weights": weights, "train": 4 * weights, "train+frozen": 5 * weights}


def stage_estimate(cell: str, stage: str, estimate: dict[str, float], judged: bool = True) -> tuple[str, float | None]:
    """Which of the docs' estimates a stage corresponds to, and its GiB."""
    method = cell.split("-")[1] if "-" in cell else ""
    if stage in ("outputs", "refine") or (stage == "evaluate" and not judged):
        return "weights (+ KV cache)", estimate["weights"]
    if stage == "evaluate":  # the policy generates, then the judge (the same shape here) scores
        return "policy + judge weights (+ KV cache)", 2 * estimate["weights"]
    if stage == "reward":
        return "full fine-tune", estimate["train"]
    if stage == "finetune":
        if method in ("dpo", "sdft", "sdpo"):
            return "fine-tune + frozen copy", estimate["train+frozen"]
        if method == "rloo":
            return "fine-tune + reference + reward model", estimate["train+frozen"] + estimate["weights"]
        return "full fine-tune", estimate["train"]
    return "-", None


BASELINE = """
import torch, transformers, trl, sentence_transformers, ilf.pipeline, ilf.train.sft, ilf.train.preference
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) / 2**20)
"""


def baseline_gib() -> float:
    """Resident memory of a process that has imported what a training stage imports, no model."""
    result = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def report(run_dirs: list[Path], shape: str, tokens: int, dtype: str, wall: float) -> str:
    import torch

    estimate = estimates(shape)
    rows = stage_peaks(run_dirs)
    baseline = baseline_gib()
    lines = [
        f"shape:{shape} ({estimate['params_b']:.3f}B parameters), {dtype}, prompts of about {tokens} tokens, "
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; study wall time {wall / 60:.1f} min",
        f"baseline (a process that imported torch, transformers and trl, no model): {baseline:.2f} GiB",
        "",
        "| cell | stage | seconds | RSS at start GiB | peak RSS GiB | peak above baseline GiB | estimate | estimate GiB | measured / estimate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        label, gib = stage_estimate(row["cell"], row["stage"], estimate, row["judged"])
        peak = row["rss_mib"] / 1024
        above = peak - baseline
        if above <= 0:  # a stage that loaded nothing: the interpreter before its imports
            label, gib = "-", None
        ratio = f"{above / gib:.2f}x" if gib else "-"
        lines.append(
            f"| {row['cell']} | {row['stage']} | {row['seconds']:.0f} | "
            + (f"{row['rss_start_mib'] / 1024:.2f}" if "rss_start_mib" in row else "-")
            + f" | {peak:.2f} | "
            + (f"{above:.2f}" if above > 0 else "-")
            + f" | {label} | "
            + (f"{gib:.2f}" if gib else "-")
            + f" | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "rehearsal")
    parser.add_argument("--shape", default="qwen2.5-0.5b", help="a shape of ilf.models.SHAPES")
    parser.add_argument("--layers", type=int, help="change the shape's number of layers (a quicker look at how memory grows)")
    parser.add_argument("--vocab", type=int, help="change the shape's vocabulary size")
    parser.add_argument("--samples", type=int, default=4, help="training samples (even: two steps of half of them)")
    parser.add_argument("--eval-samples", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=600, help="length of the summary prompts (SLF5K: about 600)")
    parser.add_argument("--dtype", default="bfloat16", help="the models' dtype (bfloat16: the bytes a GPU holds)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods (default: every trainer)")
    parser.add_argument("--report-only", action="store_true", help="print the table of an earlier rehearsal")
    args = parser.parse_args()

    run_dir = args.run_dir.resolve()
    shape = args.shape
    for key, value in (("num_hidden_layers", args.layers), ("vocab_size", args.vocab)):
        if value:
            shape += f",{key}={value}"
    wall = 0.0
    methods = args.methods.split(",")
    slf5k, online = [m for m in methods if m not in ONLINE], [m for m in methods if m in ONLINE]
    if not args.report_only:
        data = run_dir / "data"
        write_data(data, args.samples, args.eval_samples, args.prompt_tokens)
        commands = []
        if slf5k:
            command = [sys.executable, "-m", "ilf", "study", str(STUDY), "--run-dir", str(run_dir / "study")]
            commands.append(command + overrides(data, shape, args.samples, args.eval_samples, args.dtype, slf5k))
        if online:
            command = [sys.executable, "-m", "ilf", "study", str(WORLD_STUDY), "--run-dir", str(run_dir / "study-facts")]
            commands.append(command + world_overrides(shape, args.samples, args.eval_samples, args.dtype, online, run_dir))
        started = time.perf_counter()
        for command in commands:
            print("$", " ".join(command), flush=True)
            # a failed cell is in the study's report and the table below; the other cells still count
            subprocess.run(command, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - started
    table = report([run_dir / "study", run_dir / "study-facts"], shape, args.prompt_tokens, args.dtype, wall)
    (run_dir / "memory.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
