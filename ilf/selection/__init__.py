"""Choose one refinement per sample. Every configured selector scores every candidate; the
method named in ``selection.method`` picks, and the others' scores are kept for analysis."""

from __future__ import annotations

import logging
from typing import Any
from ilf.config import ModelConfig, SelectionConfig
from ilf.records import Candidate, Selection
from ilf.selection.base import SelectionItem, Selector, argmax

log = logging.getLogger(__name__)

SELECTORS = ("embedding", "instruct_rm", "random", "oracle_rouge", "reward_model")


def build_selector(name: str, config: SelectionConfig, judge: ModelConfig, task: Any = None) -> Selector:
    if name == "embedding":
        from ilf.selection.embedding import EmbeddingSelector

        return EmbeddingSelector(config.embedder, batch_size=max(config.batch_size, 32))
    if name == "random":
        from ilf.selection.random_choice import RandomSelector

        return RandomSelector(config.seed)
    if name == "oracle_rouge":
        from ilf.selection.oracle_rouge import OracleRougeSelector

        return OracleRougeSelector()
    if name == "instruct_rm":
        from ilf.models import load_model
        from ilf.selection.instruct_rm import InstructRMSelector

        return InstructRMSelector(load_model(config.judge or judge), batch_size=config.batch_size)
    if name == "reward_model":
        from ilf.selection.reward_model import RewardModelSelector
        from ilf.train.reward import RewardModel

        if not config.reward_model:
            raise ValueError("selection.reward_model: the path of a trained reward model is required for the reward_model selector")
        return RewardModelSelector(RewardModel.load(config.reward_model, batch_size=config.batch_size), task)
    raise ValueError(f"selection: unknown selector {name!r} (choose from {', '.join(SELECTORS)})")


def select(
    items: list[SelectionItem],
    config: SelectionConfig,
    judge: ModelConfig,
    task: Any = None,
) -> list[Selection]:
    """Score with ``config.method`` and each of ``config.also_score``; pick by ``config.method``."""
    names = list(dict.fromkeys([config.method, *config.also_score]))
    all_scores: dict[str, list[list[float]]] = {}
    for name in names:
        selector = build_selector(name, config, judge, task)
        log.info("scoring %d samples with %s", len(items), name)
        all_scores[name] = selector.score(items)
    selections = []
    for row, item in enumerate(items):
        candidates = [
            Candidate(text=text, scores={name: all_scores[name][row][c] for name in names})
            for c, text in enumerate(item.candidates)
        ]
        index = argmax(all_scores[config.method][row])
        selections.append(
            Selection(
                sample_id=item.sample.id,
                selector=config.method,
                index=index,
                text=item.candidates[index],
                candidates=candidates,
                feedback=item.feedback,
            )
        )
    return selections


__all__ = ["SelectionItem", "Selector", "select", "build_selector", "SELECTORS", "argmax"]
