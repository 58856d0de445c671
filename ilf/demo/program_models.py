"""The program world's tiny policy-and-refiner, trained from scratch and cached like the facts world's.

One decoder learns three jobs from a mixture of examples, all in the code task's own prompts:
writing a task's program (the policy; its targets carry the weak programmer's misconceptions, so
it passes about half of the tasks), refining a program given a reviewer's critique or the
interpreter's feedback (its targets fix what the feedback names or shows, and keep every other
mistake), and refining without feedback (its targets keep the program as it was: the task's text
alone does not tell the refiner which of its habits are mistakes). Each task is read by
conventions drawn at random and, but for ``cued_share`` of them, unstated: the policy knows both
readings of an operation and no world's choice. The interpreter's feedback is the message of the
visible tests, as a study's training side runs them.

The tokenizer is word-level over the world's closed vocabulary, with a space marker on each word
(``▁return``) so that decoding keeps the space a one-line body starts with: the code task keeps a
body only when its first line is indented (`` return ...`` after ``def f ( x ) :``).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from ilf.config import PretrainConfig
from ilf.demo import programs
from ilf.demo.models import cached_world_model, pretrain

log = logging.getLogger(__name__)

EXECUTION_SHARE = 1 / 3  # of the refinement examples with feedback, those whose feedback is the interpreter's


def pretrained_model(config: PretrainConfig) -> Path:
    """The program world's pretrained policy/refiner for these settings: trained on first use,
    then read from the cache (``pretraining.seed`` is part of the settings, so each pre-training
    seed of a study is its own model)."""
    return cached_world_model(
        config,
        "program-world-model",
        {"program_world_version": programs.VERSION},
        "the program world's",
        lambda path: pretrain(
            config, path, training_examples(config), word_tokenizer(), label=f"pretrain program world (seed {config.seed})"
        ),
    )


def word_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = programs.vocabulary()
    tokens = ["[PAD]", "[EOS]", "[UNK]", *words, *(f"▁{w}" for w in words)]
    tokenizer = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(tokens)}, unk_token="[UNK]"))
    # Newlines and runs of spaces carry nothing in one-line programs: one space each, none at the end.
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip(left=False, right=True)])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", eos_token="[EOS]", unk_token="[UNK]", bos_token="[EOS]", model_max_length=256
    )


def training_examples(config: PretrainConfig) -> list[dict[str, str]]:
    """Prompt/completion pairs of the three jobs, on training-side tasks only (never a held-out one).

    ``policy_share`` of them write a program; ``no_feedback_share`` refine without feedback; the
    rest refine with feedback, EXECUTION_SHARE of those with the interpreter's (as the execution
    feedback source words it) and the others with the reviewer's, ``annotator_noise`` of whose
    critiques are unhelpful or misleading."""
    rng = random.Random(config.seed)
    tasks = programs.iter_tasks(config.seed, cued_share=config.cued_share)
    programmer = programs.Programmer()
    reviewer = programs.Reviewer(noise=config.annotator_noise, seed=config.seed)
    examples = []
    for _ in range(config.examples):
        task = next(tasks)
        flaws = programmer.flaws(task, rng)
        program = task.program(flaws)
        draw = rng.random()
        if draw < config.policy_share:
            examples.append({"prompt": task.prompt(), "completion": program})
            continue
        if draw < config.policy_share + config.no_feedback_share:
            examples.append({"prompt": programs.refine_prompt(task, program, None), "completion": program})
            continue
        if rng.random() < EXECUTION_SHARE:
            # the message of the visible tests, as the study's training side runs them (task.options.training_tests)
            feedback = programs.simulated_execution_feedback(task, flaws, visible=True)
            left = flaws - programs.fixed_by_execution(task, flaws, visible=True)
        else:
            critique = reviewer.critique(task, flaws)
            feedback, left = critique.text, programs.apply_critique(flaws, critique)
        examples.append({"prompt": programs.refine_prompt(task, program, feedback), "completion": task.program(left)})
    return examples
