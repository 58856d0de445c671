"""InstructRM (Scheurer et al. 2023): ask an instruction-following LM whether a refinement
incorporates the feedback, and score p(Yes) / (p(Yes) + p(No)) from its next-token logits,
averaged over several phrasings of the question so that no single wording decides.

The prompt wording is our own; five variants, two of them with True/False answers.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from ilf.config import ModelConfig, RunConfig, option
from ilf.data import resolve_model
from ilf.models import LoadedModel, load_model
from ilf.records import format_inputs
from ilf.registry import SELECTORS
from ilf.selection.base import SelectionItem, Selector

_CONTEXT = "{inputs}\n\nOriginal output: {output}\n\nFeedback on the original output: {feedback}\n\nNew output: {candidate}\n\n"

# (template, positive answer, negative answer)
PROMPT_VARIANTS: list[tuple[str, str, str]] = [
    (_CONTEXT + "Question: Does the new output incorporate the feedback? Answer Yes or No.\nAnswer:", " Yes", " No"),
    (_CONTEXT + "Question: Does the new output fix what the feedback points out? Answer Yes or No.\nAnswer:", " Yes", " No"),
    (_CONTEXT + "Statement: the new output takes the feedback into account. True or False?\nAnswer:", " True", " False"),
    (
        "Read the text, an output written for it, a critique of that output, and a rewritten output.\n\n"
        + _CONTEXT
        + "Was the rewritten output improved in the way the critique asks? Yes or No?\nAnswer:",
        " Yes",
        " No",
    ),
    (_CONTEXT + "Statement: every point of the feedback is addressed by the new output. True or False?\nAnswer:", " True", " False"),
]


@dataclass
class InstructRMOptions:
    judge: ModelConfig | None = option(None, "The causal LM asked; default the refiner.")


@SELECTORS.register(
    "instruct_rm",
    help="An LM judge asked whether the refinement does what the feedback asks: p(Yes) over 5 prompts, or the task's own "
    "judge prompts (selection_options.instruct_rm.judge, default the refiner).",
)
class InstructRMSelector(Selector):
    Options = InstructRMOptions
    moved = {"selection.judge": "{options}.judge"}

    @classmethod
    def models(cls, config: RunConfig) -> list[ModelConfig]:
        return [cls.options(config).judge or config.refiner_model]

    @classmethod
    def from_config(cls, config: RunConfig, task: Any = None) -> InstructRMSelector:
        (judge,) = cls.models(config)
        variants = task.judge_variants() if task is not None else None  # a task's own language, else general English
        return cls(load_model(resolve_model(config, judge)), batch_size=config.selection.batch_size, variants=variants)

    def __init__(self, judge: LoadedModel, batch_size: int = 8, variants: list[tuple[str, str, str]] | None = None) -> None:
        if judge.is_seq2seq:
            raise ValueError("instruct_rm needs a decoder-only judge (selection_options.instruct_rm.judge.name_or_path)")
        self.judge = judge
        self.batch_size = batch_size
        self.variants = variants or PROMPT_VARIANTS
        self.answer_ids = [(self._first_token(pos), self._first_token(neg)) for _, pos, neg in self.variants]
        for (_template, pos, neg), (pos_id, neg_id) in zip(self.variants, self.answer_ids):
            if pos_id == neg_id:
                raise ValueError(f"the judge's tokenizer gives {pos!r} and {neg!r} the same first token")

    def _first_token(self, text: str) -> int:
        ids = self.judge.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"the judge's tokenizer encodes {text!r} to nothing")
        return ids[0]

    @torch.inference_mode()
    def next_token_logits(self, prompts: list[str]) -> torch.Tensor:
        """Logits of the token after each prompt, float32, shape (len(prompts), vocab)."""
        tokenizer = self.judge.tokenizer
        # The last position's logits only: every position's would be prompts x length x vocabulary floats.
        last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.judge.model.forward).parameters else {}
        rows = []
        for start in range(0, len(prompts), self.batch_size):
            batch = tokenizer(prompts[start : start + self.batch_size], return_tensors="pt", padding=True).to(self.judge.device)
            logits = self.judge.model(**batch, **last_only).logits
            rows.append(logits[:, -1, :].float().cpu())  # left padding: the last column is every row's last token
        return torch.cat(rows)

    def score(self, items: list[SelectionItem]) -> list[list[float]]:
        pairs = [(i, c) for i, item in enumerate(items) for c in range(len(item.candidates))]
        totals = torch.zeros(len(pairs))
        for (template, _, _), (pos_id, neg_id) in zip(self.variants, self.answer_ids):
            prompts = [
                template.format(
                    **items[i].sample.inputs,
                    inputs=format_inputs(items[i].sample.inputs),
                    output=items[i].output or "",
                    feedback=items[i].feedback or "",
                    candidate=items[i].candidates[c],
                )
                for i, c in pairs
            ]
            logits = self.next_token_logits(prompts)
            # p(pos) / (p(pos) + p(neg)) is the sigmoid of the logit difference.
            totals += torch.sigmoid(logits[:, pos_id] - logits[:, neg_id])
        means = (totals / len(self.variants)).tolist()
        scores: list[list[float]] = [[] for _ in items]
        for (i, _), value in zip(pairs, means):
            scores[i].append(value)
        return scores
