"""Batched sampling of N cleaned outputs per prompt.

Prompts are sorted by length so a batch pads little; decoder-only models are padded on the left so
every row continues from its own last token; only new tokens are decoded. Outputs that the task's
post-processing leaves empty, or that repeat another output of the same prompt, are resampled up
to ``max_resamples`` times. Each finished batch is handed to ``on_batch`` so a caller can journal
it and resume after a crash.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol

import torch

from ilf import shared_prefix
from ilf.config import ModelConfig, SamplingConfig
from ilf.models import LoadedModel, load_model
from ilf.progress import progress
from ilf.tasks import Task

log = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    prompts: int = 0
    outputs: int = 0
    resampled: int = 0
    fallbacks: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    dtype: str = ""  # the weights' type the sampler holds ("" for a server's)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Sampler(Protocol):
    """Draws raw continuations; :func:`generate_outputs` adds cleaning, resampling and journaling.

    ``sample`` returns ``num_return`` raw texts per prompt and the number of new tokens drawn, and
    must give the same texts for the same ``seed``.
    """

    batch_size: int | None  # prompts per call it prefers; None: the sampling config's batch_size

    def prompt_lengths(self, prompts: list[str]) -> list[int]: ...

    def sample(self, prompts: list[str], num_return: int, sampling: SamplingConfig, seed: int) -> tuple[list[list[str]], int]: ...


class LocalSampler:
    """Samples from a model loaded in this process."""

    batch_size: int | None = None

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm
        # the weights' type it samples in, for the stage's record (dtype auto depends on the machine)
        self.dtype = str(next(lm.model.parameters()).dtype).removeprefix("torch.")

    def prompt_lengths(self, prompts: list[str]) -> list[int]:
        return [len(ids) for ids in self.lm.tokenizer(prompts, add_special_tokens=False)["input_ids"]]

    def sample(self, prompts: list[str], num_return: int, sampling: SamplingConfig, seed: int) -> tuple[list[list[str]], int]:
        torch.manual_seed(seed)
        return sample_raw(self.lm, prompts, num_return, sampling)


def as_sampler(model: LoadedModel | Sampler | ModelConfig) -> Sampler:
    """A sampler for a loaded model, a model config (local or remote backend) or a sampler."""
    if isinstance(model, LoadedModel):
        return LocalSampler(model)
    if isinstance(model, ModelConfig):
        if model.backend == "openai":
            from ilf.remote import RemoteSampler

            return RemoteSampler(model)
        if model.backend != "local":
            raise ValueError(f"backend: expected local or openai, got {model.backend!r}")
        return LocalSampler(load_model(model))
    return model


@contextmanager
def fused_activations(model: Any) -> Iterator[None]:
    """Swap GPT-2's tanh-approximate GELU, written as five element-wise operations, for PyTorch's
    fused kernel of the same formula while generating; the originals are put back afterwards.

    On a CPU the five passes over the MLP activations took a sixth of decoding time.
    """
    from transformers.activations import FastGELUActivation, GELUTanh, NewGELUActivation

    swapped = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) in (NewGELUActivation, FastGELUActivation):
                swapped.append((parent, name, child))
                setattr(parent, name, GELUTanh())
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@torch.inference_mode()
def sample_raw(lm: LoadedModel, prompts: list[str], num_return: int, sampling: SamplingConfig) -> tuple[list[list[str]], int]:
    """One ``generate`` call: ``num_return`` raw continuations per prompt, and the new-token count."""
    tokenizer = lm.tokenizer
    truncate = sampling.max_prompt_tokens is not None
    previous_side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"  # the cue the model must continue sits at the end of the prompt
    try:
        batch = tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            truncation=truncate,
            max_length=sampling.max_prompt_tokens if truncate else None,
            add_special_tokens=lm.is_seq2seq,
        ).to(lm.device)
    finally:
        tokenizer.truncation_side = previous_side
    kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample)
    if sampling.do_sample:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    share = (
        sampling.share_prompt
        and num_return > 1
        and not lm.is_seq2seq
        and batch["input_ids"].shape[1] > 1
        and shared_prefix.supported(lm.model)
    )
    with fused_activations(lm.model):
        if share:
            out = shared_prefix.shared_prefix_generate(
                lm.model, batch["input_ids"], batch["attention_mask"], num_return, **kwargs, pad_token_id=tokenizer.pad_token_id
            )
        else:
            out = lm.model.generate(**batch, **kwargs, num_return_sequences=num_return, pad_token_id=tokenizer.pad_token_id)
    new = out if lm.is_seq2seq else out[:, batch["input_ids"].shape[1] :]
    new_tokens = int((new != tokenizer.pad_token_id).sum())
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return [texts[i * num_return : (i + 1) * num_return] for i in range(len(prompts))], new_tokens


def _bad_slots(outputs: list[str]) -> list[int]:
    seen: set[str] = set()
    bad = []
    for slot, text in enumerate(outputs):
        key = " ".join(text.lower().split())
        if not key or key in seen:
            bad.append(slot)
        seen.add(key)
    return bad


def _batches(indices: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def generate_outputs(
    model: LoadedModel | Sampler | ModelConfig,
    task: Task,
    prompts: list[str],
    num_outputs: int,
    sampling: SamplingConfig,
    seed: int,
    skip: set[int] | None = None,
    on_batch: Callable[[dict[int, list[str]]], None] | None = None,
    desc: str = "generate",
    resample: bool = True,
) -> tuple[dict[int, list[str]], GenerationStats]:
    """Generate ``num_outputs`` cleaned outputs for each prompt not in ``skip``.

    ``resample=False`` keeps every draw as it came (an empty one gets the task's fallback):
    outputs that a metric treats as independent samples (pass@k) must not be drawn again for
    repeating another, or the estimate is biased.

    Returns ``{prompt_index: outputs}``. Duplicates are only resampled when sampling: a greedy
    decoder would give the same text again.
    """

    sampler = as_sampler(model)
    skip = skip or set()
    todo = [i for i in range(len(prompts)) if i not in skip]
    lengths = dict(zip(todo, sampler.prompt_lengths([prompts[i] for i in todo])))
    todo.sort(key=lambda i: -lengths[i])
    stats = GenerationStats(dtype=getattr(sampler, "dtype", ""))
    results: dict[int, list[str]] = {}
    started = time.perf_counter()
    bar = progress(len(todo), desc, unit="prompt")
    draws = num_outputs if sampling.do_sample else 1  # a greedy decoder gives one text: draw it once, repeat it
    for number, batch in enumerate(_batches(todo, sampler.batch_size or sampling.batch_size)):
        raw, tokens = sampler.sample([prompts[i] for i in batch], draws, sampling, seed * 1_000_003 + number)
        raw = [texts * (num_outputs // draws) for texts in raw]
        stats.new_tokens += tokens
        clean = {i: [task.postprocess(t) for t in texts] for i, texts in zip(batch, raw)}
        last_raw = {i: list(texts) for i, texts in zip(batch, raw)}
        rounds = sampling.max_resamples if sampling.do_sample and resample else 0
        for round_number in range(rounds):
            bad = {i: _bad_slots(clean[i]) for i in batch}
            bad = {i: slots for i, slots in bad.items() if slots}
            if not bad:
                break
            again = list(bad)
            redo, tokens = sampler.sample(
                [prompts[i] for i in again],
                max(len(s) for s in bad.values()),
                sampling,
                seed * 1_000_003 + number + 7919 * (round_number + 1),
            )
            stats.new_tokens += tokens
            for i, texts in zip(again, redo):
                for slot, text in zip(bad[i], texts):
                    clean[i][slot] = task.postprocess(text)
                    last_raw[i][slot] = text
                    stats.resampled += 1
        for i in batch:
            for slot, text in enumerate(clean[i]):
                if not text:
                    clean[i][slot] = task.fallback(last_raw[i][slot])
                    stats.fallbacks += 1
        results.update(clean)
        stats.prompts += len(batch)
        stats.outputs += len(batch) * num_outputs
        if on_batch is not None:
            on_batch({i: clean[i] for i in batch})
        bar.update(len(batch))
    bar.close()
    stats.seconds = time.perf_counter() - started
    return results, stats
