"""Refinement generation throughput: ilf's refine stage against plain Hugging Face ``generate``.

The workload is a refinement round: P refinement prompts (post, summary, feedback; lengths drawn
from 80-160 tokens, mean 120), N samples each, T new tokens, nucleus sampling. Every variant runs
in this process on the same prompts, and each rate is given as a ratio to the per-sample loop and
to one batched ``generate`` call with ``num_return_sequences=N``. The models have random weights;
end-of-sequence is switched off so every variant draws exactly N x T tokens per prompt.

Variants:
- per-sample loop: one ``generate`` call per prompt and sample (on the first prompts only);
- batched generate: all prompts in one call, ``num_return_sequences=N`` (prompt copied N times);
- batched generate, batches of B: the same in batches of B prompts, and sorted by length;
- static cache + torch.compile: plain ``generate`` with a static cache and a compiled forward;
- shared prompt: each prompt encoded once, its keys and values shared by its N samples
  (``ilf.shared_prefix``), unsorted and then sorted by length;
- ilf refine stage: ``ilf.generate.generate_outputs`` as the pipeline runs it (sorted batches,
  shared prompt, post-processing and resampling);
- bfloat16: the shared-prompt path in bfloat16, with the largest difference of per-token
  log-probabilities from float32 on the same tokens.

Then the share of the machine's ceiling: the matmul rate of a 2048-cubed product in float32 and in
bfloat16, measured in the same run, against the arithmetic the refine stage does (2 FLOPs per
weight of the body and the LM head for every token it runs: each prompt's tokens once and every
new token), in both types.

    python benchmarks/generation.py [--prompts 64] [--samples 5] [--new-tokens 48] [--batch-size 32]
                                    [--models gpt2-6x512,tiny] [--compile] [--out table.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import warnings
from datetime import date
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import transformers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import Table, emit  # noqa: E402

from ilf.config import SamplingConfig  # noqa: E402
from ilf.demo import world  # noqa: E402
from ilf.generate import generate_outputs  # noqa: E402
from ilf.models import LoadedModel, tiny_model, tiny_tokenizer  # noqa: E402
from ilf.precision import matmul_gflops  # noqa: E402
from ilf.shared_prefix import shared_prefix_generate  # noqa: E402
from ilf.tasks.base import TemplateTask  # noqa: E402

RAW = TemplateTask(stop_at_newline=False, drop_unfinished_sentence=False)


def build_model(name: str, dtype: torch.dtype = torch.float32, device: str = "cpu") -> tuple[Any, Any]:
    if name == "gpt2-6x512":
        tokenizer = tiny_tokenizer()
        config = transformers.GPT2Config(
            n_positions=1024,
            n_embd=512,
            n_layer=6,
            n_head=8,
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = transformers.GPT2LMHeadModel(config)
    elif name == "tiny":
        model, tokenizer = tiny_model("gpt2", seed=0)
    else:
        raise SystemExit(f"unknown model {name!r}: choose gpt2-6x512 or tiny")
    model.generation_config.eos_token_id = None  # fixed work: every sample runs to max_new_tokens
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "left"
    return model.to(device=device, dtype=dtype).eval(), tokenizer


def refinement_prompts(count: int, tokenizer: Any) -> list[str]:
    """Refinement prompts of the controlled world, cut from the left to 80-160 tokens."""
    rng = random.Random(0)
    prompts = []
    for post in world.generate_posts(count, seed=3, prefix="bench"):
        summary, _ = world.flawed_summary(post, rng)
        feedback = world.Annotator(seed=rng.randrange(10**6)).critique(post, summary)
        ids = tokenizer(world.refine_prompt(post, summary, feedback.text), add_special_tokens=False)["input_ids"]
        prompts.append(tokenizer.decode(ids[-rng.randint(80, 160) :]))
    return prompts


def new_tokens(out: torch.Tensor, prompt_len: int, pad_id: int) -> int:
    return int((out[:, prompt_len:] != pad_id).sum())


class Workload:
    def __init__(self, model: Any, tokenizer: Any, prompts: list[str], samples: int, max_new: int) -> None:
        self.model, self.tokenizer, self.prompts = model, tokenizer, prompts
        self.samples, self.max_new = samples, max_new
        self.kwargs = dict(max_new_tokens=max_new, do_sample=True, top_p=0.95, temperature=1.0, pad_token_id=tokenizer.pad_token_id)

    def encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)

    def batches(self, size: int, by_length: bool) -> list[list[str]]:
        order = list(self.prompts)
        if by_length:
            order.sort(key=lambda p: -len(self.tokenizer(p, add_special_tokens=False)["input_ids"]))
        return [order[i : i + size] for i in range(0, len(order), size)]

    @torch.inference_mode()
    def per_sample(self, count: int) -> int:
        torch.manual_seed(0)
        total = 0
        for prompt in self.prompts[:count]:
            batch = self.encode([prompt])
            for _ in range(self.samples):
                total += new_tokens(self.model.generate(**batch, **self.kwargs), batch["input_ids"].shape[1], self.tokenizer.pad_token_id)
        return total

    @torch.inference_mode()
    def batched(self, size: int, by_length: bool = False, **extra: Any) -> int:
        torch.manual_seed(0)
        total = 0
        for prompts in self.batches(size, by_length):
            batch = self.encode(prompts)
            out = self.model.generate(**batch, num_return_sequences=self.samples, **self.kwargs, **extra)
            total += new_tokens(out, batch["input_ids"].shape[1], self.tokenizer.pad_token_id)
        return total

    @torch.inference_mode()
    def shared(self, size: int, by_length: bool) -> int:
        torch.manual_seed(0)
        total = 0
        for prompts in self.batches(size, by_length):
            batch = self.encode(prompts)
            out = shared_prefix_generate(self.model, batch["input_ids"], batch["attention_mask"], self.samples, **self.kwargs)
            total += new_tokens(out, batch["input_ids"].shape[1], self.tokenizer.pad_token_id)
        return total

    def stage(self, size: int) -> int:
        lm = LoadedModel(model=self.model, tokenizer=self.tokenizer, is_seq2seq=False, device=self.model.device, name="bench")
        sampling = SamplingConfig(max_new_tokens=self.max_new, batch_size=size, top_p=0.95)
        _, stats = generate_outputs(lm, RAW, self.prompts, self.samples, sampling, seed=0, desc="ilf refine")
        return stats.new_tokens


@torch.inference_mode()
def logprob_gap(reference: Any, other: Any, tokenizer: Any, prompts: list[str], samples: int, max_new: int) -> float:
    """Largest |log p_bf16 - log p_fp32| over the tokens the float32 model sampled."""
    torch.manual_seed(0)
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(reference.device)
    out = shared_prefix_generate(
        reference,
        batch["input_ids"],
        batch["attention_mask"],
        samples,
        max_new_tokens=max_new,
        do_sample=True,
        top_p=0.95,
        pad_token_id=tokenizer.pad_token_id,
    )
    mask = torch.cat([batch["attention_mask"].repeat_interleave(samples, 0), torch.ones_like(out[:, batch["input_ids"].shape[1] :])], 1)
    start = batch["input_ids"].shape[1]

    def logprobs(model: Any) -> torch.Tensor:
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=out, attention_mask=mask, position_ids=positions).logits[:, start - 1 : -1].float()
        return torch.log_softmax(logits, -1).gather(-1, out[:, start:, None]).squeeze(-1)

    return float((logprobs(reference) - logprobs(other)).abs().max())


def bench_model(name: str, args: argparse.Namespace) -> str:
    model, tokenizer = build_model(name, device=args.device)
    prompts = refinement_prompts(args.prompts, tokenizer)
    work = Workload(model, tokenizer, prompts, args.samples, args.new_tokens)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    mean_len = sum(len(tokenizer(p)["input_ids"]) for p in prompts) / len(prompts)
    table = Table(
        f"{name} ({params:.1f}M parameters): {len(prompts)} prompts of {mean_len:.0f} tokens on average, "
        f"{args.samples} samples x {args.new_tokens} new tokens",
        "tok/s",
    )
    print(table.title, flush=True)
    size = args.batch_size
    work.stage(2)  # warm-up: first-call allocations and kernel choices
    table.measure("per-sample loop", lambda: work.per_sample(args.per_sample_prompts), f"first {args.per_sample_prompts} prompts")
    table.measure("batched generate", lambda: work.batched(len(prompts)), "one call, num_return_sequences")
    table.measure(f"batched generate, batches of {size}", lambda: work.batched(size))
    table.measure(f"batched generate, batches of {size} by length", lambda: work.batched(size, by_length=True))
    if args.compile:
        compiled = transformers.CompileConfig(fullgraph=False, mode="default")
        compiled._compile_all_devices = True  # generate compiles only on accelerators unless told

        def static_compiled() -> int:
            return work.batched(size, by_length=True, cache_implementation="static", compile_config=compiled)

        table.measure("static cache + torch.compile (first call)", static_compiled, "includes compilation")
        table.measure("static cache + torch.compile", static_compiled, "compiled; new shapes recompile")
    table.measure(f"shared prompt, batches of {size}", lambda: work.shared(size, by_length=False))
    table.measure(f"shared prompt, batches of {size} by length", lambda: work.shared(size, by_length=True))
    table.measure(f"shared prompt, batches of {2 * size} by length", lambda: work.shared(2 * size, by_length=True))
    table.measure("ilf refine stage", lambda: work.stage(size), f"generate_outputs, batch_size {size}")
    bf16_model = build_model(name, torch.bfloat16, args.device)[0]
    gap = logprob_gap(model, bf16_model, tokenizer, prompts[:4], args.samples, args.new_tokens)
    bf16 = Workload(bf16_model, tokenizer, prompts, args.samples, args.new_tokens)
    table.measure("ilf refine stage, bfloat16", lambda: bf16.stage(size), f"max abs log-prob gap to float32: {gap:.3f}")
    table.measure(f"ilf refine stage, bfloat16, batches of {2 * size}", lambda: bf16.stage(2 * size), f"batch_size {2 * size}")
    rendered = [table.render("per-sample loop"), "", table.render("batched generate")]
    rendered += ["", ceiling_table(model, tokenizer, prompts, table, args.device)]
    return "\n".join(rendered)


def ceiling_table(model: Any, tokenizer: Any, prompts: list[str], table: Table, device: str) -> str:
    """The refine stage's arithmetic rate as a share of the best matmul rate measured here."""
    # FLOPs per token: 2 per weight of every matrix a token passes through, the tied LM head included;
    # position embeddings are a lookup, not a product.
    positions = sum(p.numel() for name, p in model.named_parameters() if name.endswith("wpe.weight"))
    per_token = 2 * (sum(p.numel() for p in model.parameters()) - positions)
    prompt_tokens = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    if device == "cpu":
        ceilings = {"float32": matmul_gflops("float32", 2048, 1.0), "bfloat16": matmul_gflops("bfloat16", 2048, 1.0)}
    else:
        ceilings = {}
    best = max(ceilings.values()) if ceilings else None
    lines = [
        f"Ceiling: a 2048-cubed matmul at {', '.join(f'{v:.0f} GFLOP/s in {k}' for k, v in ceilings.items()) or 'not measured off the CPU'}; "
        f"{per_token / 1e6:.1f} MFLOP per token, {prompt_tokens:,} prompt tokens encoded once.",
        "",
        "| variant | GFLOP/s | share of the best ceiling |",
        "|---|---|---|",
    ]
    for row in table.rows:
        if not row.variant.startswith("ilf refine stage"):
            continue
        rate = per_token * (row.units + prompt_tokens) / row.seconds / 1e9
        share = f"{rate / best:.0%}" if best else "-"
        lines.append(f"| {row.variant} | {rate:.0f} | {share} |")
    print("\n".join(lines), flush=True)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=SamplingConfig().batch_size)
    parser.add_argument("--per-sample-prompts", type=int, default=8)
    parser.add_argument("--models", default="gpt2-6x512,tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also measure a static cache with torch.compile (slow to compile)")
    parser.add_argument("--out", help="also write the tables to this Markdown file")
    args = parser.parse_args()

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or platform.machine()
    header = (
        f"Generation benchmark, {date.today()}: {os.cpu_count()} CPUs ({device}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}"
    )
    print(header, flush=True)
    sections = [header, ""]
    for name in args.models.split(","):
        sections += [bench_model(name.strip(), args), ""]
    text = "\n".join(sections)
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
