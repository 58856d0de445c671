"""The demo's tiny policy-and-refiner model, trained from scratch on the controlled world.

One decoder learns two jobs from a mixture of examples: summarising a post (the policy; its
targets carry the typical flaws of a weak summariser, so it starts imperfect) and refining a
summary given feedback (the refiner; its targets apply the feedback, which it must learn to
read). A word-level tokenizer over the world's closed vocabulary keeps sequences short.
Settings that learn on 2 CPU cores in minutes (a Llama-style config with rotary positions,
fused AdamW) are the defaults.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ilf.config import PretrainConfig, fingerprint, fingerprinted
from ilf.demo import world
from ilf.files import DirectoryLock, atomic_directory, atomic_write_json
from ilf.progress import progress

log = logging.getLogger(__name__)


def pretrained_model(config: PretrainConfig) -> Path:
    """The pretrained policy/refiner for these settings: trained on first use, then read from the
    cache (one folder per settings, so every run and study that asks for them shares it)."""
    # a change to the world's examples (world.VERSION) trains a new model
    return cached_world_model(
        config, "world-model", {"world_version": world.VERSION}, "the facts world's", lambda path: pretrain(config, path)
    )


def cached_world_model(
    config: PretrainConfig, prefix: str, versions: dict[str, Any], world_name: str, train: Callable[[Path], None]
) -> Path:
    """A world's pretrained model, in ``pretraining.cache_dir`` under ``prefix`` and a fingerprint
    of the settings and the world's ``versions``: ``train(path)`` writes it on first use, under a
    lock, so runs and studies that ask at once train it once."""
    # fingerprinted: a setting added later leaves the cache's names from before it valid at its default
    settings = {k: v for k, v in fingerprinted(config).items() if k != "cache_dir"}
    settings.update(versions)
    cache = Path(config.cache_dir).expanduser()
    path = cache / f"{prefix}-{fingerprint(settings)}"
    if (path / "config.json").exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with DirectoryLock(cache / f".{path.name}.lock", wait=True):  # another run may be training it now
        if not (path / "config.json").exists():
            log.info("training %s policy and refiner from scratch (%d steps; cached in %s)", world_name, config.steps, cache)
            train(path)
    return path


def word_tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["[PAD]", "[EOS]", "[UNK]", *world.vocabulary()])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    from tokenizers import decoders

    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # words joined by single spaces, as written
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", eos_token="[EOS]", unk_token="[UNK]", bos_token="[EOS]", model_max_length=256
    )


def training_examples(config: PretrainConfig) -> list[dict[str, str]]:
    """Prompt/completion pairs for both jobs, from posts the studies never see.

    A ``hidden_share`` of them come from posts in the hidden world's form (three facts marked
    ``key``): the policy learns to state the marked facts, and the refiner to act on feedback
    whose annotator cares about one or two of them drawn at random, so it learns to add, fix or
    drop what feedback names, and no rule. A
    ``judge_share`` teach the model to answer whether a refinement did what the feedback asked
    (balanced between refinements that did and ones that did not), so the world has an LM judge
    for instruct_rm."""
    rng = random.Random(config.seed)
    cued_posts = iter(world.generate_posts(config.examples, seed=config.seed, prefix="pretrain", distinct_words=False))
    hidden_posts = iter(world.generate_posts(config.examples, seed=config.seed, prefix="pretrain", hidden_form=True, distinct_words=False))
    annotators = {
        True: world.Annotator(noise=config.annotator_noise, seed=config.seed),
        False: world.Annotator(noise=config.annotator_noise, seed=config.seed + 1, state_preference=config.state_preference),
    }
    examples = []
    for _ in range(config.examples):
        cued = not (config.hidden_share > 0 and rng.random() < config.hidden_share)
        post = next(cued_posts if cued else hidden_posts)
        if config.judge_share > 0 and rng.random() < config.judge_share:
            summary, _ = world.flawed_summary(post, rng)
            feedback = annotators[cued].critique(post, summary)
            if feedback.kind in ("missing", "wrong", "extra"):
                right, *wrong = world.judge_candidates(post, summary, feedback, rng)
                candidate, done = right if rng.random() < 0.5 else rng.choice(wrong)
                prompt = world.judge_prompt(post, summary, feedback.text, candidate)
                examples.append({"prompt": prompt, "completion": world.JUDGE_ANSWERS[0 if done else 1]})
                continue
        draw = rng.random()
        summary, _ = world.flawed_summary(post, rng)
        if draw < config.policy_share:
            examples.append({"prompt": world.policy_prompt(post), "completion": " " + summary})
            continue
        feedback = annotators[cued].critique(post, summary)
        target = world.apply_feedback(post, summary, feedback)
        if draw < config.policy_share + config.no_feedback_share:
            examples.append({"prompt": world.refine_prompt(post, summary, None), "completion": " " + target})
        else:
            examples.append({"prompt": world.refine_prompt(post, summary, feedback.text), "completion": " " + target})
    return examples


def new_model(config: PretrainConfig, tokenizer: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.hidden_size * 2,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _batches(examples: list[dict[str, str]], tokenizer: Any, batch_size: int, rng: random.Random) -> list[tuple[Any, Any, Any]]:
    """Tokenized batches with the loss on completions only; examples of similar length share a
    batch (sorted within shuffled chunks), so little compute goes to padding."""
    import torch

    order = list(range(len(examples)))
    rng.shuffle(order)
    encoded = []
    for index in order:
        prompt = tokenizer(examples[index]["prompt"], add_special_tokens=False)["input_ids"]
        completion = tokenizer(examples[index]["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((prompt, completion))
    batches = []
    chunk = batch_size * 16
    for start in range(0, len(encoded), chunk):
        part = sorted(encoded[start : start + chunk], key=lambda pc: len(pc[0]) + len(pc[1]))
        for b in range(0, len(part) - batch_size + 1, batch_size):
            rows = part[b : b + batch_size]
            width = max(len(p) + len(c) for p, c in rows)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id)
            labels = torch.full((len(rows), width), -100)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, (p, c) in enumerate(rows):
                ids[r, : len(p) + len(c)] = torch.tensor(p + c)
                labels[r, len(p) : len(p) + len(c)] = torch.tensor(c)
                mask[r, : len(p) + len(c)] = 1
            batches.append((ids, mask, labels))
    rng.shuffle(batches)
    return batches


def pretrain(
    config: PretrainConfig,
    out_dir: Path,
    examples: list[dict[str, str]] | None = None,
    tokenizer: Any = None,
    label: str = "pretrain policy+refiner",
) -> dict[str, Any]:
    """Train the world model from scratch and save it with its tokenizer to ``out_dir`` (atomically).
    ``examples`` and ``tokenizer`` default to the facts world's; another world passes its own.

    A plain loop rather than a Trainer: at this model size (under a million parameters) the
    Trainer's per-step bookkeeping cost about 45% on top of the forward and backward pass on 2
    cores (0.47 s against 0.26 s per step, measured), and pretraining is the demo's longest stage.
    The study's fine-tuning, the part that shows the method, goes through TRL's SFTTrainer.
    """
    import math
    import time

    import torch

    from ilf.models import eager_attention_for_cpu_autocast

    rng = random.Random(config.seed)
    tokenizer = tokenizer if tokenizer is not None else word_tokenizer()
    model = new_model(config, tokenizer)
    model.train()
    dtype = config.dtype  # float32 or bfloat16 (checked when the config loads)
    if dtype == "bfloat16":
        eager_attention_for_cpu_autocast(model)
    log.info("pretraining in %s", "bfloat16 autocast over float32 weights" if dtype == "bfloat16" else "float32")
    examples = examples if examples is not None else training_examples(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01, fused=True)
    warmup = max(1, config.steps // 20)

    def learning_rate(step: int) -> float:  # linear warm-up, cosine decay to a tenth
        if step < warmup:
            return config.learning_rate * (step + 1) / warmup
        progress_share = (step - warmup) / max(1, config.steps - warmup)
        return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_share)))

    batches: list[tuple[Any, Any, Any]] = []
    losses: list[float] = []
    started = time.perf_counter()
    with progress(config.steps, label, unit="step") as bar:
        for step in range(config.steps):
            if not batches:
                batches = _batches(examples, tokenizer, config.batch_size, rng)
            ids, mask, labels = batches.pop()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if step % 25 == 0:
                bar.set_postfix(loss=f"{sum(losses[-25:]) / len(losses[-25:]):.3f}")
            bar.update(1)
    seconds = time.perf_counter() - started
    metrics = {
        "steps": config.steps,
        "seconds": seconds,
        "first_loss": losses[0],
        "final_loss": sum(losses[-50:]) / len(losses[-50:]),
        "dtype": dtype,
        "config": {k: v for k, v in asdict(config).items() if k != "cache_dir"},
    }
    model.eval()
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / "pretrain_metrics.json", metrics)
    return metrics
